import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { celebaGanRoot } from '../util/package-root.js';
import { CelebaGanError } from '../errors.js';

/**
 * The only loader of the native libtorch addon (native/, built by `npm run build:native`).
 * When it cannot load, the error lists each path tried with the loader's own message, and
 * `Possible solutions:` for this machine. `CELEBA_GAN_TORCH_ADDON=/path/to/addon.node` overrides
 * the path (then nothing else is tried).
 */

/** One layer of a network as the addon reads it (src/engines/torch/layers.ts builds these). */
export interface NativeLayer {
  kind: string;
  weight?: string;
  bias?: string;
  runningMean?: string;
  runningVar?: string;
  stride?: number;
  /** [top, bottom, left, right]: added (conv2d) or cropped (convTranspose2d). */
  pads?: [number, number, number, number];
  momentum?: number;
  epsilon?: number;
  alpha?: number;
  rate?: number;
  /** reshape target [C, H, W] */
  shape?: [number, number, number];
}

export interface NativeParam {
  name: string;
  shape: number[];
  trainable: boolean;
  network: 'generator' | 'discriminator';
}

export interface NativeEngineOptions {
  params: NativeParam[];
  generator: NativeLayer[];
  discriminator: NativeLayer[];
  zDim: number;
  /** K, the attribute count of a conditional spec (0: unconditional; the label arguments are then null). */
  labels: number;
  latent: 'uniform' | 'normal';
  image: { channels: number; height: number; width: number };
  training: { learningRate: number; beta1: number; beta2: number; epsilon: number; realLabel: number };
  /** `cpu`, `cuda`, `cuda:N` (libtorch device strings). */
  device: string;
  channelsLast: boolean;
  amp: boolean;
  /** Transposed convolutions as one batched GEMM + col2im (default) or libtorch's conv_transpose2d. */
  convTranspose?: 'gemm' | 'aten';
}

export interface NativeRandomness {
  z: Float32Array;
  dropoutD: Float32Array[] | null;
  dropoutG: Float32Array[] | null;
}

export interface NativeEngine {
  setWeights(weights: Record<string, Float32Array>): void;
  getWeights(): Record<string, Float32Array>;
  setOptimizer(tensors: Record<string, Float32Array>, stepsG: number, stepsD: number): void;
  getOptimizer(): { tensors: Record<string, Float32Array>; steps: { generator: number; discriminator: number } };
  /** decay 0: off; otherwise start the EMA copy from `generator` (by generator tensor name) or, when null, from the raw weights. */
  setEma(decay: number, generator: Record<string, Float32Array> | null): void;
  /** The EMA copy by generator tensor name; null when off. */
  getEma(): Record<string, Float32Array> | null;
  /** Recompute the EMA generator's batch-norm running statistics from `z` [n, zDim] in chunks of `chunk` (src/engines/ema.ts). */
  refreshEmaStatistics(z: Float32Array, n: number, chunk: number, labels: Float32Array | null): Promise<void>;
  /**
   * `seed` (uint32) seeds the step's torch generator (z, dropout masks) unless `randomness` is given.
   * `labels` [n, K]: a conditional spec's attribute rows (null otherwise).
   */
  trainStep(
    batch: Uint8Array,
    n: number,
    seed: number,
    randomness: NativeRandomness | null,
    labels: Float32Array | null,
  ): Promise<{ lossD: number; lossG: number; dReal: number; dFake: number; allReduceMs: number }>;
  /** Average every step's gradients over this group's ranks from now on (null: one process). */
  setGroup(group: NativeProcessGroup | null, syncBn?: boolean): void;
  /** `ema`: run the EMA generator (rejects when it is off). */
  generate(z: Float32Array, n: number, ema: boolean, labels: Float32Array | null): Promise<Float32Array>;
  discriminate(images: Float32Array, n: number, labels: Float32Array | null): Promise<Float32Array>;
  dispose(): void;
}

export interface TorchSystemInfo {
  torchVersion: string;
  cuda: boolean;
  cudaDevices: number;
  mkldnn: boolean;
  threads: number;
  /** Resolved paths of the BLAS libraries loaded into the process. */
  blasLibraries: string[];
}

export interface TorchAddon {
  Engine: new (opts: NativeEngineOptions) => NativeEngine;
  systemInfo(): TorchSystemInfo;
  /** libtorch's intra-op threads (process-wide); returns the count now in effect. */
  setThreads(n: number): number;
}

export const ADDON_ENV = 'CELEBA_GAN_TORCH_ADDON';
const ADDON_FILE = join('native', 'build', 'Release', 'celeba_gan_torch.node');

