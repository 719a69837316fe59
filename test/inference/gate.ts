import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';

/**
 * The test side of gated-worker.ts, a model worker whose runs the test holds, fails or crashes
 * on purpose, chosen by batch size:
 *
 *   n = FAIL_BATCH   the run throws E_MODEL_RUN (as onnxruntime failing a batch)
 *   n = CRASH_BATCH  the worker thread exits (as a crash in native code)
 *   otherwise        the run announces itself on gateChannel(modelPath) and blocks the worker
 *                    thread (Atomics.wait, as onnxruntime's synchronous run does) until the test
 *                    releases it; then the real model runs
 */

export const FAIL_BATCH = 7;
export const CRASH_BATCH = 13;

/** The worker script, for openGeneratorInWorker's `entry` hook (.ts from the sources, .js from dist). */
export const GATED_WORKER = new URL(`./gated-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export function gateChannel(modelPath: string): string {
  return `celeba-gan-test-gate:${modelPath}`;
}

export interface HeldRun {
  n: number;
  gate: SharedArrayBuffer;
}

/** The runs the gated worker of `modelPath` is holding, in order. */
export class Gate {
  private readonly channel: BroadcastChannel;
  private readonly held: HeldRun[] = [];
  private waiter: ((run: HeldRun) => void) | null = null;

  constructor(modelPath: string) {
    this.channel = new BroadcastChannel(gateChannel(modelPath));
    this.channel.onmessage = (e) => {
      const run = (e as { data: HeldRun }).data;
      const w = this.waiter;
      this.waiter = null;
      if (w) w(run);
      else this.held.push(run);
    };
  }

  /** The next run that reached the gate (the model call is then in flight, blocked in the worker). */
  next(): Promise<HeldRun> {
    const run = this.held.shift();
    return run ? Promise.resolve(run) : new Promise((resolve) => (this.waiter = resolve));
  }

  release(run: HeldRun): void {
    const flag = new Int32Array(run.gate);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  }

  close(): void {
    this.channel.close();
  }
}
