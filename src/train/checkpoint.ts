import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { OptimizerState } from '../engines/engine.js';
import { CelebaGanError } from '../errors.js';
import { allParameters } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import type { TensorMap } from '../model/tensors.js';
import { fsyncDir, writeFileAtomicSync } from '../util/atomic.js';
import { decodeSafetensors, encodeSafetensors } from '../util/safetensors.js';
import { packageVersion } from '../version.js';

/**
 * Run folders and checkpoints.
 *
 *   <run>/run.json                                   RunConfig: what this run is (written once)
 *   <run>/checkpoints/step-000001000/manifest.json    CheckpointManifest (self-describing)
 *   <run>/checkpoints/step-000001000/weights.safetensors    canonical weights, both networks
 *   <run>/checkpoints/step-000001000/optimizer.safetensors  Adam moments `adam.m.<name>`, `adam.v.<name>`
 *
 * A checkpoint is written into a hidden temporary folder and renamed into place, so a crash
 * leaves either the whole checkpoint or none. The manifest holds the sha256 of both tensor
 * files, so a damaged file is caught on load instead of producing a silently wrong model.
 *
 * Exactness of resume: every random draw of a step is a function of (seed, step) and every
 * epoch's shuffle a function of (seed, epoch), so (seed, step) IS the RNG state; the manifest
 * records it as `rng` for readers who look for one.
 */

export const RUN_FORMAT_VERSION = 1;
export const CHECKPOINT_FORMAT_VERSION = 1;
export const WEIGHTS_FILE = 'weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const MANIFEST_FILE = 'manifest.json';
export const RUN_FILE = 'run.json';
export const CHECKPOINTS_DIR = 'checkpoints';

export interface DataRef {
  /** As given when the run was created (relative paths stay relative). */
  path: string;
  /** Hex SHA-256 of the pixel bytes (from the dataset header). */
  checksum: string;
  count: number;
  height: number;
  width: number;
}

/** `run.json`: what a run is. Written when the run is created; resumes check against it. */
export interface RunConfig {
  format: 'celeba-gan-run';
  formatVersion: number;
  packageVersion: string;
  preset: string;
  width: number;
  spec: ArchitectureSpec;
  seed: number;
  batchSize: number;
  data: DataRef;
  /** Engine that created the run (`tfjs` | `torch`); a resume may use another. */
  engine: string;
  /** ISO time. */
  created: string;
  /** Seed of the fixed noise behind `samples/step-*.png` (z for image i is derived from it). */
  sampleSeed: number;
  sampleCount: number;
}

export interface CheckpointManifest {
  format: 'celeba-gan-checkpoint';
  formatVersion: number;
  packageVersion: string;
  preset: string;
  width: number;
  spec: ArchitectureSpec;
  /** Training steps completed. */
  step: number;
  /** Epochs completed when the checkpoint was taken may be fractional: this is floor(step / stepsPerEpoch). */
  epoch: number;
  stepsPerEpoch: number;
  batchSize: number;
  seed: number;
  /** The randomness state: all draws are derived from (seed, step); see the file header. */
  rng: { kind: 'derived'; seed: number; step: number };
  dataChecksum: string;
  engine: string;
  backend: string;
  /** Adam updates applied per network. */
  optimizerSteps: OptimizerState['steps'];
  /** sha256 (hex) of each tensor file. */
  files: Record<string, string>;
  created: string;
  /** Free-form extras from other parts of training (e.g. evaluation results). */
  extra?: Record<string, unknown>;
}

export interface CheckpointRef {
  step: number;
  dir: string;
}

export interface LoadedCheckpoint {
  manifest: CheckpointManifest;
  spec: ArchitectureSpec;
  weights: TensorMap;
  optimizer: OptimizerState;
  dir: string;
}

export interface SaveCheckpointOptions {
  spec: ArchitectureSpec;
  step: number;
  stepsPerEpoch: number;
  batchSize: number;
  seed: number;
  dataChecksum: string;
  engine: string;
  backend?: string;
  weights: TensorMap;
  optimizer: OptimizerState;
  /** Keep only the newest `keep` checkpoints (>= 1); undefined keeps all. */
  keep?: number;
  extra?: Record<string, unknown>;
}

