import { CelebaGanError, EXIT_RUNTIME, EXIT_USAGE, escapeControl, escapeName } from '../errors.js';
import type { Progress } from '../util/progress.js';

/**
 * The CLI's one way to print. Every line a command prints (what it made, notes, progress,
 * errors) passes through here, and each is escaped for the terminal the same way:
 *
 *   result lines, notes   one line each: every control character in it, newline and tab
 *                         included, is shown as `\x1b`, `\n`, ... (escapeName), so a file name
 *                         holding ESC or a newline can neither drive the terminal nor forge a line;
 *   progress              src/util/progress.ts writes its lines through the same escapeName;
 *   errors                message and hint through escapeControl, which keeps the newlines that
 *                         a few messages hold on purpose (a list of what was tried).
 *
 * Results go to stdout (a script can capture them); notes, progress and errors to stderr.
 */

export class Screen {
  private bar: Progress | null = null;

  /** `quiet`: print nothing (a data-parallel rank other than 0); errors still reach main. */
  constructor(private readonly opts: { quiet?: boolean } = {}) {}

  get quiet(): boolean {
    return this.opts.quiet ?? false;
  }

  /** A note, `celeba-gan: <line>`, to stderr (above the progress bar while one is shown). */
  say(line: string): void {
    this.log(`celeba-gan: ${line}`);
  }

  /** A line to stderr as it is: an indented detail under a note, a signal's message. */
  log(line: string): void {
    if (this.opts.quiet) return;
    if (this.bar) this.bar.log(line);
    else process.stderr.write(`${escapeName(line)}\n`);
  }

  /** What the command made, to stdout: one argument per line. */
  result(...lines: string[]): void {
    if (this.opts.quiet) return;
    process.stdout.write(lines.map((line) => `${escapeName(line)}\n`).join(''));
  }

  /** Show `bar` until endBar(); notes and logs go above it meanwhile. */
  startBar(bar: Progress): Progress {
    this.bar = bar;
    return bar;
  }

  /** Draw the bar's last line and stop placing lines above it (idempotent). */
  endBar(): void {
    this.bar?.finish();
    this.bar = null;
  }
}

/** A yargs parse failure: the message, a hint when there is one, and where to look. */
export function printUsageError(message: string, helpCommand: string, hint?: string): number {
  process.stderr.write(escapeControl(`celeba-gan: ${message}\n${hint ? `  ${hint}\n` : ''}  See \`${helpCommand}\` for the options and examples.\n`));
  return EXIT_USAGE;
}

/** A CelebaGanError as `error [E_CODE]: message` and its hint; anything else as unexpected. Returns the exit status. */
export function printError(err: unknown, verbose: boolean): number {
  if (err instanceof CelebaGanError) {
    process.stderr.write(escapeControl(`celeba-gan: error [${err.code}]: ${err.message}\n`));
    if (err.hint) process.stderr.write(escapeControl(`  ${err.hint}\n`));
    if (verbose && err.stack) process.stderr.write(escapeControl(`${err.stack}\n`));
    return err.kind === 'usage' ? EXIT_USAGE : EXIT_RUNTIME;
  }
  const e = err as Error | undefined;
  process.stderr.write(escapeControl(`celeba-gan: unexpected error: ${e?.message ?? String(err)}\n`));
  process.stderr.write(verbose ? escapeControl(`${e?.stack}\n`) : '  Run again with --verbose for the stack trace.\n');
  return EXIT_RUNTIME;
}
