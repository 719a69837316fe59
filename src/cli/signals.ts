import { Screen } from './output.js';

/**
 * The one way a command reacts to Ctrl-C (SIGINT) and SIGTERM. Every command (train, generate,
 * prepare, demo, serve) behaves the same:
 *
 *   1st signal  the command's work is asked to finish cleanly: `signal` (an AbortSignal the command
 *               passes down) aborts, and one line says what will happen and, where the command
 *               knows it, how long the wait may be;
 *   2nd signal  quit at once (process.exit), with the code of that signal;
 *   exit code   130 after SIGINT, 143 after SIGTERM (128 + the signal's number), also when the work
 *               finished cleanly after the first signal: the command sets `process.exitCode` from
 *               `exitCode`.
 *
 * Handlers are installed by `catchStopSignals` and removed by `dispose()` (call it in a `finally`).
 *
 *   const stop = catchStopSignals({ finishing: () => 'writing the batches already computed' });
 *   try {
 *     await work({ signal: stop.signal });
 *   } finally {
 *     stop.dispose();
 *   }
 *   if (stop.received) process.exitCode = stop.exitCode;
 */

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** Exit status after each signal: 128 + its number, as shells report it. */
export const SIGNAL_EXIT_CODES: Readonly<Record<StopSignal, number>> = Object.freeze({ SIGINT: 130, SIGTERM: 143 });

export interface StopSignalOptions {
  /**
   * What the command does before stopping, asked when the first signal arrives so that it can
   * include a current estimate: `finishing the current step (about 3 s) and saving a checkpoint`.
   */
  finishing: (signal: StopSignal) => string;
  /** Said on the second signal, before quitting (default: nothing more is written). */
  quitting?: (signal: StopSignal) => string;
  /** Where the lines go (default: stderr); a progress bar passes its `log` to keep the bar intact. */
  print?: (line: string) => void;
  /** Called after the first signal, once `signal` has aborted (e.g. to stop a trainer). */
  onStop?: (signal: StopSignal) => void;
  /** How to quit at once (default: process.exit). Tests pass their own. */
  exit?: (code: number) => void;
  /** The process to listen on (default: `process`). Tests pass an EventEmitter. */
  target?: Pick<NodeJS.Process, 'on' | 'off'>;
}

export interface StopSignals {
  /** Aborts on the first signal; its `reason` is the signal's name. */
  readonly signal: AbortSignal;
  /** The first signal received, or null. */
  readonly received: StopSignal | null;
  /** 130 / 143 once a signal was received, else null. */
  readonly exitCode: number | null;
  /** Remove the handlers (idempotent). */
  dispose(): void;
}

/** `Ctrl-C` for SIGINT (what a user typed), the signal's name otherwise. */
function again(signal: StopSignal): string {
  return signal === 'SIGINT' ? 'press Ctrl-C again' : 'send SIGTERM again';
}

export function catchStopSignals(opts: StopSignalOptions): StopSignals {
  const target = opts.target ?? process;
  const print = opts.print ?? ((line: string) => new Screen().log(line));
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const controller = new AbortController();
  let received: StopSignal | null = null;
  let disposed = false;

  const handle = (signal: StopSignal): void => {
    if (received !== null) {
      const last = opts.quitting?.(signal);
      print(`celeba-gan: ${signal} again: quitting now${last ? `; ${last}` : ''}`);
      exit(SIGNAL_EXIT_CODES[signal]);
      return;
    }
    received = signal;
    print(`celeba-gan: ${signal}: ${opts.finishing(signal)}; ${again(signal)} to quit at once`);
    controller.abort(signal);
    opts.onStop?.(signal);
  };
  const handlers = STOP_SIGNALS.map((signal) => [signal, () => handle(signal)] as const);
  for (const [signal, handler] of handlers) target.on(signal, handler);

  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    get exitCode() {
      return received === null ? null : SIGNAL_EXIT_CODES[received];
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const [signal, handler] of handlers) target.off(signal, handler);
    },
  };
}

/** `about 3 s`, `about 2 min`: a rough duration for "how long the wait may be" messages. */
export function aboutSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown time';
  if (seconds < 1) return 'under a second';
  if (seconds < 90) return `about ${Math.round(seconds)} s`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1)} h`;
}

/**
 * Times a loop's steps, so that a first signal can say how long finishing the current step may
 * take: `clock.step()` after each step, `clock.lastStepText()` in the message.
 */
export class StepTimer {
  private startedAt = performance.now();
  private lastAt = this.startedAt;
  private last: number | null = null;

  /** (Re)start the clock when the loop starts. */
  start(): void {
    this.startedAt = this.lastAt = performance.now();
  }

  /** Call after each step. */
  step(): void {
    const now = performance.now();
    this.last = (now - this.lastAt) / 1000;
    this.lastAt = now;
  }

  /** Seconds since start(). */
  elapsed(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  /** `about 3 s`, or that the first step's duration is not known yet. */
  lastStepText(): string {
    return this.last === null ? 'the first step: duration not known yet' : aboutSeconds(this.last);
  }
}
