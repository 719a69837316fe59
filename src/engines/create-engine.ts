import { CelebaGanError, UsageError } from '../errors.js';
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
  const { engine: _ignored, ...rest } = opts;
  if (choice === 'tfjs') {
    if (opts.amp) throw new UsageError('E_BAD_ARGUMENT', '--amp is for the torch engine on CUDA (--engine torch --device cuda); the tfjs engine has no mixed precision');
    return createTfjsEngine(spec, rest);
  }
  if (choice === 'torch') {
    try {
      return await createTorch(spec, rest);
    } catch (err) {
      if (err instanceof CelebaGanError) throw err;
      throw new CelebaGanError('E_ENGINE_UNAVAILABLE', `the torch engine cannot load: ${(err as Error)?.message ?? String(err)}`.split('\n')[0]!, {
        hint: 'Build the native addon with `npm run build:native` (needs libtorch), or use --engine tfjs.',
        cause: err,
        kind: 'usage',
      });
    }
  }
  // auto: torch if it loads; a tfjs backend name implies tfjs.
  const tfjsBackend = opts.backend === undefined || ['auto', 'tfjs-node-gpu', 'tfjs-node', 'cpu'].includes(opts.backend);
  let torchWhy = `--backend ${String(opts.backend)} is a tfjs backend`;
  if (opts.backend === undefined || !tfjsBackend) {
    try {
      return await createTorch(spec, rest);
    } catch (err) {
      torchWhy = ((err as Error)?.message ?? String(err)).split('\n')[0]!;
      if (!tfjsBackend) throw err;
    }
  }
  if (opts.amp) {
    throw new UsageError('E_BAD_ARGUMENT', `--amp needs the torch engine on CUDA, but the torch engine is not available (${torchWhy})`);
  }
  const engine = await createTfjsEngine(spec, rest);
  engine.info.notes.unshift(`engine auto: torch not used (${torchWhy}); using tfjs`);
  return engine;
}
