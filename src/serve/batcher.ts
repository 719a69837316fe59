import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CelebaGanError } from '../errors.js';

/**
 * The dynamic batcher: requests put items (one latent each) in one bounded queue; one model
 * call at a time takes up to `maxBatch` items, waiting at most `maxDelayMs` after the oldest
 * arrived for a batch to fill. The model call (`runBatch`) sees only a list of items and never
 * knows where they came from. A full queue refuses at once (E_QUEUE_FULL: 503 + Retry-After);
 * a request not started by its deadline fails with E_DEADLINE; a request whose signal aborts
 * (its client went away) leaves the queue. So memory is bounded by maxQueue items whatever
 * the load.
 */

export interface BatcherOptions {
  /** Items per model call. */
  maxBatch: number;
  /** Milliseconds to wait for a batch to fill once its first item is queued. */
  maxDelayMs: number;
  /** Items waiting at most; beyond it submit() refuses. */
  maxQueue: number;
}

interface Pending<I, O> {
  items: I[];
  /** performance.now() when queued: a batch waits at most maxDelayMs after its oldest item. */
  at: number;
  /** Items of this request already sent to a model call (a request may span batches). */
  taken: number;
  results: O[];
  done: number;
  resolve: (out: O[]) => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
  settled: boolean;
}

export class QueueFullError extends CelebaGanError {
  constructor(
    readonly retryAfterSeconds: number,
    queued: number,
    max: number,
  ) {
    super('E_QUEUE_FULL', `the server is busy: ${queued} images queued (max ${max})`, {
      hint: `Retry after ${retryAfterSeconds} s, or start the server with a larger --max-queue.`,
    });
  }
}

