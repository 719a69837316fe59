import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { BatchLoader } from '../data/batches.js';
import { DatasetReader } from '../data/dataset-file.js';
import { DEFAULT_EMA_DECAY, assertEmaDecay } from '../engines/ema.js';
import { CelebaGanError, UsageError, assertInteger } from '../errors.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { deriveSeed } from '../util/rng.js';
import { assertSameArchitecture, hasCheckpointFolders, loadCheckpoint, recoverCheckpoints, type LoadedCheckpoint } from './checkpoint.js';
import { countRunLabelRows, hasAttributeRows } from './label-rows.js';
import type { LabelRowTable } from '../onnx/attribute-rows.js';
import { newRunConfig, readRunConfig, type RunConfig } from './run-config.js';
import { SAMPLE_COUNT } from './samples.js';

/**
 * Everything a user can get wrong about a training run is checked here, before anything is
 * written: flags, the run folder (new, or a run to resume), the data set, the checkpoint to
 * resume from. The loop (loop.ts) then only trains.
 */

export interface TrainConfig {
  spec: ArchitectureSpec;
  dataPath: string;
  outDir: string;
  /** Required for a new run; on resume it must equal run.json's or be left undefined. */
  seed?: number;
  /** Default spec.training.batchSize (new run) or run.json's (resume). */
  batchSize?: number;
  /** Total steps to reach (counted from the start of the run); or give `epochs`. */
  steps?: number;
  epochs?: number;
  resume?: boolean;
  /** Re-hash the data set's pixels before training (default true). */
  verifyData?: boolean;
  /** 0 disables. */
  sampleEvery?: number;
  /** 0 = only at the end (and on stop). */
  checkpointEvery?: number;
  keep?: number;
  logEvery?: number;
  /** Minimum seconds between loss.svg rewrites (also rewritten at every sample/checkpoint/end). */
  plotEvery?: number;
  /**
   * EMA generator decay (src/engines/ema.ts); 0 keeps none. Default: run.json's on resume, else
   * 0.999. It never changes the training itself, so a resume may change it.
   */
  ema?: number;
  /**
   * Data-parallel training: this process's rank among worldSize replicas. `batchSize` stays per
   * rank; the data loader gives each rank its slice of every global batch (src/data/batches.ts).
   */
  dist?: { rank: number; worldSize: number };
}

/** What `openRun` found and checked: everything needed to start, nothing written yet. */
export interface OpenedRun {
  config: Required<Pick<TrainConfig, 'sampleEvery' | 'checkpointEvery' | 'keep' | 'logEvery' | 'plotEvery' | 'ema'>> & TrainConfig;
  run: RunConfig;
  isNew: boolean;
  reader: DatasetReader;
  loader: BatchLoader;
  totalSteps: number;
  resumeFrom: LoadedCheckpoint | null;
  /** What a killed earlier process left in the run folder and what was done about it (recoverCheckpoints). */
  recovered: string[];
  /**
   * A conditional run's training label rows, counted from the data set, for the loop to write
   * (label-rows.ts): set for a new run and for a run folder that lacks them; null otherwise
   * (unconditional, already written, or a rank other than 0).
   */
  attributeRows: LabelRowTable | null;
}

