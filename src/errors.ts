/**
 * Errors a user can cause. Library code throws these; only src/cli maps them to messages and
 * exit codes. Each carries a stable `code`, names the input, and says what to do next (`hint`).
 */

/** Exit codes used by the CLI (see src/cli/main.ts). */
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export type ErrorKind = 'usage' | 'runtime';

export class CelebaGanError extends Error {
  override name = 'CelebaGanError';
  /** Stable machine-readable code, e.g. `E_DATASET_CORRUPT`. */
  readonly code: string;
  /** What the user should do next; printed on its own line by the CLI. */
  readonly hint?: string;
  /** `usage` errors exit with 2, `runtime` errors with 1. */
  readonly kind: ErrorKind;

  constructor(code: string, message: string, opts: { hint?: string; kind?: ErrorKind; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.hint = opts.hint;
    this.kind = opts.kind ?? 'runtime';
  }
}

/** A bad flag value or combination: exit code 2. */
export class UsageError extends CelebaGanError {
  override name = 'UsageError';
  constructor(code: string, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(code, message, { ...opts, kind: 'usage' });
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
