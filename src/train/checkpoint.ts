import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { OptimizerState } from '../engines/engine.js';
import { CelebaGanError, fileError } from '../errors.js';
import { checkWeights, firstNonFinite } from '../model/check-weights.js';
import { decodeSafetensors, encodeSafetensors } from '../model/safetensors.js';
import type { ArchitectureSpec } from '../model/spec.js';
import type { TensorMap } from '../model/tensors.js';
import { recoverLeftovers, tempPathFor, writeDirAtomicSync } from '../util/atomic.js';
import { sha256Hex } from '../util/hash.js';
import { packageVersion } from '../version.js';

/**
 * Checkpoints of a run:
 *
 *   <run>/checkpoints/step-000001000/manifest.json          CheckpointManifest (self-describing)
 *   <run>/checkpoints/step-000001000/weights.safetensors    canonical weights, both networks
 *   <run>/checkpoints/step-000001000/optimizer.safetensors  Adam moments `adam.m.<name>`, `adam.v.<name>`
 *
 * A checkpoint is written as one folder by util/atomic.ts (temporary folder, fsync, rename; a
 * same-step replacement is safe at every point), and pruned by renaming it to a temporary name
 * before deleting it, so a kill leaves whole checkpoints and recognisable leftovers, which
 * `recoverCheckpoints` reports and removes. The manifest holds the sha256 of both tensor files,
 * so a damaged file is caught on load instead of producing a silently wrong model.
 *
 * Exactness of resume: every random draw of a step is a function of (seed, step) and every
 * epoch's shuffle a function of (seed, epoch), so (seed, step) IS the RNG state; the manifest
 * records it as `rng` for readers who look for one.
 */

export const CHECKPOINT_FORMAT_VERSION = 1;
export const WEIGHTS_FILE = 'weights.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const MANIFEST_FILE = 'manifest.json';
const CHECKPOINTS_DIR = 'checkpoints';

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
  /** Images per step on each rank (the global batch is worldSize x batchSize). */
  batchSize: number;
  /** Data-parallel ranks that trained up to this checkpoint; absent in older checkpoints: 1. */
  worldSize?: number;
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
  /** Data-parallel ranks (default 1). */
  worldSize?: number;
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

function checkpointsRoot(runDir: string): string {
  return join(runDir, CHECKPOINTS_DIR);
}

