import type { CommandModule } from 'yargs';
import { prepareCommand } from './prepare.js';
import { trainCommand } from './train.js';
import { exportCommand } from './export.js';
import { generateCommand } from './generate.js';
import { evalCommand } from './eval.js';
import { demoCommand } from './demo.js';
import { serveCommand } from './serve.js';
import { interpolateCommand } from './interpolate.js';

/** Every CLI command, in the order `--help` lists them. One module per command. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  prepareCommand,
  trainCommand,
  exportCommand,
  generateCommand,
  interpolateCommand,
  serveCommand,
  evalCommand,
  demoCommand,
];
