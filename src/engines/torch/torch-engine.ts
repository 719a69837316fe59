import { availableParallelism } from 'node:os';
import { loadTorchAddon, type NativeEngine, type TorchSystemInfo } from '../../bindings/torch.js';
import { CelebaGanError, UsageError, assertInteger } from '../../errors.js';
import { initialWeights } from '../../model/init.js';
import { allParameters, attributeCount } from '../../model/shapes.js';
import type { ArchitectureSpec } from '../../model/spec.js';
import type { TensorMap } from '../../model/tensors.js';
import { parseTrainDevice } from '../device.js';
import { dropoutLayers } from '../randomness.js';
import { deriveSeed } from '../../util/rng.js';
import { EMA_STATS_CHUNK, assertEmaDecay, emaParameters, emaStatsLabels, emaStatsLatents } from '../ema.js';
import type { EngineInfo, GeneratorWeights, OptimizerState, StepMetrics, TrainStepOptions, TrainingEngine } from '../engine.js';
import { nativeLayers, nativeParams } from './layers.js';
import { checkedEma, checkedLabels, checkedState } from '../state.js';
import { distError, type ProcessGroup } from '../../distributed/group.js';

/**
 * The native libtorch engine: both networks built in C++ from the spec (./layers.ts passes it as
 * data), whole training steps run in C++ off the JavaScript thread, weights cross as canonical
 * Float32Arrays (the canonical layouts are PyTorch's, so nothing is transposed).
 * Implements TrainingEngine (src/engines/engine.ts).
 *
 * Randomness: without `randomness`, a step's z and dropout masks come from a torch CPU generator
 * seeded with deriveSeed(seed, 'torch-step', step): a function of (seed, step) alone, so a resumed
 * run repeats what an uninterrupted one would do (on this engine; tfjs draws different numbers).
 *
 * Data-parallel training (`setGroup`): after each backward (D, then G) the gradients are averaged
 * over the group's ranks in C++ before Adam's step, so every replica applies the same update.
 * Rank r > 0 draws its z and masks from deriveSeed(seed, 'torch-step', step, 'rank', r); rank 0
 * keeps the single-process seed, so a world of one is today's run bit for bit.
 */

export interface TorchEngineOptions {
  /** Only `auto` or `libtorch` (there is one torch backend). */
  backend?: string;
  /** `auto` (CUDA when available, else CPU), `cpu`, `cuda`, `cuda:N`. */
  device?: string;
  /** CPU threads for libtorch (process-wide); default: every core. */
  threads?: number;
  /** Run convolutions channels-last (NHWC in memory). Default: off (slower here on CPU: see notes). */
  channelsLast?: boolean;
  /** Mixed precision (bfloat16 autocast); CUDA only. */
  amp?: boolean;
  /**
   * Transposed convolutions: `gemm` (default: one matrix product for the whole batch + col2im) or
   * `aten` (libtorch's conv_transpose2d: on the CPU one small GEMM per image, several times slower
   * in libtorch 1.13; kept for comparison in bench/train-native.ts).
   */
  convTranspose?: 'gemm' | 'aten';
}

export type BlasKind = 'openblas' | 'mkl' | 'blis' | 'reference' | 'unknown';

/** Which BLAS the process loaded, from the resolved library paths the addon reports. */
export function classifyBlas(paths: readonly string[]): BlasKind {
  if (paths.some((p) => /openblas/i.test(p))) return 'openblas';
  if (paths.some((p) => /mkl/i.test(p))) return 'mkl';
  if (paths.some((p) => /blis/i.test(p))) return 'blis';
  // Debian's reference BLAS: /usr/lib/<triplet>/blas/libblas.so.3 (via /etc/alternatives)
  if (paths.some((p) => /\/blas\/libblas\.so/.test(p))) return 'reference';
  return 'unknown';
}

export function blasNotes(kind: BlasKind): string[] {
  if (kind !== 'reference') return [];
  return [
    'BLAS: libtorch is using the reference BLAS, which makes training several times slower (docs/development.md: the native addon); install OpenBLAS: sudo apt-get install libopenblas0-pthread (or select it: update-alternatives --config libblas.so.3-x86_64-linux-gnu)',
  ];
}

function resolveDevice(requested: string | undefined, sys: TorchSystemInfo): string {
  const device = requested ?? 'auto';
  const parsed = parseTrainDevice(device);
  if (parsed.kind === 'auto') return sys.cuda ? 'cuda:0' : 'cpu';
  if (parsed.kind === 'cpu') return 'cpu';
  const index = parsed.index;
  if (!sys.cuda) {
    throw new CelebaGanError(
      'E_TORCH_DEVICE',
      `--device ${device} needs a libtorch built with CUDA and a visible NVIDIA GPU; this libtorch ${sys.torchVersion} has no CUDA (or sees no GPU)`,
      {
        hint: 'Use --device cpu, or rebuild the addon against a CUDA libtorch: LIBTORCH=/path/to/libtorch-cuda npm run build:native (or LIBTORCH_USE_PYTORCH=1 with a CUDA PyTorch).',
      },
    );
  }
  if (index >= sys.cudaDevices) {
    throw new UsageError('E_TORCH_DEVICE', `Expected a CUDA device index below ${sys.cudaDevices} for device but received "${device}"`, {
      hint: `Use --device cuda:0 .. cuda:${sys.cudaDevices - 1}.`,
    });
  }
  return `cuda:${index}`;
}

