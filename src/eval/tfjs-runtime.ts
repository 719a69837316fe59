import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadTfjs, type Tf } from '../bindings/tfjs.js';
import { CelebaGanError } from '../errors.js';

/**
 * Where the feature extractors (faceres, tiny face detector) run: a TensorFlow.js backend.
 *
 *   tensorflow  libtensorflow through tfjs-node(-gpu), when src/bindings/tfjs.ts loaded it
 *   wasm        @tensorflow/tfjs-backend-wasm (SIMD): measured about 15x faster than the pure-JS
 *               CPU backend on faceres here (67 ms vs 1 s per 224x224 image, one core)
 *   cpu         pure JavaScript: always there, slow
 *
 * `auto` takes the first that works, in that order. The extractors switch the global tfjs backend
 * only while they run (`withBackend`) and restore the previous one, so a tfjs training engine in
 * the same process (`train --eval-every`) keeps its backend; its tensors stay where they live.
 */

export const EVAL_BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type EvalBackendName = (typeof EVAL_BACKENDS)[number];

export interface EvalRuntime {
  tf: Tf;
  /** The tfjs backend name the extractors run on: `tensorflow`, `wasm` or `cpu`. */
  backend: Exclude<EvalBackendName, 'auto'>;
  /** e.g. `tfjs wasm (SIMD)`. */
  description: string;
  /** Why faster backends were not used, one line each. */
  notes: string[];
}

const WASM_PKG = '@tensorflow/tfjs-backend-wasm';
const require = createRequire(import.meta.url);
let wasmReady: Promise<void> | undefined;

/** Register the wasm backend (once) with its .wasm files found in its own package folder. */
async function registerWasm(tf: Tf): Promise<void> {
  if (!wasmReady) {
    wasmReady = (async () => {
      const main = require.resolve(WASM_PKG);
      // The Emscripten module adds process handlers that rethrow every uncaught error from inside
      // its minified source (so Node prints that whole line); remove the ones it adds.
      const before = { uncaughtException: process.listeners('uncaughtException'), unhandledRejection: process.listeners('unhandledRejection') };
      try {
        // main is <pkg>/dist/tf-backend-wasm.node.js; the .wasm files sit beside it.
        const wasm = (await import(WASM_PKG)) as { setWasmPaths(prefix: string): void };
        wasm.setWasmPaths(join(dirname(main), '/'));
        const previous = tf.getBackend();
        if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
        await tf.ready();
        if (previous) await tf.setBackend(previous);
      } finally {
        for (const listener of process.listeners('uncaughtException')) {
          if (!before.uncaughtException.includes(listener)) process.off('uncaughtException', listener);
        }
        for (const listener of process.listeners('unhandledRejection')) {
          if (!before.unhandledRejection.includes(listener)) process.off('unhandledRejection', listener);
        }
      }
    })();
    wasmReady.catch(() => {
      wasmReady = undefined;
    });
  }
  return wasmReady;
}

function failure(name: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if ((e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND') && String(e.message).includes(WASM_PKG)) {
    return `${name}: not installed; to use it: \`npm install ${WASM_PKG}@4.22.0\``;
  }
  return `${name}: failed to load: ${String(e?.message ?? err).split('\n')[0]}`;
}

const cached = new Map<EvalBackendName, Promise<EvalRuntime>>();

/** The tfjs runtime for feature extraction; a backend asked for by name must load or this throws. */
export function loadEvalRuntime(requested: EvalBackendName = 'auto'): Promise<EvalRuntime> {
  if (!(EVAL_BACKENDS as readonly string[]).includes(requested)) {
    return Promise.reject(
      new CelebaGanError('E_BAD_ARGUMENT', `Unsupported eval backend "${String(requested)}". Should be one of: ${EVAL_BACKENDS.join(', ')}`),
    );
  }
  let p = cached.get(requested);
  if (!p) {
    p = load(requested);
    cached.set(requested, p);
    p.catch(() => cached.delete(requested));
  }
  return p;
}

async function load(requested: EvalBackendName): Promise<EvalRuntime> {
  // Whatever the training side chose (or the best that loads) decides which tfjs is in the process.
  const loaded = await loadTfjs('auto');
  const tf = loaded.tf;
  const notes: string[] = [];
  const native = tf.findBackend('tensorflow') !== null;
  const order: Exclude<EvalBackendName, 'auto'>[] = requested === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [requested];
  for (const name of order) {
    try {
      if (name === 'tensorflow') {
        if (!native) throw new Error(`tfjs-node is not loaded (${loaded.notes.join('; ') || 'the pure-JS tfjs is in use'})`);
        return { tf, backend: name, description: `tfjs ${loaded.description}`, notes };
      }
      if (name === 'wasm') {
        await registerWasm(tf);
        return { tf, backend: name, description: 'tfjs wasm (SIMD)', notes };
      }
      return { tf, backend: 'cpu', description: 'tfjs cpu (pure JS)', notes };
    } catch (err) {
      notes.push(failure(name, err));
    }
  }
  throw new CelebaGanError(
    'E_BACKEND_UNAVAILABLE',
    `TensorFlow.js backend "${requested}" for the feature extractors cannot load. Tried:\n  ${notes.join('\n  ')}`,
    {
      hint: 'Install it as shown above, or pass --eval-backend auto.',
    },
  );
}

/** Run `fn` with `backend` as the global tfjs backend, then restore the previous one. */
export async function withBackend<T>(rt: EvalRuntime, fn: () => Promise<T>): Promise<T> {
  const previous = rt.tf.getBackend();
  if (previous !== rt.backend) await rt.tf.setBackend(rt.backend);
  try {
    return await fn();
  } finally {
    if (previous && previous !== rt.backend) await rt.tf.setBackend(previous);
  }
}
