import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Float32Sorter } from './float32-sort.js';

/**
 * Sorts SWD's projections off the main thread: each [m, count] direction-major array has its m
 * columns sorted by one of a few worker threads (Float32Sorter), while the main thread runs the
 * next projection (onnxruntime's run is synchronous there). Sorting is most of SWD's time once
 * the projections run on a matrix kernel, so on 2 cores this about halves it.
 *
 * The workers run Float32Sorter's own compiled source (an eval worker: no worker file to find,
 * the same under tsx and dist/). Arrays travel as transferred ArrayBuffers, without a copy when
 * the array owns its whole buffer (onnxruntime's outputs and the JS kernel's do): allocating and
 * copying 20 MB per set and repeat cost a third of SWD's main thread.
 */

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
${Float32Sorter.toString()}
const sorter = new Float32Sorter();
parentPort.on('message', ({ buffer, m, count }) => {
  const values = new Float32Array(buffer);
  for (let j = 0; j < m; j++) sorter.sort(values.subarray(j * count, (j + 1) * count));
  parentPort.postMessage(buffer, [buffer]);
});
`;

interface Job {
  buffer: ArrayBuffer;
  m: number;
  count: number;
  resolve: (sorted: Float32Array) => void;
  reject: (err: Error) => void;
}

export class ColumnSorter {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<Worker, Job>();
  private closing = false;
  /** Why the workers are gone (one threw or exited): every later sort fails with it. */
  private broken: Error | null = null;

  constructor(workers = Math.max(1, availableParallelism())) {
    for (let k = 0; k < workers; k++) {
      // No inherited flags: under `node --input-type=module -e ...` they would make this
      // CommonJS source a module, or run the parent's script again.
      const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
      worker.on('message', (buffer: ArrayBuffer) => this.done(worker, null, buffer));
      worker.on('error', (err) => this.done(worker, err, null));
      worker.on('exit', (code) => {
        if (!this.closing) this.done(worker, new Error(`a sort worker exited with code ${code}`), null);
      });
      this.all.push(worker);
      this.idle.push(worker);
    }
  }

  /**
   * `values` [m, count] with each of its m columns of `count` ascending. Takes `values`: when it
   * owns its whole ArrayBuffer, that buffer moves to a worker (`values` is empty afterwards);
   * otherwise a copy is sorted.
   */
  sort(values: Float32Array, m: number, count: number): Promise<Float32Array> {
    if (values.length !== m * count) throw new RangeError(`ColumnSorter: ${values.length} values are not ${m} columns of ${count}`);
    const owned = values.buffer instanceof ArrayBuffer && values.byteOffset === 0 && values.buffer.byteLength === values.byteLength;
    const buffer = owned ? values.buffer : new Float32Array(values).buffer;
    return new Promise((resolve, reject) => {
      if (this.broken) return reject(this.broken);
      this.queue.push({ buffer, m, count, resolve, reject });
      this.next();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('ColumnSorter closed'));
    await Promise.all(this.all.map((w) => w.terminate()));
  }

  private next(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.running.set(worker, job);
      worker.postMessage({ buffer: job.buffer, m: job.m, count: job.count }, [job.buffer]);
    }
  }

  private done(worker: Worker, err: Error | null, buffer: ArrayBuffer | null): void {
    const job = this.running.get(worker);
    this.running.delete(worker);
    if (err) {
      // A worker that threw or exited is gone: fail its job, every queued one and every later
      // one rather than wait forever.
      this.broken ??= err;
      job?.reject(err);
      for (const queued of this.queue.splice(0)) queued.reject(err);
      return;
    }
    this.idle.push(worker);
    job?.resolve(new Float32Array(buffer!));
    this.next();
  }
}