/** The package root (native/ lives there); falls back to three levels above this file. */
function packageRoot(): string {
  return celebaGanRoot() ?? dirname(dirname(dirname(fileURLToPath(import.meta.url))));
}

/** Where the addon may be, in the order tried. */
function addonCandidates(): string[] {
  const override = process.env[ADDON_ENV];
  if (override) return [override];
  return [join(packageRoot(), ADDON_FILE)];
}

let cached: TorchAddon | null = null;

/** Load the addon (once per process); throws E_TORCH_UNAVAILABLE listing what was tried. */
export function loadTorchAddon(): TorchAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const path of addonCandidates()) {
    if (!existsSync(path)) {
      tried.push(`${path}: not found (the addon was not built)`);
      continue;
    }
    try {
      cached = require(path) as TorchAddon;
      return cached;
    } catch (err) {
      tried.push(`${path}: ${String((err as Error)?.message ?? err).split('\n')[0]}`);
    }
  }
  const override = process.env[ADDON_ENV];
  const solutions = [
    'Install libtorch and OpenBLAS, then build the addon: sudo apt-get install libtorch-dev libopenblas0-pthread && npm run build:native',
    'Or build against a downloaded libtorch (e.g. a CUDA build from pytorch.org): LIBTORCH=/path/to/libtorch npm run build:native',
    'Or against the libtorch inside a Python PyTorch install: LIBTORCH_USE_PYTORCH=1 npm run build:native',
    ...(override ? [`Or unset ${ADDON_ENV} (now ${override}) to use the addon this package builds`] : []),
    'Or train with the TensorFlow.js engine: --engine tfjs',
  ];
  throw new CelebaGanError(
    'E_TORCH_UNAVAILABLE',
    `Could not load the libtorch addon (the torch engine).\nTried:\n  - ${tried.join('\n  - ')}\nPossible solutions:\n  - ${solutions.join('\n  - ')}`,
    { hint: 'Run `npm run build:native` after installing libtorch (see above), or use --engine tfjs.' },
  );
}

// ---------------------------------------------------------------------------------------------
// Data-parallel training: the addon's `dist` export (native/src/dist.cc). src/distributed/ wraps
// it; nothing else uses these types.

/** What `dist.createGroup` reads (src/distributed/group.ts fills it from the launcher's env). */
export interface NativeGroupOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Each collective's limit. */
  timeoutMs: number;
  /** The rendezvous's limit (default: timeoutMs). */
  rendezvousTimeoutMs?: number;
  backend: 'gloo' | 'nccl';
  /** nccl: this rank's CUDA device (LOCAL_RANK). */
  deviceIndex?: number;
  /** A launcher's agent hosts the TCPStore (torchrun's static rendezvous); rank 0 does otherwise. */
  agentStore?: boolean;
  /** Prefix of every store key (torchrun: `/worker/attempt_<restarts>/`). */
  storePrefix?: string;
}

/** A c10d process group. Failures reject with an Error carrying `code` (E_DIST_*) and `lostRank`. */
export interface NativeProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: string;
  /** The mean over ranks of each array, all-reduced in buckets of `bucketBytes` (default 25 MB). */
  allReduce(tensors: Float32Array[], bucketBytes?: number): Promise<Float32Array[]>;
  broadcast(tensors: Float32Array[], root: number): Promise<Float32Array[]>;
  barrier(): Promise<void>;
  /** Every rank's bytes (same length on every rank), in rank order. */
  allGather(bytes: Uint8Array): Promise<Uint8Array[]>;
  close(): void;
}

export interface TorchDistAddon {
  /** False when the addon was built without c10d's Gloo headers; `reason` says how to get them. */
  available: boolean;
  reason: string;
  backends: string[];
  createGroup(opts: NativeGroupOptions): Promise<NativeProcessGroup>;
}

/** The addon's distributed part; E_TORCH_UNAVAILABLE without the addon, E_DIST_UNAVAILABLE without Gloo. */
export function loadDistAddon(): TorchDistAddon {
  const addon = loadTorchAddon() as TorchAddon & { dist?: TorchDistAddon };
  const dist = addon.dist;
  if (!dist || !dist.available) {
    const why = dist ? dist.reason : 'this build of the addon predates distributed training';
    throw new CelebaGanError('E_DIST_UNAVAILABLE', `Distributed training is not available in the libtorch addon: ${why}.`, {
      hint: "Install Gloo's headers (Debian/Ubuntu: sudo apt-get install libgloo-dev), then rebuild the addon: npm run build:native",
    });
  }
  return dist;
}
