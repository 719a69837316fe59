import { ERROR_CODES, type ErrorCode, type UsageCode } from './error-codes.js';

/**
 * Errors a user can cause. Library code throws these; only src/cli maps them to messages and
 * exit codes. Each carries a stable `code` from the registry in src/error-codes.ts (which also
 * fixes its exit status), names the input, and says what to do next (`hint`).
 */

/** Exit codes used by the CLI (see src/cli/main.ts). */
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export type ErrorKind = 'usage' | 'runtime';

export interface ErrorOptions {
  /** What the user should do next; printed on its own line by the CLI. */
  hint?: string;
  cause?: unknown;
}

export class CelebaGanError extends Error {
  override name = 'CelebaGanError';
  /** Stable machine-readable code, e.g. `E_DATASET_CORRUPT`. */
  readonly code: ErrorCode;
  readonly hint?: string;
  /** `usage` errors exit with 2, `runtime` errors with 1: the registry's row for `code`. */
  readonly kind: ErrorKind;

  constructor(code: ErrorCode, message: string, opts: ErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.hint = opts.hint;
    this.kind = ERROR_CODES[code].exit;
  }
}

/** A bad flag value or combination: exit code 2. Takes only codes the registry marks `usage`. */
export class UsageError extends CelebaGanError {
  override name = 'UsageError';
  constructor(code: UsageCode, message: string, opts: ErrorOptions = {}) {
    super(code, message, opts);
  }
}

/** Describe a received value for messages: `120 of type number`. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') return `"${value}" of type string`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `${String(value)} of type ${typeof value}`;
}

/** `Expected integer between 1 and 100 for quality but received 120 of type number` */
export function expected(what: string, name: string, received: unknown): string {
  return `Expected ${what} for ${name} but received ${describe(received)}`;
}

export function assertInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `integer >= ${min}` : `integer between ${min} and ${max}`;
    throw new UsageError('E_BAD_ARGUMENT', expected(range, name, value));
  }
  return value;
}

export function assertNumber(name: string, value: unknown, min: number, max: number, opts: { exclusiveMin?: boolean } = {}): number {
  const tooLow = typeof value === 'number' && (opts.exclusiveMin ? value <= min : value < min);
  if (typeof value !== 'number' || !Number.isFinite(value) || tooLow || value > max) {
    const range = `number ${opts.exclusiveMin ? '>' : '>='} ${min} and <= ${max}`;
    throw new UsageError('E_BAD_ARGUMENT', expected(range, name, value));
  }
  return value;
}

export function assertOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new UsageError('E_BAD_ARGUMENT', `Unsupported ${name} ${describe(value)}. Should be one of: ${allowed.join(', ')}`);
  }
  return value as T;
}

/**
 * The OS failures a user can cause or fix (a full disk, a read-only or forbidden folder, a folder
 * where a file belongs, too many open files), as codes with the fix. Everything that touches the
 * file system goes through `fileError`, and src/cli/main.ts maps any that escape through it too,
 * so none of them reaches the user as "unexpected error".
 */
const OS_ERRORS: Readonly<Record<string, { code: ErrorCode; what: (path: string) => string; hint: (path: string) => string }>> = Object.freeze({
  ENOSPC: {
    code: 'E_NO_SPACE',
    what: (p) => `no space left on the device holding ${p}`,
    hint: () => 'Free some space (or pass a path on another disk) and run the command again; nothing half-written was kept.',
  },
  EDQUOT: {
    code: 'E_NO_SPACE',
    what: (p) => `the disk quota is exhausted for ${p}`,
    hint: () => 'Free some space within your quota (or pass a path on another disk) and run the command again.',
  },
  EROFS: {
    code: 'E_READ_ONLY',
    what: (p) => `${p} is on a read-only file system`,
    hint: () => 'Pass a path on a writable disk (or remount it read-write).',
  },
  EACCES: {
    code: 'E_PERMISSION',
    what: (p) => `permission denied for ${p}`,
    hint: () => 'Pass a path you may read and write, or change its permissions (chmod/chown).',
  },
  EPERM: {
    code: 'E_PERMISSION',
    what: (p) => `operation not permitted on ${p}`,
    hint: () => 'Pass a path you may read and write, or change its permissions (chmod/chown).',
  },
  EISDIR: {
    code: 'E_IS_FOLDER',
    what: (p) => `${p} is a folder, but a file is needed there`,
    hint: () => 'Pass the path of a file (not a folder).',
  },
  ENOTDIR: {
    code: 'E_NOT_FOLDER',
    what: (p) => `a part of ${p} is a file, but a folder is needed there`,
    hint: () => 'Pass a path whose parents are folders (or move the file that is in the way).',
  },
  EMFILE: {
    code: 'E_TOO_MANY_FILES',
    what: (p) => `too many open files while opening ${p}`,
    hint: () => 'Raise the limit (`ulimit -n 4096`) or open fewer files at once (fewer `prepare --workers`), then run again.',
  },
  ENFILE: {
    code: 'E_TOO_MANY_FILES',
    what: (p) => `the system ran out of file handles while opening ${p}`,
    hint: () => 'Close other programs or raise the system limit (fs.file-max), then run again.',
  },
});

/** The errno code of a Node file-system error (`ENOSPC`, ...), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** Whether `fileError` has a mapping for this error. */
export function isMappedOsError(err: unknown): boolean {
  const code = errnoCode(err);
  return code !== undefined && code in OS_ERRORS;
}

/**
 * Map an OS error on `path` (the user's path, not a temporary name) to a CelebaGanError with a
 * stable code and the fix; `doing` says what was attempted (`write`, `read`, ...). `hints` may
 * replace the generic hint for some codes (e.g. EISDIR for `--data`: "pass a .cgds file").
 * Errors that are already CelebaGanErrors, and OS errors without a mapping, pass unchanged (a
 * thrown non-Error is wrapped, so callers always get an Error to throw or inspect).
 */
export function fileError(err: unknown, path: string, doing = 'access', hints: Partial<Record<string, string>> = {}): Error {
  if (err instanceof CelebaGanError) return err;
  const code = errnoCode(err);
  const known = code === undefined ? undefined : OS_ERRORS[code];
  if (!known || code === undefined) return err instanceof Error ? err : new Error(String(err));
  return new CelebaGanError(known.code, `cannot ${doing} ${path}: ${known.what(path)} (${code})`, {
    hint: hints[code] ?? known.hint(path),
    cause: err,
  });
}

/**
 * Make text that may hold a user's file name safe for a terminal: control characters (ANSI
 * escape sequences, carriage returns, NUL, ...) are shown as `\x1b`-style escapes, so a crafted
 * file name cannot move the cursor, recolour the terminal or hide a line. Newlines and tabs in
 * our own messages are kept.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** escapeControl for one path or name: newlines and tabs escaped too. */
export function escapeName(name: string): string {
  return escapeControl(name).replace(/[\n\t]/g, (c) => (c === '\n' ? '\\n' : '\\t'));
}
