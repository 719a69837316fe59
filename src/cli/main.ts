import yargs, { type Argv } from 'yargs';
import { EXIT_USAGE, escapeControl, fileError, isMappedOsError } from '../errors.js';
import { tempTargetPath } from '../util/atomic.js';
import { commands } from './commands.js';
import { printError, printUsageError } from './output.js';
import { rejectEmptyPaths } from './path-flags.js';
import { packageVersion } from '../version.js';

/**
 * The CLI entry: the only place that prints errors and chooses exit codes
 * (0 ok, 1 runtime failure, 2 usage error), printed through src/cli/output.ts like every other
 * line. Stack traces only with --verbose. An OS error that no command wrapped (ENOSPC, EROFS,
 * EACCES, EISDIR, ENOTDIR, EMFILE) is still mapped by src/errors.ts's fileError, naming the path
 * the user gave (a temporary name is shown as the file it was being written as). Empty path
 * flags are refused for every command by one middleware (src/cli/path-flags.ts).
 */

class YargsUsage extends Error {}

function buildParser(argv: string[]): Argv {
  let parser: Argv = yargs(argv)
    .scriptName('celeba-gan')
    .usage('Usage: $0 <command> [options]\n\nTrain GANs that make faces, export them to ONNX, generate images fast.')
    .example('$0 prepare --synthetic 20000', 'make a procedural (synthetic) face data set: no download')
    .example('$0 train', 'train on the newest data set in data/')
    .example('$0 export --onnx', 'export the newest run in runs/ to models/')
    .example('$0 generate --n 1000', 'write 1000 faces with the newest model in models/')
    .epilogue('Each command has its own --help with examples. Docs: README.md and docs/')
    .option('verbose', { type: 'boolean', default: false, describe: 'Show stack traces and extra detail' })
    .strict()
    .middleware(rejectEmptyPaths)
    .demandCommand(1, 'Choose a command (see the list above).')
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .wrap(Math.min(120, process.stdout.columns || 120))
    .fail((msg, err) => {
      if (err) throw err;
      throw new YargsUsage(msg);
    });
  for (const command of commands) parser = parser.command(command);
  return parser;
}

/**
 * A value such as `-1:0` that yargs took for a flag (it then reports "Unknown argument: 1"): the
 * hint says how to pass it, after `--`.
 */
function flagLookingValue(argv: string[]): string | undefined {
  const end = argv.indexOf('--');
  const value = (end < 0 ? argv : argv.slice(0, end)).find((a) => /^-\d/.test(a));
  if (value === undefined) return undefined;
  const command = argv.find((a) => !a.startsWith('-')) ?? '<command>';
  return `${value} was read as a flag: values that start with '-' go after \`--\` (celeba-gan ${command} [options] -- ${value} ...)`;
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const parser = buildParser(argv);
  try {
    // A handler may choose a non-error exit status through process.exitCode (e.g. `train`
    // stopped by a signal: 130/143); only what it sets during this call counts.
    const outer = process.exitCode;
    process.exitCode = undefined;
    try {
      await parser.parseAsync();
      return typeof process.exitCode === 'number' ? process.exitCode : 0;
    } finally {
      process.exitCode = outer;
    }
  } catch (caught) {
    if (caught instanceof YargsUsage) {
      // The error and where to look, not the whole help text above it.
      const command = argv.find((a) => !a.startsWith('-'));
      if (command === undefined) {
        // No command at all: the list of commands is the answer.
        process.stderr.write(escapeControl(`${await parser.getHelp()}\n\nceleba-gan: ${caught.message}\n`));
        return EXIT_USAGE;
      }
      const known = commands.some((c) => String(c.command).split(' ')[0] === command);
      return printUsageError(caught.message, known ? `celeba-gan ${command} --help` : 'celeba-gan --help', flagLookingValue(argv));
    }
    const err = isMappedOsError(caught) ? fileError(caught, tempTargetPath(String((caught as NodeJS.ErrnoException).path ?? '(unknown path)'))) : caught;
    return printError(err, verbose);
  }
}