/** Every `step-*` folder, oldest first, with whether it is complete (holds its manifest). */
function scanCheckpoints(runDir: string): (CheckpointRef & { complete: boolean })[] {
  const root = checkpointsRoot(runDir);
  if (!existsSync(root)) return [];
  const out: (CheckpointRef & { complete: boolean })[] = [];
  for (const name of readdirSync(root)) {
    const m = STEP_DIR.exec(name);
    if (!m) continue;
    const dir = join(root, name);
    out.push({ step: Number(m[1]), dir, complete: existsSync(join(dir, MANIFEST_FILE)) });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** Complete checkpoints of a run, oldest first (folders without a manifest are not checkpoints). */
export function listCheckpoints(runDir: string): CheckpointRef[] {
  return scanCheckpoints(runDir)
    .filter((c) => c.complete)
    .map(({ step, dir }) => ({ step, dir }));
}

/** Whether the run has any `step-*` folder, complete or not (a resume must then load one or say why not). */
export function hasCheckpointFolders(runDir: string): boolean {
  return scanCheckpoints(runDir).length > 0;
}

/** Folders named like checkpoints but without a manifest, newer than the newest complete one. */
function incompleteAfterLatest(runDir: string): CheckpointRef[] {
  const all = scanCheckpoints(runDir);
  const latest = all.filter((c) => c.complete).at(-1)?.step ?? -1;
  return all.filter((c) => !c.complete && c.step > latest);
}

/**
 * What a killed run left in checkpoints/: temporary folders of a checkpoint being written (removed),
 * the old copy of a checkpoint being replaced when the new one never arrived (renamed back), and
 * half-deleted checkpoints (a `step-*` folder older than the newest complete one, without its
 * manifest: removed). Returns one line per thing done, for the caller to report. A folder without
 * a manifest newer than every complete checkpoint is left alone: loadCheckpoint reports it.
 */
export function recoverCheckpoints(runDir: string): string[] {
  const root = checkpointsRoot(runDir);
  if (!existsSync(root)) return [];
  const lines: string[] = [];
  try {
    for (const l of recoverLeftovers(root)) {
      lines.push(
        l.action === 'restored'
          ? `restored ${l.target} from ${l.path} (a replacement was interrupted)`
          : `removed ${l.path} (left by an interrupted write or prune)`,
      );
    }
    const all = scanCheckpoints(runDir);
    const latest = all.filter((c) => c.complete).at(-1)?.step ?? -1;
    for (const c of all) {
      if (c.complete || c.step > latest) continue;
      rmSync(c.dir, { recursive: true, force: true });
      lines.push(`removed ${c.dir} (a half-deleted checkpoint: no ${MANIFEST_FILE})`);
    }
  } catch (err) {
    throw fileError(err, root, 'clean up');
  }
  return lines;
}

/**
 * Write a checkpoint atomically, then delete the oldest ones beyond `keep`. Saving a step that
 * already exists replaces it (the old one stays until the new one is in place). Weights holding
 * NaN or infinities are refused (E_WEIGHTS_NOT_FINITE): a checkpoint is always a good one.
 */
export function saveCheckpoint(runDir: string, o: SaveCheckpointOptions): { dir: string; manifest: CheckpointManifest } {
  checkWeights(o.spec, o.weights, { where: 'the checkpoint to save' });
  const bad = firstNonFinite(o.weights);
  if (bad) {
    throw new CelebaGanError(
      'E_WEIGHTS_NOT_FINITE',
      `the weights at step ${o.step} hold ${bad.value} in ${bad.name}; training diverged and this state was not saved`,
      {
        hint: 'Resume from the last checkpoint with --resume, or start again with another --seed or a smaller --batch-size.',
      },
    );
  }
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
    worldSize: o.worldSize ?? 1,
    seed: o.seed,
    rng: { kind: 'derived', seed: o.seed, step: o.step },
    dataChecksum: o.dataChecksum,
    engine: o.engine,
    backend: o.backend ?? '',
    optimizerSteps: { ...o.optimizer.steps },
    files: { [WEIGHTS_FILE]: sha256Hex(weightParts), [OPTIMIZER_FILE]: sha256Hex(optParts) },
    created: new Date().toISOString(),
    ...(o.extra ? { extra: o.extra } : {}),
  };
  const dir = join(checkpointsRoot(runDir), checkpointDirName(o.step));
  writeDirAtomicSync(dir, [
    [WEIGHTS_FILE, weightParts],
    [OPTIMIZER_FILE, optParts],
    [MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`], // last: a folder with a manifest is complete
  ]);
  if (o.keep !== undefined) pruneCheckpoints(runDir, o.keep);
  return { dir, manifest };
}

/**
 * Delete all but the newest `keep` checkpoints (keep >= 1). Each is first renamed to a temporary
 * name, so a kill mid-delete leaves a leftover that recoverCheckpoints removes, never a
 * `step-*` folder missing some of its files.
 */
export function pruneCheckpoints(runDir: string, keep: number): void {
  const all = listCheckpoints(runDir);
  for (const ref of all.slice(0, Math.max(0, all.length - Math.max(1, keep)))) {
    const doomed = tempPathFor(ref.dir);
    try {
      renameSync(ref.dir, doomed);
      rmSync(doomed, { recursive: true, force: true });
    } catch (err) {
      throw fileError(err, ref.dir, 'delete the old checkpoint');
    }
  }
}

function corrupt(where: string, why: string, cause?: unknown): CelebaGanError {
  return new CelebaGanError('E_CHECKPOINT_CORRUPT', `checkpoint ${where} is damaged: ${why}`, {
    hint: 'Delete that checkpoint folder to fall back to an older one, or retrain with `celeba-gan train`.',
    cause,
  });
}

/** Read and check a checkpoint's manifest only (cheap: no tensors). */
export function readManifest(dir: string): CheckpointManifest {
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as CheckpointManifest;
  } catch (err) {
    const mapped = fileError(err, join(dir, MANIFEST_FILE), 'read');
    if (mapped !== err) throw mapped;
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

/**
 * Load a checkpoint (`latest` or a step number), verifying checksums and tensor shapes. `latest`
 * never silently skips a newer folder that lost its manifest: that is E_CHECKPOINT_INCOMPLETE.
 */
export async function loadCheckpoint(runDir: string, which: 'latest' | number = 'latest'): Promise<LoadedCheckpoint> {
  const all = listCheckpoints(runDir);
  if (which === 'latest') {
    const newer = incompleteAfterLatest(runDir).at(-1);
    if (newer) {
      const fallback = all.at(-1);
      throw new CelebaGanError(
        'E_CHECKPOINT_INCOMPLETE',
        `checkpoint ${newer.dir} has no ${MANIFEST_FILE}${fallback ? `, so the latest usable one would be the older step ${fallback.step}` : ', and no older checkpoint is usable'}`,
        {
          hint: fallback
            ? `Restore ${join(newer.dir, MANIFEST_FILE)}, or delete ${newer.dir} to continue from step ${fallback.step} (${fallback.dir}).`
            : `Restore ${join(newer.dir, MANIFEST_FILE)}, or delete ${newer.dir} and train again.`,
        },
      );
    }
  }
  if (all.length === 0) {
    throw new CelebaGanError('E_NO_CHECKPOINT', `${runDir} has no checkpoints (looked in ${checkpointsRoot(runDir)}/)`, {
      hint: 'Run `celeba-gan train --out <run folder>` first, or pass the folder of a run that has trained.',
    });
  }
  const ref = which === 'latest' ? all[all.length - 1]! : all.find((c) => c.step === which);
  if (!ref) {
    throw new CelebaGanError('E_NO_CHECKPOINT', `${runDir} has no checkpoint for step ${which}; it has steps ${all.map((c) => c.step).join(', ')}`, {
      hint: 'Pick one of those steps, or `latest`.',
    });
  }
  const manifest = readManifest(ref.dir);
  const readChecked = (file: string): Buffer => {
    let buf: Buffer;
    try {
      buf = readFileSync(join(ref.dir, file));
    } catch (err) {
      const mapped = fileError(err, join(ref.dir, file), 'read');
      if (mapped !== err) throw mapped;
      throw corrupt(ref.dir, `${file} cannot be read (${(err as Error).message})`, err);
    }
    const want = manifest.files?.[file];
    const got = sha256Hex([buf]);
    if (want !== got) throw corrupt(ref.dir, `${file} has sha256 ${got.slice(0, 12)}… but the manifest records ${String(want).slice(0, 12)}…`);
    return buf;
  };
  const decode = (file: string): TensorMap => {
    try {
      return decodeSafetensors(readChecked(file), join(ref.dir, file)).tensors;
    } catch (err) {
      if (err instanceof CelebaGanError) throw err;
      throw corrupt(ref.dir, (err as Error).message, err);
    }
  };
  const weights = decode(WEIGHTS_FILE);
  const moments = decode(OPTIMIZER_FILE);
  checkWeights(manifest.spec, weights, { where: `checkpoint ${ref.dir}` });
  return {
    manifest,
    spec: manifest.spec,
    weights,
    optimizer: { tensors: moments, steps: { ...manifest.optimizerSteps } },
    dir: ref.dir,
  };
}

/**
 * The newest checkpoint that loads and holds only finite weights, for "resume from here" advice;
 * null when there is none. Damaged or non-finite ones are skipped (and listed in `skipped`).
 */
export async function lastGoodCheckpoint(runDir: string): Promise<{ ref: CheckpointRef | null; skipped: string[] }> {
  const skipped: string[] = [];
  for (const ref of listCheckpoints(runDir).reverse()) {
    try {
      const c = await loadCheckpoint(runDir, ref.step);
      const bad = firstNonFinite(c.weights);
      if (!bad) return { ref, skipped };
      skipped.push(`${ref.dir} (${bad.name} holds ${bad.value})`);
    } catch (err) {
      skipped.push(`${ref.dir} (${(err as Error).message})`);
    }
  }
  return { ref: null, skipped };
}

/** Fail unless a checkpoint was trained with the given preset and width. */
export function assertSameArchitecture(manifest: CheckpointManifest, spec: ArchitectureSpec, where: string): void {
  if (manifest.preset !== spec.preset || manifest.width !== spec.width || JSON.stringify(manifest.spec) !== JSON.stringify(spec)) {
    throw new CelebaGanError(
      'E_CHECKPOINT_MISMATCH',
      `${where} holds a ${manifest.preset} model at width ${manifest.width}, but ${spec.preset} at width ${spec.width} was asked for`,
      { hint: `Pass --preset ${manifest.preset} --width ${manifest.width} to continue it, or use another --out for a new run.` },
    );
  }
}
