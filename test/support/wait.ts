import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';

/**
 * Waiting in tests, always with a deadline that FAILS the test when it runs out (a wait that
 * carries on would turn a missing event into a later, confusing assertion, or hang the run).
 *
 * - `waitForLine`: for an event a process announces on its output (a line on stdout/stderr).
 *   It listens; it does not poll.
 * - `waitFor`: for a state that can only be read (a queue's length, a file that appears, a
 *   handler that was installed): a capped poll.
 *
 * The bounds are generous (seconds to a minute): they are for a 2-core machine running other
 * work, and they only ever cost time when the test fails anyway.
 */

export interface WaitOptions {
  /** The deadline; running out fails with `what`. */
  timeoutMs: number;
  /** What is awaited, for the failure message: "the first step's metrics line". */
  what: string;
  /** How often the predicate is read (default 20 ms). */
  intervalMs?: number;
}

/**
 * Resolves with the predicate's first truthy value; rejects with an AssertionError naming `what`
 * when `timeoutMs` passes first. A predicate that throws fails at once (use it to give up early,
 * e.g. when the process that should make the state has exited).
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, { timeoutMs, what, intervalMs = 20 }: WaitOptions): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() >= deadline) assert.fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}

/**
 * Resolves with the first match of `pattern` in what `stream` writes; rejects when `timeoutMs`
 * passes first, or when the stream ends without it (each with the output seen, for the failure).
 *
 * `text`, where given, returns everything the caller has collected from the stream so far (the
 * caller's own 'data' listener, registered before this call): the match is looked for in it, so
 * output written before the call counts. Without it, only output from now on is seen.
 */
export function waitForLine(stream: Readable, pattern: RegExp, timeoutMs: number, text?: () => string): Promise<RegExpExecArray> {
  let own = '';
  const seen = text ?? (() => own);
  const already = text ? pattern.exec(text()) : null;
  if (already) return Promise.resolve(already);
  return new Promise((resolve, reject) => {
    const finish = (err: Error | null, match?: RegExpExecArray): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('close', onEnd);
      stream.off('end', onEnd);
      if (err) reject(err);
      else resolve(match!);
    };
    const tail = (): string => JSON.stringify(seen().slice(-2000));
    const onData = (chunk: unknown): void => {
      if (!text) own += String(chunk);
      const m = pattern.exec(seen());
      if (m) finish(null, m);
    };
    const onEnd = (): void => finish(new assert.AssertionError({ message: `the output ended without ${String(pattern)}; it was: ${tail()}` }));
    const timer = setTimeout(
      () =>
        finish(new assert.AssertionError({ message: `timed out after ${timeoutMs / 1000} s waiting for ${String(pattern)} in the output; it was: ${tail()}` })),
      timeoutMs,
    );
    // Registered after the caller's own listener, so `text()` already holds this chunk.
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
  });
}
