import yargs, { type Argv } from 'yargs';
import { CelebaGanError, EXIT_RUNTIME, EXIT_USAGE, escapeControl, fileError, isMappedOsError } from '../errors.js';
import { tempTargetPath } from '../util/atomic.js';
import { commands } from './commands.js';
import { packageVersion } from '../version.js';

/**
 * The CLI entry: the only place that prints errors and chooses exit codes
 * (0 ok, 1 runtime failure, 2 usage error). Stack traces only with --verbose. Every message
 * passes through escapeControl, so a file name holding escape sequences cannot drive the
 * terminal. An OS error that no command wrapped (ENOSPC, EROFS, EACCES, EISDIR, ENOTDIR,
 * EMFILE) is still mapped by src/errors.ts's fileError, naming the path the user gave (a
 * temporary name is shown as the file it was being written as).
 */

class YargsUsage extends Error {}

export function buildParser(argv: string[]): Argv {
  let parser: Argv = yargs(argv)
    .scriptName('celeba-gan')
    .usage('Usage: $0 <command> [options]\n\nTrain GANs that make faces, export them to ONNX, generate images fast.')
    .example('$0 prepare --synthetic 20000', 'make a procedural (synthetic) face data set: no download')
    .example('$0 train', 'train on the newest data set in data/')
    .example('$0 export --onnx', 'export the newest run in runs/ to models/')
    .example('$0 generate --n 1000', 'write 1000 faces with the newest model in models/')
    .epilogue('Each command has its own --help with examples. Docs: README.md')
    .option('verbose', { type: 'boolean', default: false, describe: 'Show stack traces and extra detail' })
    .strict()
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
        process.stderr.write(`${await parser.getHelp()}\n\nceleba-gan: ${caught.message}\n`);
        return EXIT_USAGE;
      }
      const help = command && commands.some((c) => String(c.command).split(' ')[0] === command) ? `celeba-gan ${command} --help` : 'celeba-gan --help';
      process.stderr.write(escapeControl(`celeba-gan: ${caught.message}\n  See \`${help}\` for the options and examples.\n`));
      return EXIT_USAGE;
    }
    const err = isMappedOsError(caught) ? fileError(caught, tempTargetPath(String((caught as NodeJS.ErrnoException).path ?? '(unknown path)'))) : caught;
    if (err instanceof CelebaGanError) {
      process.stderr.write(escapeControl(`celeba-gan: error [${err.code}]: ${err.message}\n`));
      if (err.hint) process.stderr.write(escapeControl(`  ${err.hint}\n`));
      if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
      return err.kind === 'usage' ? EXIT_USAGE : EXIT_RUNTIME;
    }
    const e = err as Error;
    process.stderr.write(escapeControl(`celeba-gan: unexpected error: ${e?.message ?? String(err)}\n`));
    process.stderr.write(verbose ? `${e?.stack}\n` : '  Run again with --verbose for the stack trace.\n');
    return EXIT_RUNTIME;
  }
}