export class Batcher<I, O> {
  private readonly queue: Pending<I, O>[] = [];
  private queuedItems = 0;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Mean seconds per item of recent batches, for Retry-After. */
  private secondsPerItem = 0.001;
  private readonly depth: Gauge;
  private readonly batchSize: Histogram;
  private readonly generated: Counter;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    readonly opts: BatcherOptions,
    registry: Registry,
  ) {
    this.depth = new Gauge({ name: 'celeba_gan_queue_depth', help: 'Images waiting for a model call', registers: [registry] });
    this.batchSize = new Histogram({
      name: 'celeba_gan_batch_size',
      help: 'Images per model call',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    });
    this.generated = new Counter({ name: 'celeba_gan_images_generated_total', help: 'Images the model made', registers: [registry] });
  }

  /** Items waiting (not yet in a model call). */
  get queued(): number {
    return this.queuedItems;
  }

  get saturated(): boolean {
    return this.queuedItems >= this.opts.maxQueue;
  }

  /**
   * Queue `items`; resolves with one output per item, in order. Rejects with QueueFullError when
   * they do not fit, E_DEADLINE when not started within `deadlineMs`, or the signal's reason.
   */
  submit(items: I[], opts: { signal?: AbortSignal; deadlineMs?: number } = {}): Promise<O[]> {
    if (this.closed)
      return Promise.reject(
        new CelebaGanError('E_SHUTTING_DOWN', 'the server is shutting down', { hint: 'Retry against another instance or after the restart.' }),
      );
    if (items.length === 0) return Promise.resolve([]);
    if (items.length > this.opts.maxQueue) {
      // Never fits, however idle the server: not a "busy, retry" answer.
      return Promise.reject(
        new CelebaGanError('E_BAD_ARGUMENT', `the request needs ${items.length} images at once but the queue holds at most ${this.opts.maxQueue}`, {
          hint: `Ask for at most ${this.opts.maxQueue} images, or start \`celeba-gan serve\` with --max-queue ${items.length} or more.`,
        }),
      );
    }
    if (this.queuedItems + items.length > this.opts.maxQueue) {
      const wait = Math.max(1, Math.ceil((this.queuedItems + items.length) * this.secondsPerItem));
      return Promise.reject(new QueueFullError(wait, this.queuedItems, this.opts.maxQueue));
    }
    opts.signal?.throwIfAborted();
    return new Promise<O[]>((resolve, reject) => {
      let deadline: NodeJS.Timeout | undefined;
      const onAbort = (): void => this.drop(p, opts.signal!.reason);
      const p: Pending<I, O> = {
        items,
        at: performance.now(),
        taken: 0,
        results: new Array<O>(items.length),
        done: 0,
        resolve,
        reject,
        settled: false,
        cleanup: () => {
          if (deadline) clearTimeout(deadline);
          opts.signal?.removeEventListener('abort', onAbort);
        },
      };
      if (opts.deadlineMs !== undefined) {
        deadline = setTimeout(
          () =>
            this.drop(
              p,
              new CelebaGanError('E_DEADLINE', `the request was not served within its ${opts.deadlineMs} ms deadline`, {
                hint: 'The server is overloaded; retry later.',
              }),
            ),
          opts.deadlineMs,
        );
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(p);
      this.queuedItems += items.length;
      this.depth.set(this.queuedItems);
      this.schedule();
    });
  }

  /** Refuse new work; resolves when the queue is empty and no model call runs. */
  drain(): Promise<void> {
    this.closed = true;
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    this.flushNow();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Remove a request's untaken items from the queue and fail it (abort, deadline). */
  private drop(p: Pending<I, O>, reason: unknown): void {
    if (p.settled) return;
    const at = this.queue.indexOf(p);
    if (at >= 0) {
      this.queue.splice(at, 1);
      this.queuedItems -= p.items.length - p.taken;
      this.depth.set(this.queuedItems);
    }
    this.settle(p, reason);
    this.notifyIdle();
  }

  private settle(p: Pending<I, O>, err?: unknown): void {
    if (p.settled) return;
    p.settled = true;
    p.cleanup();
    if (err === undefined) p.resolve(p.results);
    else p.reject(err);
  }

  private schedule(): void {
    const oldest = this.queue[0];
    if (this.running || oldest === undefined) return;
    if (this.queuedItems >= this.opts.maxBatch || this.closed || this.opts.maxDelayMs === 0) {
      this.flushNow();
    } else if (!this.timer) {
      const waited = performance.now() - oldest.at;
      this.timer = setTimeout(() => this.flushNow(), Math.max(0, this.opts.maxDelayMs - waited));
    }
  }

  private flushNow(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.running || this.queue.length === 0) return;
    void this.runOne();
  }

  private async runOne(): Promise<void> {
    this.running = true;
    // Take items in arrival order, splitting a request across batches when it does not fit.
    const parts: { p: Pending<I, O>; from: number; count: number }[] = [];
    const batch: I[] = [];
    for (let p = this.queue[0]; p !== undefined && batch.length < this.opts.maxBatch; p = this.queue[0]) {
      const count = Math.min(p.items.length - p.taken, this.opts.maxBatch - batch.length);
      parts.push({ p, from: p.taken, count });
      batch.push(...p.items.slice(p.taken, p.taken + count));
      p.taken += count;
      if (p.taken === p.items.length) this.queue.shift();
    }
    this.queuedItems -= batch.length;
    this.depth.set(this.queuedItems);
    this.batchSize.observe(batch.length);
    const t0 = performance.now();
    try {
      const out = await this.runBatch(batch);
      this.generated.inc(batch.length);
      this.secondsPerItem = 0.8 * this.secondsPerItem + (0.2 * (performance.now() - t0)) / 1000 / batch.length;
      // The model call is the caller's code: one result per item, or every request fails.
      if (out.length !== batch.length) throw new Error(`the model returned ${out.length} results for a batch of ${batch.length}`);
      let at = 0;
      for (const { p, from, count } of parts) {
        p.results.splice(from, count, ...out.slice(at, at + count));
        at += count;
        p.done += count;
        if (p.done === p.items.length) this.settle(p);
      }
    } catch (err) {
      for (const { p } of parts) this.drop(p, err);
    } finally {
      this.running = false;
      // The next batch starts at once: the requests that arrived while the model ran (it runs
      // off this thread, see src/inference/worker-session.ts) are already queued.
      this.schedule();
      this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    if (this.running || this.queue.length > 0 || this.idleWaiters.length === 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
