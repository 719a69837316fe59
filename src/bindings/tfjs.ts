import { createRequire } from 'node:module';
import { CelebaGanError } from '../errors.js';

/**
 * The only importer of TensorFlow.js packages. Tries, best first:
 *   tfjs-node-gpu  (libtensorflow with CUDA; needs CUDA 11.2 + cuDNN 8 and a libtensorflow download)
 *   tfjs-node      (libtensorflow on the CPU)
 *   cpu            (pure JavaScript `@tensorflow/tfjs` CPU backend: always there, slow)
 * and records why each better one was not used. `auto` takes the best that loads; a backend asked
 * for by name that cannot load is an error listing what was tried (never a silent fallback).
 */

export type Tf = typeof import('@tensorflow/tfjs');
export type Tensor = import('@tensorflow/tfjs').Tensor;
export type Variable = import('@tensorflow/tfjs').Variable;
export type Tensor2D = import('@tensorflow/tfjs').Tensor2D;
export type Tensor4D = import('@tensorflow/tfjs').Tensor4D;
export type Scalar = import('@tensorflow/tfjs').Scalar;

export const TFJS_BACKENDS = ['tfjs-node-gpu', 'tfjs-node', 'cpu'] as const;
export type TfjsBackendName = (typeof TFJS_BACKENDS)[number];

export interface LoadedTfjs {
  tf: Tf;
  backend: TfjsBackendName;
  /** e.g. `tensorflow (tfjs-node-gpu, CUDA)`, `cpu (pure JS)`. */
  description: string;
  /** Why better backends were not used, one line each. */
  notes: string[];
}

const require = createRequire(import.meta.url);

const HOW: Readonly<Record<TfjsBackendName, { pkg: string; install: string; describe: string }>> = Object.freeze({
  'tfjs-node-gpu': {
    pkg: '@tensorflow/tfjs-node-gpu',
    install: '`npm install @tensorflow/tfjs-node-gpu` (Linux x64 with CUDA 11.2 + cuDNN 8; downloads libtensorflow)',
    describe: 'tensorflow (tfjs-node-gpu, CUDA)',
  },
  'tfjs-node': {
    pkg: '@tensorflow/tfjs-node',
    install: '`npm install @tensorflow/tfjs-node` (downloads libtensorflow for the CPU)',
    describe: 'tensorflow (tfjs-node, CPU)',
  },
  cpu: { pkg: '@tensorflow/tfjs', install: '`npm install @tensorflow/tfjs`', describe: 'cpu (pure JS)' },
});

const cache = new Map<TfjsBackendName, Promise<Tf>>();
let loadedNative: TfjsBackendName | null = null;

function isNotInstalled(err: unknown, pkg: string): boolean {
  const e = err as NodeJS.ErrnoException;
  return (e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND') && String(e.message).includes(pkg);
}

async function loadOne(name: TfjsBackendName): Promise<Tf> {
  let p = cache.get(name);
  if (!p) {
    p = (async () => {
      if (name === 'cpu') {
        const tf = (await import('@tensorflow/tfjs')) as Tf;
        // Library code does not print: PROD silences tfjs's console "install tfjs-node" banner
        // (our notes say the same thing, and the CLI prints them).
        tf.env().set('PROD', true);
        if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
        await tf.ready();
        return tf;
      }
      // The native packages register a `tensorflow` backend when required; only one may be
      // loaded per process (they would fight over the same backend name).
      if (loadedNative && loadedNative !== name) throw new Error(`${HOW[loadedNative].pkg} is already loaded in this process`);
      const tf = require(HOW[name].pkg) as Tf;
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend("tensorflow") returned false');
      await tf.ready();
      loadedNative = name;
      return tf;
    })();
    cache.set(name, p);
    p.catch(() => cache.delete(name));
  }
  return p;
}

function why(name: TfjsBackendName, err: unknown): string {
  const how = HOW[name];
  if (isNotInstalled(err, how.pkg)) return `${name}: not installed; to use it: ${how.install}`;
  return `${name}: failed to load: ${(err as Error)?.message ?? String(err)}`.split('\n')[0]!;
}

/**
 * Load TensorFlow.js. `auto` tries each backend best first; a named backend must load or this
 * throws E_BACKEND_UNAVAILABLE (with what was tried).
 */
export async function loadTfjs(requested: 'auto' | TfjsBackendName = 'auto'): Promise<LoadedTfjs> {
  if (requested !== 'auto' && !(TFJS_BACKENDS as readonly string[]).includes(requested)) {
    throw new CelebaGanError('E_BAD_ARGUMENT', `Unsupported tfjs backend "${String(requested)}". Should be one of: auto, ${TFJS_BACKENDS.join(', ')}`);
  }
  const order: readonly TfjsBackendName[] = requested === 'auto' ? TFJS_BACKENDS : [requested];
  const notes: string[] = [];
  for (const name of order) {
    try {
      const tf = await loadOne(name);
      return { tf, backend: name, description: HOW[name].describe, notes };
    } catch (err) {
      notes.push(why(name, err));
    }
  }
  throw new CelebaGanError(
    'E_BACKEND_UNAVAILABLE',
    `TensorFlow.js backend ${requested === 'auto' ? '(any)' : `"${requested}"`} cannot load. Tried:\n  ${notes.join('\n  ')}`,
    {
      hint:
        requested === 'auto'
          ? 'Reinstall the package dependencies (`npm install`).'
          : 'Install it as shown above, or pass --backend auto to use the best available one.',
    },
  );
}
