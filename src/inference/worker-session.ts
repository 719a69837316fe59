import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { ConcreteProvider } from '../bindings/onnxruntime.js';
import { isErrorCode } from '../error-codes.js';
import { CelebaGanError, assertInteger } from '../errors.js';
import { checkRunAttributes, openGenerator, type GeneratorInfo, type GeneratorSession, type OpenGeneratorOptions } from './session.js';

/**
 * A GeneratorSession whose onnxruntime session lives in a worker thread. onnxruntime-node's
 * `session.run` computes on the calling JS thread, so in the thread that answers HTTP it stops
 * everything else for the length of a batch; in a worker, the caller's thread stays free while
 * the model runs (`celeba-gan serve` uses this).
 *
 * The worker opens the model through `openGenerator`, the one path to a session, and reports its
 * info and provider back. A run posts the latents and a conditional model's label rows (their
 * buffers are transferred, not copied) and gets the images back the same way. Errors keep their E_* code, message, hint and kind. A worker
 * that dies fails every pending and later run with E_MODEL_WORKER (and resolves `failed`), so a
 * caller never waits on a dead thread.
 */

export const E_MODEL_WORKER = 'E_MODEL_WORKER';

export interface WorkerGeneratorSession extends GeneratorSession {
  /**
   * z [n, zDim] (and attributes [n, K] for a conditional model) -> images [n, C, H, W]. Takes
   * ownership of `z` and `attributes`: an array that spans its whole buffer moves to the worker
   * and is left empty here (pass a copy to keep it).
   */
  run(z: Float32Array, n: number, attributes?: Float32Array): Promise<Float32Array>;
  /** Why the worker stopped, when it stopped by itself; null while it runs (and after close()). */
  readonly failure: CelebaGanError | null;
  /** Resolves when the worker stops by itself (a crash), never after close(). */
  readonly failed: Promise<CelebaGanError>;
}

export interface WorkerSessionHooks {
  /**
   * The worker's script (default: this module). Tests pass a script that calls hostGenerator
   * with a wrapped openGenerator, to hold, fail or crash a model call on purpose.
   */
  entry?: URL;
}

interface StartData {
  celebaGanGenerator: 'self' | 'entry';
  modelPath: string;
  opts: OpenGeneratorOptions;
}

interface WireError {
  message: string;
  code?: string;
  hint?: string;
  stack?: string;
}

type ToWorker = { type: 'run'; id: number; z: Float32Array; n: number; attributes?: Float32Array } | { type: 'close' };
type FromWorker =
  | { type: 'ready'; info: GeneratorInfo; providerUsed: ConcreteProvider; providerNotes: string[] }
  | { type: 'open-failed'; error: WireError }
  | { type: 'done'; id: number; images: Float32Array }
  | { type: 'run-failed'; id: number; error: WireError }
  | { type: 'closed' };

function toWire(err: unknown): WireError {
  if (err instanceof CelebaGanError) return { message: err.message, code: err.code, hint: err.hint, stack: err.stack };
  if (err instanceof Error) return { message: err.message, stack: err.stack };
  return { message: String(err) };
}

function fromWire(w: WireError): Error {
  const err = isErrorCode(w.code) ? new CelebaGanError(w.code, w.message, { hint: w.hint }) : new Error(w.message);
  // The worker's stack says where it failed; this thread's would only show the message handler.
  if (w.stack !== undefined) err.stack = w.stack;
  return err;
}

/** A typed array as a message part, moving its buffer when it owns all of it (else a copy moves). */
function movable(a: Float32Array): { value: Float32Array; transfer: ArrayBuffer[] } {
  const own = a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer ? a : a.slice();
  return { value: own, transfer: [own.buffer as ArrayBuffer] };
}