const STEP_DIR = /^step-(\d{9,})$/;

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(9, '0')}`;
}

function sha256(parts: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

function writeFileSynced(path: string, parts: readonly Uint8Array[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Checkpoints of a run, oldest first. Half-written (temporary) folders are ignored. */
export function listCheckpoints(runDir: string): CheckpointRef[] {
  const root = join(runDir, CHECKPOINTS_DIR);
  if (!existsSync(root)) return [];
  const out: CheckpointRef[] = [];
  for (const name of readdirSync(root)) {
    const m = STEP_DIR.exec(name);
    if (!m) continue;
    const dir = join(root, name);
    if (!existsSync(join(dir, MANIFEST_FILE))) continue;
    out.push({ step: Number(m[1]), dir });
  }
  return out.sort((a, b) => a.step - b.step);
}

/**
 * Write a checkpoint atomically (temporary folder, fsync, rename), then delete the oldest ones
 * beyond `keep`. Saving a step that already exists replaces it.
 */
export function saveCheckpoint(runDir: string, o: SaveCheckpointOptions): { dir: string; manifest: CheckpointManifest } {
  const root = join(runDir, CHECKPOINTS_DIR);
  mkdirSync(root, { recursive: true });
  checkTensors(o.spec, o.weights, 'weights to save', (name) => name);
  const weightParts = encodeSafetensors(o.weights, { format: 'pt', 'celeba_gan.step': String(o.step) });
  const optParts = encodeSafetensors(o.optimizer.tensors, {
    format: 'pt',
    'celeba_gan.adam_steps_generator': String(o.optimizer.steps.generator),
    'celeba_gan.adam_steps_discriminator': String(o.optimizer.steps.discriminator),
  });
  const manifest: CheckpointManifest = {
    format: 'celeba-gan-checkpoint',
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    packageVersion: packageVersion(),
    preset: o.spec.preset,
    width: o.spec.width,
    spec: o.spec,
    step: o.step,
    epoch: Math.floor(o.step / o.stepsPerEpoch),
    stepsPerEpoch: o.stepsPerEpoch,
    batchSize: o.batchSize,
    seed: o.seed,
    rng: { kind: 'derived', seed: o.seed, step: o.step },
    dataChecksum: o.dataChecksum,
    engine: o.engine,
    backend: o.backend ?? '',
    optimizerSteps: { ...o.optimizer.steps },
    files: { [WEIGHTS_FILE]: sha256(weightParts), [OPTIMIZER_FILE]: sha256(optParts) },
    created: new Date().toISOString(),
    ...(o.extra ? { extra: o.extra } : {}),
  };
  const name = checkpointDirName(o.step);
  const final = join(root, name);
  const tmp = join(root, `.${name}.${process.pid}.${Date.now().toString(36)}.tmp`);
  mkdirSync(tmp);
  try {
    writeFileSynced(join(tmp, WEIGHTS_FILE), weightParts);
    writeFileSynced(join(tmp, OPTIMIZER_FILE), optParts);
    writeFileSynced(join(tmp, MANIFEST_FILE), [Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)]);
    fsyncDir(tmp);
    if (existsSync(final)) {
      // Same step saved twice (e.g. a periodic save and the final one): swap, then drop the old.
      const old = `${tmp}.old`;
      renameSync(final, old);
      renameSync(tmp, final);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, final);
    }
    fsyncDir(root);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  if (o.keep !== undefined) pruneCheckpoints(runDir, o.keep);
  return { dir: final, manifest };
}

/** Delete all but the newest `keep` checkpoints (keep >= 1). */
export function pruneCheckpoints(runDir: string, keep: number): void {
  const all = listCheckpoints(runDir);
  for (const ref of all.slice(0, Math.max(0, all.length - Math.max(1, keep)))) rmSync(ref.dir, { recursive: true, force: true });
}

function corrupt(where: string, why: string, cause?: unknown): CelebaGanError {
  return new CelebaGanError('E_CHECKPOINT_CORRUPT', `checkpoint ${where} is damaged: ${why}`, {
    hint: 'Delete that checkpoint folder to fall back to an older one, or retrain with `celeba-gan train`.',
    cause,
  });
}

function checkTensors(spec: ArchitectureSpec, tensors: TensorMap, where: string, key: (name: string) => string): void {
  for (const p of allParameters(spec)) {
    const t = tensors.get(key(p.name));
    if (!t) throw corrupt(where, `tensor ${key(p.name)} is missing`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw corrupt(where, `tensor ${key(p.name)} has shape [${t.shape.join(', ')}] but the spec needs [${p.shape.join(', ')}]`);
    }
  }
}

/** Read and check a checkpoint's manifest only (cheap: no tensors). */
export function readManifest(dir: string): CheckpointManifest {
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as CheckpointManifest;
  } catch (err) {
    throw corrupt(dir, `${MANIFEST_FILE} cannot be read as JSON (${(err as Error).message})`, err);
  }
  if (manifest?.format !== 'celeba-gan-checkpoint') throw corrupt(dir, `${MANIFEST_FILE} is not a celeba-gan checkpoint manifest`);
  if (manifest.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw new CelebaGanError(
      'E_CHECKPOINT_VERSION',
      `checkpoint ${dir} has format version ${String(manifest.formatVersion)} (written by celeba-gan ${manifest.packageVersion}); this celeba-gan ${packageVersion()} reads version ${CHECKPOINT_FORMAT_VERSION}`,
      { hint: `Use celeba-gan ${manifest.packageVersion} for this run, or start a new run with \`celeba-gan train --out <new folder>\`.` },
    );
  }
  if (!manifest.spec || typeof manifest.step !== 'number') throw corrupt(dir, `${MANIFEST_FILE} lacks the spec or the step`);
  return manifest;
}

