import type { FastifyReply } from 'fastify';
import { CelebaGanError } from '../errors.js';

/**
 * Every request's work, from its first line to its last encoded byte, under one AbortSignal:
 * it aborts when the client disconnects (E_CLIENT_GONE), when the request outlives its deadline
 * (E_DEADLINE, 503 + Retry-After, queued or computing alike), or when a shutdown cuts it off
 * (E_SHUTTING_DOWN). Work that cannot be interrupted once started (one model call, one libvips
 * encode) is bounded by the cost limit (limits.ts) and tracked here until it settles, so a drain
 * that says "completed" means nothing of any request still runs.
 *
 * A request is counted from its arrival (`open`, an onRequest hook: its body may still be
 * coming); its controller and deadline timer are made only when a route asks for its signal,
 * which keeps /healthz and 304s cheap.
 */

interface Open {
  /** performance.now() at arrival: the deadline runs from here. */
  at: number;
  ac?: AbortController;
  timer?: NodeJS.Timeout;
  reply: FastifyReply;
}

export class InFlight {
  private readonly requests = new Set<Open>();
  private readonly byResponse = new WeakMap<object, Open>();
  private readonly pending = new Set<Promise<unknown>>();
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deadlineMs: number) {}

  /** Requests being answered plus work of finished or abandoned requests still running. */
  get busy(): number {
    return this.requests.size + this.pending.size;
  }

  /** Count a request from its arrival until its response closes. */
  open(reply: FastifyReply): void {
    const o: Open = { at: performance.now(), reply };
    this.requests.add(o);
    this.byResponse.set(reply.raw, o);
    const done = (): void => {
      if (!this.requests.delete(o)) return;
      if (o.timer) clearTimeout(o.timer);
      if (o.ac && !reply.raw.writableFinished) o.ac.abort(new CelebaGanError('E_CLIENT_GONE', 'the client disconnected'));
      this.notifyIdle();
    };
    reply.raw.once('close', done);
    reply.raw.once('finish', done);
  }

  /** The signal of a request's work (aborts on disconnect, deadline or cut-off). */
  signal(reply: FastifyReply): AbortSignal {
    let o = this.byResponse.get(reply.raw);
    if (o === undefined) {
      this.open(reply);
      o = this.byResponse.get(reply.raw)!;
    }
    if (o.ac) return o.ac.signal;
    const ac = (o.ac = new AbortController());
    // A response already closed (the client left before the route asked): nothing more to do.
    if (!this.requests.has(o)) ac.abort(new CelebaGanError('E_CLIENT_GONE', 'the client disconnected'));
    else {
      o.timer = setTimeout(
        () => {
          const err = new CelebaGanError('E_DEADLINE', `the request was not served within its ${this.deadlineMs} ms deadline (queued and computing)`, {
            hint: 'The server is overloaded or the request is large: retry later, ask for less, or start `celeba-gan serve` with a larger --deadline-ms.',
          });
          ac.abort(err);
        },
        Math.max(0, this.deadlineMs - (performance.now() - o.at)),
      );
      // The deadline matters only while the request's own work keeps the process alive.
      o.timer.unref();
    }
    return ac.signal;
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

  /** Abort every open request's work (a drain past its limit); returns how many requests and pieces of work there were. */
  cutOff(): number {
    const n = this.busy;
    const reason = new CelebaGanError('E_SHUTTING_DOWN', 'the server shut down before the request finished', {
      hint: 'Retry against another instance or after the restart.',
    });
    for (const o of this.requests) {
      if (!o.ac) o.ac = new AbortController();
      o.ac.abort(reason);
    }
    return n;
  }

  private notifyIdle(): void {
    if (this.busy > 0 || this.idleWaiters.length === 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