/**
 * This process's node flags for the worker, less those that only describe the main script
 * (`node --input-type=module -e ...` is refused in a worker whose script is a file).
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (['--input-type', '-e', '--eval', '-p', '--print'].includes(a)) i++;
    else if (!/^--(input-type|eval|print)=/.test(a)) out.push(a);
  }
  return out;
}

function startWorker(entry: URL, data: StartData): Worker {
  const execArgv = workerExecArgv();
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData: data, execArgv });
  // Running from the TypeScript sources (`node --import tsx`): on node 20 tsx's loader does not
  // reach worker threads, so the worker registers it before importing its script.
  const code = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { eval: true, workerData: data, execArgv });
}

/** Open `modelPath` with openGenerator inside a new worker thread. */
export async function openGeneratorInWorker(
  modelPath: string,
  opts: OpenGeneratorOptions = {},
  hooks: WorkerSessionHooks = {},
): Promise<WorkerGeneratorSession> {
  const data: StartData = { celebaGanGenerator: hooks.entry === undefined ? 'self' : 'entry', modelPath, opts: { ...opts } };
  const worker = startWorker(hooks.entry ?? new URL(import.meta.url), data);

  const pending = new Map<number, { resolve: (images: Float32Array) => void; reject: (err: unknown) => void }>();
  let nextId = 0;
  let closing = false;
  let failure: CelebaGanError | null = null;
  let lastError: unknown;
  let onFailed!: (f: CelebaGanError) => void;
  const failed = new Promise<CelebaGanError>((resolve) => (onFailed = resolve));
  let onClosed: (() => void) | null = null;
  let ready!: { resolve: (m: Extract<FromWorker, { type: 'ready' }>) => void; reject: (err: unknown) => void };
  const started = new Promise<Extract<FromWorker, { type: 'ready' }>>((resolve, reject) => (ready = { resolve, reject }));

  worker.on('message', (m: FromWorker) => {
    switch (m.type) {
      case 'ready':
        ready.resolve(m);
        break;
      case 'open-failed':
        ready.reject(fromWire(m.error));
        break;
      case 'done':
      case 'run-failed': {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.type === 'done') p?.resolve(m.images);
        else p?.reject(fromWire(m.error));
        break;
      }
      case 'closed':
        onClosed?.();
        break;
    }
  });
  // An uncaught exception in the worker: 'exit' follows, and reports it.
  worker.on('error', (err) => (lastError = err));
  worker.on('exit', (code) => {
    const why = lastError === undefined ? `exit code ${code}` : `${(lastError as Error).message ?? String(lastError)}`;
    const err = new CelebaGanError(E_MODEL_WORKER, `the model worker thread stopped (${why}); no model call can run in this process`, {
      hint: 'Restart `celeba-gan serve`; run it with --verbose and see the log above for the cause.',
      cause: lastError,
    });
    ready.reject(err);
    if (!closing) {
      failure = err;
      onFailed(err);
    }
    for (const p of pending.values()) p.reject(closing ? new CelebaGanError('E_SHUTTING_DOWN', 'the model session was closed during a model call') : err);
    pending.clear();
    onClosed?.();
  });

  let start: Extract<FromWorker, { type: 'ready' }>;
  try {
    start = await started;
  } catch (err) {
    closing = true;
    await worker.terminate();
    throw err;
  }
  const { info } = start;
  const { zDim } = info;

  return {
    info,
    providerUsed: start.providerUsed,
    providerNotes: start.providerNotes,
    get failure() {
      return failure;
    },
    failed,
    run(z: Float32Array, n: number, attributes?: Float32Array): Promise<Float32Array> {
      if (failure) return Promise.reject(failure);
      if (closing) return Promise.reject(new Error('GeneratorSession.run called after close()'));
      assertInteger('n', n, 1);
      if (z.length !== n * zDim) return Promise.reject(new Error(`z has ${z.length} values; [${n}, ${zDim}] needs ${n * zDim}`));
      try {
        checkRunAttributes(info, modelPath, attributes, n); // here, before the buffers move
      } catch (err) {
        return Promise.reject(err);
      }
      const id = nextId++;
      const latents = movable(z);
      const labels = attributes === undefined ? undefined : movable(attributes);
      return new Promise<Float32Array>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        const message: ToWorker = { type: 'run', id, z: latents.value, n, ...(labels ? { attributes: labels.value } : {}) };
        worker.postMessage(message, [...latents.transfer, ...(labels?.transfer ?? [])]);
      });
    },
    async close(): Promise<void> {
      if (closing) return;
      closing = true;
      if (failure) return;
      // The worker answers the runs posted before this, releases the session, then is ended.
      await new Promise<void>((resolve) => {
        onClosed = resolve;
        worker.postMessage({ type: 'close' } satisfies ToWorker);
      });
      await worker.terminate();
    },
  };
}

/**
 * The worker's side: open the model with `open` (openGenerator; tests wrap it), report its info,
 * then run each posted batch in order. Exported for test workers; this module calls it itself
 * when it is the worker's script.
 */
export async function hostGenerator(open: typeof openGenerator = openGenerator): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('hostGenerator runs in a worker thread');
  const { modelPath, opts } = workerData as StartData;
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
  let session: GeneratorSession;
  try {
    session = await open(modelPath, opts);
  } catch (err) {
    post({ type: 'open-failed', error: toWire(err) });
    port.close();
    return;
  }
  post({ type: 'ready', info: session.info, providerUsed: session.providerUsed, providerNotes: [...session.providerNotes] });
  // One message at a time, in order: a run posted while another computes waits its turn.
  let chain = Promise.resolve();
  port.on('message', (m: ToWorker) => {
    chain = chain.then(async () => {
      if (m.type === 'close') {
        await session.close();
        post({ type: 'closed' });
        port.close();
        return;
      }
      try {
        const { value, transfer } = movable(await session.run(m.z, m.n, m.attributes));
        post({ type: 'done', id: m.id, images: value }, transfer);
      } catch (err) {
        post({ type: 'run-failed', id: m.id, error: toWire(err) });
      }
    });
  });
}

if (!isMainThread && (workerData as Partial<StartData> | null)?.celebaGanGenerator === 'self') await hostGenerator();
