import type { FastifyReply } from 'fastify';
import { CelebaGanError } from '../errors.js';

/**
 * Every request's work, from its first line to its last encoded byte, under one AbortSignal:
 * it aborts when the client disconnects (E_CLIENT_GONE), when the request outlives its deadline
 * (E_DEADLINE, 503 + Retry-After, queued or computing alike), or when a shutdown cuts it off
 * (E_SHUTTING_DOWN). Work that cannot be interrupted once started (one model call, one libvips
 * encode) is bounded by the cost limit (limits.ts) and tracked here until it settles, so a drain
 * that says "completed" means nothing of any request still runs.
 */

export class InFlight {
  private readonly requests = new Set<AbortController>();
  /** Each open request's controller, by its response (set by `open`, read by `signal`). */
  private readonly byResponse = new WeakMap<object, AbortController>();
  private readonly pending = new Set<Promise<unknown>>();
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deadlineMs: number) {}

  /** Requests being answered plus work of finished or abandoned requests still running. */
  get busy(): number {
    return this.requests.size + this.pending.size;
  }

  /** The signal of a request's work (opened by the onRequest hook, see `open`). */
  signal(reply: FastifyReply): AbortSignal {
    return (this.byResponse.get(reply.raw) ?? this.open(reply)).signal;
  }

  /** Count a request from its arrival (its body may still be coming) until its response closes. */
  open(reply: FastifyReply): AbortController {
    const ac = new AbortController();
    this.requests.add(ac);
    this.byResponse.set(reply.raw, ac);
    const deadline = setTimeout(() => {
      const err = new CelebaGanError('E_DEADLINE', `the request was not served within its ${this.deadlineMs} ms deadline (queued and computing)`, {
        hint: 'The server is overloaded or the request is large: retry later, ask for less, or start `celeba-gan serve` with a larger --deadline-ms.',
      });
      ac.abort(err);
    }, this.deadlineMs);
    // The deadline matters only while the request's own work keeps the process alive.
    deadline.unref();
    const done = (): void => {
      clearTimeout(deadline);
      if (!reply.raw.writableFinished) ac.abort(new CelebaGanError('E_CLIENT_GONE', 'the client disconnected'));
      if (this.requests.delete(ac)) this.notifyIdle();
    };
    reply.raw.once('close', done);
    reply.raw.once('finish', done);
    return ac;
  }

  /**
   * `work` (a model call, an encode) tracked until it settles; the answer rejects as soon as
   * `signal` aborts, so a request never waits on work it no longer wants.
   */
  run<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    const p = work();
    this.pending.add(p);
    const settled = (): void => {
      this.pending.delete(p);
      this.notifyIdle();
    };
    p.then(settled, settled);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
        (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
      );
    });
  }

  /** Resolves when no request is open and no tracked work runs. */
  idle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Abort every open request (a shutdown past its drain); returns how many there were. */
  cutOff(): number {
    const n = this.busy;
    const reason = new CelebaGanError('E_SHUTTING_DOWN', 'the server shut down before the request finished', { hint: 'Retry against another instance or after the restart.' });
    for (const ac of this.requests) ac.abort(reason);
    return n;
  }

  private notifyIdle(): void {
    if (this.busy > 0 || this.idleWaiters.length === 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