/** Load a checkpoint (`latest` or a step number), verifying checksums and tensor shapes. */
export async function loadCheckpoint(runDir: string, which: 'latest' | number = 'latest'): Promise<LoadedCheckpoint> {
  const all = listCheckpoints(runDir);
  if (all.length === 0) {
    throw new CelebaGanError('E_NO_CHECKPOINT', `${runDir} has no checkpoints (looked in ${join(runDir, CHECKPOINTS_DIR)}/)`, {
      hint: 'Run `celeba-gan train --out <run folder>` first, or pass the folder of a run that has trained.',
      kind: 'usage',
    });
  }
  const ref = which === 'latest' ? all[all.length - 1]! : all.find((c) => c.step === which);
  if (!ref) {
    throw new CelebaGanError('E_NO_CHECKPOINT', `${runDir} has no checkpoint for step ${which}; it has steps ${all.map((c) => c.step).join(', ')}`, {
      hint: 'Pick one of those steps, or `latest`.',
      kind: 'usage',
    });
  }
  const manifest = readManifest(ref.dir);
  const readChecked = (file: string): Buffer => {
    let buf: Buffer;
    try {
      buf = readFileSync(join(ref.dir, file));
    } catch (err) {
      throw corrupt(ref.dir, `${file} cannot be read (${(err as Error).message})`, err);
    }
    const want = manifest.files?.[file];
    const got = sha256([buf]);
    if (want !== got) throw corrupt(ref.dir, `${file} has sha256 ${got.slice(0, 12)}… but the manifest records ${String(want).slice(0, 12)}…`);
    return buf;
  };
  const decode = (file: string): TensorMap => {
    try {
      return decodeSafetensors(readChecked(file), join(ref.dir, file)).tensors;
    } catch (err) {
      if (err instanceof CelebaGanError && err.code === 'E_CHECKPOINT_CORRUPT') throw err;
      throw corrupt(ref.dir, (err as Error).message, err);
    }
  };
  const weights = decode(WEIGHTS_FILE);
  const moments = decode(OPTIMIZER_FILE);
  checkTensors(manifest.spec, weights, ref.dir, (name) => name);
  return {
    manifest,
    spec: manifest.spec,
    weights,
    optimizer: { tensors: moments, steps: { ...manifest.optimizerSteps } },
    dir: ref.dir,
  };
}

/** Fail unless a checkpoint was trained with the given preset and width. */
export function assertSameArchitecture(manifest: CheckpointManifest, spec: ArchitectureSpec, where: string): void {
  if (manifest.preset !== spec.preset || manifest.width !== spec.width || JSON.stringify(manifest.spec) !== JSON.stringify(spec)) {
    throw new CelebaGanError(
      'E_CHECKPOINT_MISMATCH',
      `${where} holds a ${manifest.preset} model at width ${manifest.width}, but ${spec.preset} at width ${spec.width} was asked for`,
      { hint: `Pass --preset ${manifest.preset} --width ${manifest.width} to continue it, or use another --out for a new run.`, kind: 'usage' },
    );
  }
}

export function runConfigPath(runDir: string): string {
  return join(runDir, RUN_FILE);
}

export function writeRunConfig(runDir: string, config: RunConfig): void {
  mkdirSync(runDir, { recursive: true });
  writeFileAtomicSync(runConfigPath(runDir), `${JSON.stringify(config, null, 2)}\n`);
}

/** Read `run.json`; null when the folder holds no run. */
export function readRunConfig(runDir: string): RunConfig | null {
  const path = runConfigPath(runDir);
  if (!existsSync(path)) return null;
  let config: RunConfig;
  try {
    config = JSON.parse(readFileSync(path, 'utf8')) as RunConfig;
  } catch (err) {
    throw new CelebaGanError('E_RUN_CORRUPT', `${path} cannot be read as JSON (${(err as Error).message})`, {
      hint: 'Restore the file or start a new run with another --out.',
      cause: err,
    });
  }
  if (config?.format !== 'celeba-gan-run') {
    throw new CelebaGanError('E_RUN_CORRUPT', `${path} is not a celeba-gan run file`, { hint: 'Use another --out for a new run.' });
  }
  if (config.formatVersion !== RUN_FORMAT_VERSION) {
    throw new CelebaGanError('E_CHECKPOINT_VERSION', `${path} has run format version ${String(config.formatVersion)}; this celeba-gan reads version ${RUN_FORMAT_VERSION}`, {
      hint: `Use celeba-gan ${config.packageVersion} for this run, or start a new run with another --out.`,
    });
  }
  return config;
}
