import { CelebaGanError, UsageError, assertInteger } from '../errors.js';
import type { ArchitectureSpec } from '../model/spec.js';
import type { TrainingEngine } from './engine.js';
import { createTfjsEngine } from './tfjs/tfjs-engine.js';

/**
 * The one place that picks a training engine. `auto` = the native libtorch engine when its addon
 * loads, else TensorFlow.js, and the chosen engine's `info.notes` say why torch was not used. An
 * engine (or backend) asked for by name that cannot load is an error, never a fallback.
 */

export const ENGINE_CHOICES = ['auto', 'tfjs', 'torch'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

export interface CreateEngineOptions {
  engine?: EngineChoice;
  /** tfjs: `auto` | `tfjs-node-gpu` | `tfjs-node` | `cpu`. torch: engine-specific. */
  backend?: string;
  /** torch: `cpu`, `cuda`, `cuda:N`, ... */
  device?: string;
  threads?: number;
  /** torch on CUDA: mixed precision (bfloat16 autocast). */
  amp?: boolean;
}

interface TorchModule {
  createTorchEngine(spec: ArchitectureSpec, opts: Omit<CreateEngineOptions, 'engine'>): Promise<TrainingEngine>;
}

// Loaded by path at run time: the torch engine (src/engines/torch) is optional and its addon may
// be missing; a failed load must not stop tfjs from working.
const TORCH_MODULE = './torch/torch-engine.js';

async function createTorch(spec: ArchitectureSpec, opts: Omit<CreateEngineOptions, 'engine'>): Promise<TrainingEngine> {
  const mod = (await import(TORCH_MODULE)) as TorchModule;
  return mod.createTorchEngine(spec, opts);
}

export async function createEngine(spec: ArchitectureSpec, opts: CreateEngineOptions = {}): Promise<TrainingEngine> {
  const choice = opts.engine ?? 'auto';
  if (!(ENGINE_CHOICES as readonly string[]).includes(choice)) {
    throw new UsageError('E_BAD_ARGUMENT', `Unsupported engine "${String(choice)}". Should be one of: ${ENGINE_CHOICES.join(', ')}`);
  }
  // Validated here for every engine: tfjs has no thread setting and would only note a bad one.
  if (opts.threads !== undefined) assertInteger('threads', opts.threads, 1, 1024);
  const { engine: _ignored, ...rest } = opts;
  if (choice === 'tfjs') {
    if (opts.amp)
      throw new UsageError('E_BAD_ARGUMENT', '--amp is for the torch engine on CUDA (--engine torch --device cuda); the tfjs engine has no mixed precision');
    return createTfjsEngine(spec, rest);
  }
  if (choice === 'torch') {
    try {
      return await createTorch(spec, rest);
    } catch (err) {
      if (err instanceof CelebaGanError) throw err;
      throw new CelebaGanError('E_ENGINE_UNAVAILABLE', `the torch engine cannot load: ${firstLine(err)}`, {
        hint: 'Build the native addon with `npm run build:native` (needs libtorch), or use --engine tfjs.',
        cause: err,
      });
    }
  }
  // auto: torch if its addon loads; a tfjs backend name implies tfjs. Only "the addon (or the
  // engine's module) cannot load" falls back: anything else the torch engine throws (a bad
  // --device, --threads, --amp on the CPU, ...) is the user's error and reaches them.
  const tfjsBackend = opts.backend === undefined || TFJS_BACKENDS.includes(opts.backend);
  let torchWhy = `--backend ${String(opts.backend)} is a tfjs backend`;
  if (opts.backend === undefined || !tfjsBackend) {
    try {
      return await createTorch(spec, rest);
    } catch (err) {
      if (!tfjsBackend || !torchUnavailable(err)) throw err;
      torchWhy = firstLine(err);
    }
  }
  if (opts.amp) {
    throw new UsageError('E_BAD_ARGUMENT', `--amp needs the torch engine on CUDA, but the torch engine cannot load here (${torchWhy})`, {
      hint: 'Build the addon against a CUDA libtorch (LIBTORCH_USE_PYTORCH=1 npm run build:native), or leave --amp out.',
    });
  }
  const engine = await createTfjsEngine(spec, rest);
  engine.info.notes.unshift(`engine auto: torch not used (${torchWhy}); using tfjs`);
  return engine;
}

const TFJS_BACKENDS: readonly string[] = ['auto', 'tfjs-node-gpu', 'tfjs-node', 'cpu'];

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0] ?? '';
}

/**
 * Whether a torch-engine failure means "the engine is not installed here", the one case `auto`
 * may fall back from: the addon cannot load (E_TORCH_UNAVAILABLE from src/bindings/torch.ts) or
 * the engine's own module is missing from the build. CelebaGanErrors with other codes are the
 * user's (bad device, threads, ...), and any other Error is a bug: neither is hidden.
 */
export function torchUnavailable(err: unknown): boolean {
  if (err instanceof CelebaGanError) return err.code === 'E_TORCH_UNAVAILABLE';
  const code = (err as { code?: unknown })?.code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes('torch');
}