/** ` conditional on Smiling, Eyeglasses`, or '' for an unconditional spec. */
function describeConditioning(spec: ArchitectureSpec): string {
  const attributes = spec.conditioning?.attributes;
  return attributes ? ` conditional on ${attributes.join(', ')}` : ' unconditional';
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Check the inputs and the run folder; throws a CelebaGanError naming the problem and the fix. */
export async function openRun(config: TrainConfig): Promise<OpenedRun> {
  const spec = config.spec;
  const sampleEvery = assertInteger('--sample-every', config.sampleEvery ?? 100, 0);
  const checkpointEvery = assertInteger('--checkpoint-every', config.checkpointEvery ?? 1000, 0);
  const keep = assertInteger('--keep', config.keep ?? 3, 1);
  const logEvery = assertInteger('--log-every', config.logEvery ?? 50, 1);
  const plotEvery = config.plotEvery ?? 10;
  if (config.ema !== undefined) assertEmaDecay(config.ema);
  if (config.steps !== undefined && config.epochs !== undefined) {
    throw new UsageError('E_BAD_ARGUMENT', 'Give either --steps or --epochs, not both', {
      hint: '--steps N stops after N steps in all; --epochs E after E passes over the data.',
    });
  }
  if (config.steps !== undefined) assertInteger('--steps', config.steps, 1);
  if (config.epochs !== undefined) assertInteger('--epochs', config.epochs, 1);

  // The run folder first: a clash should be reported before any slow data check.
  const existing = readRunConfig(config.outDir);
  if (existing && !config.resume) {
    throw new UsageError(
      'E_RUN_EXISTS',
      `${config.outDir} already holds a run (${existing.preset}, width ${existing.width}, seed ${existing.seed}, created ${existing.created})`,
      {
        hint: 'Add --resume to continue it, or pass another --out for a new run.',
      },
    );
  }
  if (!existing && config.resume) {
    throw new UsageError('E_NO_RUN', `--resume given but ${config.outDir} holds no run (no run.json)`, {
      hint: 'Leave out --resume to start a new run there, or pass the folder of an existing run as --out.',
    });
  }
  if (!existing && existsSync(config.outDir) && readdirSync(config.outDir).length > 0) {
    throw new UsageError('E_RUN_EXISTS', `${config.outDir} exists, is not empty and is not a celeba-gan run`, {
      hint: 'Pass a new or empty folder as --out, so nothing there is overwritten.',
    });
  }
  if (existing) {
    const want = { preset: spec.preset, width: spec.width };
    if (existing.preset !== want.preset || existing.width !== want.width || !sameJson(existing.spec, spec)) {
      // Conditioning is named only when it differs: an unconditional run's message stays as it was.
      const cond = (s: ArchitectureSpec): string =>
        (existing.spec.conditioning === undefined) === (spec.conditioning === undefined) ? '' : describeConditioning(s);
      const conditional = existing.spec.conditioning ? ' --conditional' : '';
      throw new UsageError(
        'E_CHECKPOINT_MISMATCH',
        `${config.outDir} holds a ${existing.preset} run at width ${existing.width}${cond(existing.spec)}, but ${want.preset} at width ${want.width}${cond(spec)} was asked for`,
        {
          hint: `Resume with --preset ${existing.preset} --width ${existing.width}${conditional} (or leave them out), or use another --out for a new run.`,
        },
      );
    }
    if (config.seed !== undefined && config.seed !== existing.seed) {
      throw new UsageError('E_BAD_ARGUMENT', `--seed ${config.seed} differs from the run's seed ${existing.seed}; a resume keeps the run's seed`, {
        hint: 'Leave --seed out when resuming.',
      });
    }
    if (config.batchSize !== undefined && config.batchSize !== existing.batchSize) {
      throw new UsageError(
        'E_BAD_ARGUMENT',
        `--batch-size ${config.batchSize} differs from the run's ${existing.batchSize}; an exact resume needs the same batches`,
        { hint: 'Leave --batch-size out when resuming.' },
      );
    }
  }

  // Leftovers of a killed process go before a checkpoint is chosen: an interrupted replacement
  // may have renamed the newest checkpoint aside.
  const recovered = existing ? recoverCheckpoints(config.outDir) : [];

  // The data set: readable, intact, the right image size.
  const reader = new DatasetReader(config.dataPath);
  try {
    const h = reader.header;
    const { height, width, channels } = spec.image;
    if (h.height !== height || h.width !== width || h.channels !== channels) {
      throw new UsageError(
        'E_DATASET_SIZE',
        `data set ${config.dataPath} holds ${h.width}x${h.height}x${h.channels} images but ${spec.preset} needs ${width}x${height}x${channels}`,
        {
          hint: `Prepare a matching one with \`celeba-gan prepare --size ${height}\`, or pick a preset for ${h.height}x${h.width} images (seed28: 28, dcgan64: 64).`,
        },
      );
    }
    assertLabelsFit(spec, reader, config.dataPath);
    if (config.verifyData ?? true) reader.verify();
    if (existing && existing.data.checksum !== h.checksum) {
      throw new UsageError(
        'E_DATA_MISMATCH',
        `${config.dataPath} is not the data set run ${config.outDir} was trained on (pixel checksum ${h.checksum.slice(0, 12)}… vs ${existing.data.checksum.slice(0, 12)}… from ${existing.data.path})`,
        {
          hint: `Resume with --data ${existing.data.path} (an exact resume needs the same images), or start a new run with another --out.`,
        },
      );
    }
    const seed = existing?.seed ?? config.seed;
    if (seed === undefined) throw new Error('openRun: a new run needs a seed');
    assertInteger('--seed', seed, 0, 0xffffffff);
    const batchSize = assertInteger('--batch-size', existing?.batchSize ?? config.batchSize ?? spec.training.batchSize, 2);
    const loader = new BatchLoader(reader, { batchSize, seed, ...(config.dist ?? {}) });
    const totalSteps = config.steps ?? (config.epochs ?? 20) * loader.stepsPerEpoch;

    let resumeFrom: OpenedRun['resumeFrom'] = null;
    if (existing && hasCheckpointFolders(config.outDir)) {
      resumeFrom = await loadCheckpoint(config.outDir, 'latest');
      assertSameArchitecture(resumeFrom.manifest, spec, resumeFrom.dir);
      if (resumeFrom.manifest.seed !== seed || resumeFrom.manifest.dataChecksum !== h.checksum || resumeFrom.manifest.batchSize !== batchSize) {
        throw new CelebaGanError('E_CHECKPOINT_MISMATCH', `checkpoint ${resumeFrom.dir} does not belong to run.json's run (seed, data or batch size differ)`, {
          hint: 'Move that checkpoint out of the run folder, or start a new run with another --out.',
        });
      }
    }
    const run: RunConfig =
      existing ??
      newRunConfig({
        spec,
        seed,
        batchSize,
        // Absolute: a --resume from another working directory must find the same file.
        data: { path: resolve(config.dataPath), checksum: h.checksum, count: h.count, height: h.height, width: h.width },
        engine: '',
        created: new Date().toISOString(),
        sampleSeed: deriveSeed(seed, 'samples'),
        sampleCount: SAMPLE_COUNT,
        ema: config.ema ?? DEFAULT_EMA_DECAY,
      });
    const ema = config.ema ?? existing?.ema ?? DEFAULT_EMA_DECAY;
    // Only the process that writes the run counts the rows (rank 0 of data-parallel ranks).
    const writes = (config.dist?.rank ?? 0) === 0;
    const attributeRows = spec.conditioning && writes && (!existing || !hasAttributeRows(config.outDir)) ? countRunLabelRows(reader, spec) : null;
    return {
      config: { ...config, sampleEvery, checkpointEvery, keep, logEvery, plotEvery, ema },
      run,
      isNew: !existing,
      reader,
      loader,
      totalSteps,
      resumeFrom,
      recovered,
      attributeRows,
    };
  } catch (err) {
    reader.close();
    throw err;
  }
}

/**
 * A conditional spec trains on the data set's labels, attribute for attribute in the same order
 * (E_NO_LABELS on an unlabelled data set; E_DATA_MISMATCH on other attributes). An unconditional
 * spec trains on any data set: a labelled one's labels are then not used.
 */
function assertLabelsFit(spec: ArchitectureSpec, reader: DatasetReader, dataPath: string): void {
  const want = spec.conditioning?.attributes;
  if (!want) return;
  const have = reader.attributes?.names;
  if (!have) {
    throw new UsageError('E_NO_LABELS', `data set ${dataPath} has no attribute labels, but the model is conditional on ${want.join(', ')}`, {
      hint:
        'Prepare a labelled data set: `celeba-gan prepare --input <images> --attributes list_attr_celeba.txt` (CelebA) or ' +
        '`celeba-gan prepare --synthetic 20000` (synthetic faces carry attributes).',
    });
  }
  if (!sameJson(have, want)) {
    throw new UsageError('E_DATA_MISMATCH', `data set ${dataPath} has the attributes ${have.join(', ')}, but the model is conditional on ${want.join(', ')}`, {
      hint: 'Train on a data set prepared with those attributes, in that order (`celeba-gan prepare --attr-subset ...`), or start a new run.',
    });
  }
}