export class TorchEngine implements TrainingEngine {
  private native: NativeEngine | null;
  /** Calls run one at a time, in order (the addon also locks, but then the JS thread would wait). */
  private queue: Promise<unknown> = Promise.resolve();
  private group: ProcessGroup | null = null;
  private emaOn = false;
  /** The EMA weights moved since its batch-norm statistics were last computed (src/engines/ema.ts). */
  private emaStale = false;

  constructor(
    readonly spec: ArchitectureSpec,
    readonly info: EngineInfo,
    native: NativeEngine,
  ) {
    this.native = native;
  }

  private live(): NativeEngine {
    if (!this.native) throw new Error('torch engine used after dispose()');
    return this.native;
  }

  private serial<T>(fn: (native: NativeEngine) => T | Promise<T>): Promise<T> {
    const run = this.queue.then(() => fn(this.live()));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async setWeights(weights: TensorMap, optimizer?: OptimizerState): Promise<void> {
    const { weights: w, optimizer: o } = checkedState(this.spec, weights, optimizer);
    await this.serial((native) => {
      native.setWeights(w);
      if (optimizer && o) native.setOptimizer(o, optimizer.steps.generator, optimizer.steps.discriminator);
    });
  }

  async getWeights(): Promise<TensorMap> {
    const raw = await this.serial((native) => native.getWeights());
    const out: TensorMap = new Map();
    for (const p of allParameters(this.spec)) out.set(p.name, { shape: [...p.shape], data: raw[p.name]! });
    return out;
  }

  async getOptimizerState(): Promise<OptimizerState> {
    const raw = await this.serial((native) => native.getOptimizer());
    const trainable = allParameters(this.spec).filter((p) => p.trainable);
    const tensors: TensorMap = new Map();
    for (const p of trainable) tensors.set(`adam.m.${p.name}`, { shape: [...p.shape], data: raw.tensors[`adam.m.${p.name}`]! });
    for (const p of trainable) tensors.set(`adam.v.${p.name}`, { shape: [...p.shape], data: raw.tensors[`adam.v.${p.name}`]! });
    return { tensors, steps: { ...raw.steps } };
  }

  async setEma(decay: number, generator?: TensorMap): Promise<void> {
    assertEmaDecay(decay);
    const start = generator ? checkedEma(this.spec, generator) : null;
    await this.serial((native) => {
      native.setEma(decay, start);
      this.emaOn = decay > 0;
      this.emaStale = false;
    });
  }

  /** Inside serial(): the EMA generator's batch-norm statistics, recomputed if its weights moved. */
  private async freshEma(native: NativeEngine): Promise<void> {
    if (!this.emaOn || !this.emaStale) return;
    const z = emaStatsLatents(this.spec);
    await native.refreshEmaStatistics(z, z.length / this.spec.zDim, EMA_STATS_CHUNK, emaStatsLabels(this.spec) ?? null);
    this.emaStale = false;
  }

  async getEmaWeights(): Promise<TensorMap | null> {
    const raw = await this.serial(async (native) => {
      await this.freshEma(native);
      return native.getEma();
    });
    if (!raw) return null;
    const out: TensorMap = new Map();
    for (const p of emaParameters(this.spec)) out.set(p.name, { shape: [...p.shape], data: raw[p.name]! });
    return out;
  }

  async trainStep(batch: Uint8Array, n: number, opts: TrainStepOptions): Promise<StepMetrics> {
    const { height: H, width: W, channels: C } = this.spec.image;
    if (!Number.isInteger(n) || n < 2) throw new UsageError('E_BAD_ARGUMENT', `Expected a batch of at least 2 images for trainStep but received ${n}`);
    if (batch.length !== n * H * W * C) throw new Error(`trainStep: batch has ${batch.length} bytes, ${n} images of ${H}x${W}x${C} need ${n * H * W * C}`);
    const r = opts.randomness;
    if (r) {
      if (r.z.length !== n * this.spec.zDim) throw new Error(`trainStep: z has ${r.z.length} values, expected ${n}x${this.spec.zDim}`);
      const layers = dropoutLayers(this.spec);
      for (const [which, masks] of [
        ['dropoutD', r.dropoutD],
        ['dropoutG', r.dropoutG],
      ] as const) {
        if (!masks) continue;
        if (masks.length !== layers.length) throw new Error(`randomness.${which} has ${masks.length} masks, the generator has ${layers.length} dropout layers`);
        masks.forEach((m, i) => {
          if (m.length !== n * layers[i]!.size) throw new Error(`randomness.${which}[${i}] has ${m.length} values, expected ${n}x${layers[i]!.size}`);
        });
      }
    }
    const labels = checkedLabels(this.spec, opts.labels, n, 'trainStep') ?? null;
    const rank = this.group?.rank ?? 0;
    const seed = rank === 0 ? deriveSeed(opts.seed, 'torch-step', opts.step) : deriveSeed(opts.seed, 'torch-step', opts.step, 'rank', rank);
    const grouped = this.group !== null;
    return this.serial(async (native) => {
      try {
        const { allReduceMs, ...m } = await native.trainStep(batch, n, seed, r ?? null, labels);
        this.emaStale = this.emaOn;
        return grouped ? { ...m, allReduceMs } : m;
      } catch (err) {
        // A failed gradient all-reduce carries its E_DIST_* code and the lost rank.
        throw (err as { code?: unknown })?.code ? distError(err) : err;
      }
    });
  }

  /**
   * Data-parallel training: from the next step on, gradients are averaged over `group`'s ranks
   * (null: back to one process). Every rank must hold the same weights (checkIdenticalWeights).
   * `syncBn`: training-mode batch norm uses the global batch's statistics (all-reduced forward
   * and backward, as PyTorch's SyncBatchNorm); otherwise each replica its own (DDP's default).
   */
  async setGroup(group: ProcessGroup | null, opts: { syncBn?: boolean } = {}): Promise<void> {
    await this.serial((native) => native.setGroup(group ? group.native : null, opts.syncBn ?? false));
    this.group = group;
  }

  async generate(z: Float32Array, n: number, weights: GeneratorWeights = 'raw', labels?: Float32Array): Promise<Float32Array> {
    if (z.length !== n * this.spec.zDim) throw new Error(`generate: z has ${z.length} values, expected ${n}x${this.spec.zDim}`);
    const y = checkedLabels(this.spec, labels, n, 'generate') ?? null;
    return this.serial(async (native) => {
      if (weights === 'ema') await this.freshEma(native);
      return native.generate(z, n, weights === 'ema', y);
    });
  }

  async discriminate(images: Float32Array, n: number, labels?: Float32Array): Promise<Float32Array> {
    const { channels: C, height: H, width: W } = this.spec.image;
    if (images.length !== n * C * H * W) throw new Error(`discriminate: images have ${images.length} values, expected ${n}x${C}x${H}x${W}`);
    const y = checkedLabels(this.spec, labels, n, 'discriminate') ?? null;
    return this.serial((native) => native.discriminate(images, n, y));
  }

  /** Frees the native tensors once queued calls have finished. */
  dispose(): void {
    const native = this.native;
    if (!native) return;
    this.native = null;
    void this.queue.then(() => native.dispose());
  }
}

/**
 * Load the addon and build a torch engine for `spec`, starting from the same initial weights as
 * every engine (initialWeights(spec, 0); callers set the run's own with setWeights).
 * Throws E_TORCH_UNAVAILABLE when the addon cannot load, E_TORCH_DEVICE for a device it lacks.
 */
export async function createTorchEngine(spec: ArchitectureSpec, opts: TorchEngineOptions = {}): Promise<TorchEngine> {
  if (opts.backend !== undefined && opts.backend !== 'auto' && opts.backend !== 'libtorch') {
    throw new UsageError('E_BAD_ARGUMENT', `Unsupported backend "${opts.backend}" for the torch engine. Should be one of: auto, libtorch`);
  }
  const addon = loadTorchAddon();
  const sys = addon.systemInfo();
  const device = resolveDevice(opts.device, sys);
  const cuda = device.startsWith('cuda');
  if (opts.amp && !cuda) {
    throw new UsageError('E_BAD_ARGUMENT', 'Mixed precision (--amp) needs --device cuda', { hint: 'Leave --amp out on the CPU.' });
  }
  const threads = opts.threads === undefined ? availableParallelism() : assertInteger('threads', opts.threads, 1, 1024);
  const effectiveThreads = addon.setThreads(threads);
  const blas = classifyBlas(sys.blasLibraries);
  const notes = cuda ? [] : blasNotes(blas);
  const native = new addon.Engine({
    params: nativeParams(spec),
    generator: nativeLayers(spec, 'generator'),
    discriminator: nativeLayers(spec, 'discriminator'),
    zDim: spec.zDim,
    labels: attributeCount(spec),
    latent: spec.latent,
    image: { ...spec.image },
    training: { ...spec.training },
    device,
    channelsLast: opts.channelsLast ?? false,
    amp: opts.amp ?? false,
    convTranspose: opts.convTranspose ?? 'gemm',
  });
  const details = cuda
    ? [opts.amp ? 'bfloat16 autocast' : 'float32']
    : [`${effectiveThreads} thread${effectiveThreads === 1 ? '' : 's'}`, `BLAS ${blas}`, ...(sys.mkldnn ? ['oneDNN'] : [])];
  if (opts.channelsLast) details.push('channels-last');
  if (opts.convTranspose === 'aten') details.push('aten conv_transpose2d');
  const info: EngineInfo = { engine: 'torch', backend: `libtorch ${sys.torchVersion} ${cuda ? 'cuda' : 'cpu'} (${details.join(', ')})`, device, notes };
  const engine = new TorchEngine(spec, info, native);
  await engine.setWeights(initialWeights(spec, 0));
  return engine;
}
