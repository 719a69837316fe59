import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchLoader } from '../data/batches.js';
import { DatasetReader } from '../data/dataset-file.js';
import type { StepMetrics, TrainingEngine } from '../engines/engine.js';
import { CelebaGanError, UsageError, assertInteger } from '../errors.js';
import { initialWeights } from '../model/init.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { writeFileAtomicSync } from '../util/atomic.js';
import { floatNchwToUint8Hwc, writeGridPng } from '../util/image.js';
import { deriveSeed } from '../util/rng.js';
import { packageVersion } from '../version.js';
import {
  RUN_FORMAT_VERSION,
  assertSameArchitecture,
  listCheckpoints,
  loadCheckpoint,
  readRunConfig,
  saveCheckpoint,
  writeRunConfig,
  type RunConfig,
} from './checkpoint.js';
import { renderLossSvg, type CurvePoint } from './loss-plot.js';
import { sampleLatents } from './randomness.js';

/**
 * The training loop, engine-agnostic: a TrainingEngine, a dataset file and a run folder.
 * Prints nothing; it reports through callbacks and its return value (src/cli/train.ts prints).
 *
 * Run folder layout:
 *   run.json                 what the run is (see checkpoint.ts)
 *   checkpoints/step-*\/      weights + optimiser state (checkpoint.ts)
 *   metrics.jsonl            one JSON object per logged step (and per evaluation), appended
 *   loss.svg                 the curves, rewritten atomically as training goes
 *   samples/step-000100.png  a 5x5 grid from fixed noise every `sampleEvery` steps
 *
 * Everything a user can get wrong is checked in `openRun` before anything is written.
 */

export const SAMPLE_COUNT = 25;
export const METRICS_FILE = 'metrics.jsonl';
export const LOSS_PLOT_FILE = 'loss.svg';
export const SAMPLES_DIR = 'samples';

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
}

export interface LogEntry extends StepMetrics {
  /** Steps completed. */
  step: number;
  epoch: number;
  imagesPerSec: number;
  elapsed: number;
  time: string;
}

export interface StepEndContext {
  /** Steps completed. */
  step: number;
  epoch: number;
  metrics: StepMetrics;
  engine: TrainingEngine;
  spec: ArchitectureSpec;
  runDir: string;
  run: RunConfig;
}

/**
 * A hook run after every step (F's `--eval-every` plugs in here). It decides itself whether this
 * step is one of its steps; values it returns are appended to metrics.jsonl as
 * `{"kind": "<name>", "step": N, ...values}` and reported through `onEval`.
 */
export interface StepHook {
  name: string;
  onStepEnd(ctx: StepEndContext): Promise<Record<string, number | string> | void> | Record<string, number | string> | void;
}

export interface TrainCallbacks {
  onStart?(info: TrainStart): void;
  /** After every step (progress bars). */
  onStep?(step: number, total: number, metrics: StepMetrics): void;
  onLog?(entry: LogEntry): void;
  onSample?(path: string, step: number): void;
  onCheckpoint?(dir: string, step: number): void;
  onEval?(name: string, step: number, values: Record<string, number | string>): void;
}

export interface TrainStart {
  run: RunConfig;
  runDir: string;
  resumedFrom: number | null;
  startStep: number;
  totalSteps: number;
  stepsPerEpoch: number;
  droppedPerEpoch: number;
  /** Engine that wrote the checkpoint resumed from (a different engine continues the run, but its random draws differ). */
  checkpointEngine: string | null;
}

export interface TrainResult {
  status: 'completed' | 'stopped';
  /** Steps completed. */
  step: number;
  totalSteps: number;
  checkpoint: string | null;
  stopReason?: string;
  seconds: number;
}

/** What `openRun` found and checked: everything needed to start, nothing written yet. */
export interface OpenedRun {
  config: Required<Pick<TrainConfig, 'sampleEvery' | 'checkpointEvery' | 'keep' | 'logEvery' | 'plotEvery'>> & TrainConfig;
  run: RunConfig;
  isNew: boolean;
  reader: DatasetReader;
  loader: BatchLoader;
  totalSteps: number;
  resumeFrom: Awaited<ReturnType<typeof loadCheckpoint>> | null;
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
  if (config.steps !== undefined && config.epochs !== undefined) {
    throw new UsageError('E_BAD_ARGUMENT', 'Give either --steps or --epochs, not both', { hint: '--steps N stops after N steps in all; --epochs E after E passes over the data.' });
  }
  if (config.steps !== undefined) assertInteger('--steps', config.steps, 1);
  if (config.epochs !== undefined) assertInteger('--epochs', config.epochs, 1);

  // The run folder first: a clash should be reported before any slow data check.
  const existing = readRunConfig(config.outDir);
  if (existing && !config.resume) {
    throw new UsageError('E_RUN_EXISTS', `${config.outDir} already holds a run (${existing.preset}, width ${existing.width}, seed ${existing.seed}, created ${existing.created})`, {
      hint: 'Add --resume to continue it, or pass another --out for a new run.',
    });
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
      throw new UsageError('E_CHECKPOINT_MISMATCH', `${config.outDir} holds a ${existing.preset} run at width ${existing.width}, but ${want.preset} at width ${want.width} was asked for`, {
        hint: `Resume with --preset ${existing.preset} --width ${existing.width} (or leave both out), or use another --out for a new run.`,
      });
    }
    if (config.seed !== undefined && config.seed !== existing.seed) {
      throw new UsageError('E_BAD_ARGUMENT', `--seed ${config.seed} differs from the run's seed ${existing.seed}; a resume keeps the run's seed`, { hint: 'Leave --seed out when resuming.' });
    }
    if (config.batchSize !== undefined && config.batchSize !== existing.batchSize) {
      throw new UsageError('E_BAD_ARGUMENT', `--batch-size ${config.batchSize} differs from the run's ${existing.batchSize}; an exact resume needs the same batches`, { hint: 'Leave --batch-size out when resuming.' });
    }
  }

  // The data set: readable, intact, the right image size.
  const reader = new DatasetReader(config.dataPath);
  try {
    const h = reader.header;
    const { height, width, channels } = spec.image;
    if (h.height !== height || h.width !== width || h.channels !== channels) {
      throw new UsageError('E_DATASET_SIZE', `data set ${config.dataPath} holds ${h.width}x${h.height}x${h.channels} images but ${spec.preset} needs ${width}x${height}x${channels}`, {
        hint: `Prepare a matching one with \`celeba-gan prepare --size ${height}\`, or pick a preset for ${h.height}x${h.width} images (seed28: 28, dcgan64: 64).`,
      });
    }
    if (config.verifyData ?? true) reader.verify();
    if (existing && existing.data.checksum !== h.checksum) {
      throw new UsageError('E_DATA_MISMATCH', `${config.dataPath} is not the data set run ${config.outDir} was trained on (pixel checksum ${h.checksum.slice(0, 12)}… vs ${existing.data.checksum.slice(0, 12)}… from ${existing.data.path})`, {
        hint: `Resume with --data ${existing.data.path} (an exact resume needs the same images), or start a new run with another --out.`,
      });
    }
    const seed = existing?.seed ?? config.seed;
    if (seed === undefined) throw new Error('openRun: a new run needs a seed');
    assertInteger('--seed', seed, 0, 0xffffffff);
    const batchSize = assertInteger('--batch-size', existing?.batchSize ?? config.batchSize ?? spec.training.batchSize, 2);
    const loader = new BatchLoader(reader, { batchSize, seed });
    const totalSteps = config.steps ?? (config.epochs ?? 20) * loader.stepsPerEpoch;

    let resumeFrom: OpenedRun['resumeFrom'] = null;
    if (existing && listCheckpoints(config.outDir).length > 0) {
      resumeFrom = await loadCheckpoint(config.outDir, 'latest');
      assertSameArchitecture(resumeFrom.manifest, spec, resumeFrom.dir);
      if (resumeFrom.manifest.seed !== seed || resumeFrom.manifest.dataChecksum !== h.checksum || resumeFrom.manifest.batchSize !== batchSize) {
        throw new CelebaGanError('E_CHECKPOINT_MISMATCH', `checkpoint ${resumeFrom.dir} does not belong to run.json's run (seed, data or batch size differ)`, {
          hint: 'Move that checkpoint out of the run folder, or start a new run with another --out.',
        });
      }
    }
    const run: RunConfig = existing ?? {
      format: 'celeba-gan-run',
      formatVersion: RUN_FORMAT_VERSION,
      packageVersion: packageVersion(),
      preset: spec.preset,
      width: spec.width,
      spec,
      seed,
      batchSize,
      data: { path: config.dataPath, checksum: h.checksum, count: h.count, height: h.height, width: h.width },
      engine: '',
      created: new Date().toISOString(),
      sampleSeed: deriveSeed(seed, 'samples'),
      sampleCount: SAMPLE_COUNT,
    };
    return {
      config: { ...config, sampleEvery, checkpointEvery, keep, logEvery, plotEvery },
      run,
      isNew: !existing,
      reader,
      loader,
      totalSteps,
      resumeFrom,
    };
  } catch (err) {
    reader.close();
    throw err;
  }
}

function isFiniteMetrics(m: StepMetrics): boolean {
  return Number.isFinite(m.lossD) && Number.isFinite(m.lossG) && Number.isFinite(m.dReal) && Number.isFinite(m.dFake);
}

/** Append one JSON line and flush it to disk (a crash loses at most the line being written). */
function appendLine(path: string, value: unknown): void {
  const fd = openSync(path, 'a');
  try {
    appendFileSync(fd, `${JSON.stringify(value)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Read metrics.jsonl, dropping lines past `step` (a resumed run rewrites those steps). */
function readMetrics(path: string, upToStep: number): { lines: string[]; curve: CurvePoint[]; kid: { step: number; value: number }[] } {
  const lines: string[] = [];
  const curve: CurvePoint[] = [];
  // SWD points from `--eval-every` (src/eval), drawn in loss.svg's third panel.
  const kid: { step: number; value: number }[] = [];
  if (!existsSync(path)) return { lines, curve, kid };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let v: { step?: number; kind?: string } & Partial<CurvePoint>;
    try {
      v = JSON.parse(line);
    } catch {
      continue; // a line cut short by a crash
    }
    if (typeof v.step !== 'number' || v.step > upToStep) continue;
    lines.push(line);
    if (v.kind === undefined) curve.push({ step: v.step, lossD: v.lossD!, lossG: v.lossG!, dReal: v.dReal!, dFake: v.dFake! });
    else if (typeof (v as { swd?: unknown }).swd === 'number') kid.push({ step: v.step, value: (v as { swd: number }).swd });
  }
  return { lines, curve, kid };
}

export class Trainer {
  private stopReason: string | null = null;
  private readonly hooks: StepHook[];

  constructor(
    private readonly opened: OpenedRun,
    private readonly engine: TrainingEngine,
    private readonly callbacks: TrainCallbacks = {},
    hooks: StepHook[] = [],
  ) {
    this.hooks = [...hooks];
  }

  /** Ask the loop to stop after the current step; it saves a checkpoint and returns `stopped`. */
  stop(reason = 'stop requested'): void {
    this.stopReason ??= reason;
  }

  get stopping(): boolean {
    return this.stopReason !== null;
  }

  addHook(hook: StepHook): void {
    this.hooks.push(hook);
  }

  async run(): Promise<TrainResult> {
    const started = performance.now();
    const { config, loader, totalSteps, resumeFrom } = this.opened;
    const spec = config.spec;
    const runDir = config.outDir;
    const run: RunConfig = this.opened.isNew ? { ...this.opened.run, engine: this.engine.info.engine } : this.opened.run;
    const seed = run.seed;
    const engine = this.engine;
    try {
      if (resumeFrom) await engine.setWeights(resumeFrom.weights, resumeFrom.optimizer);
      else await engine.setWeights(initialWeights(spec, seed), emptyOptimizer(await engine.getOptimizerState()));
      let step = resumeFrom?.manifest.step ?? 0;

      mkdirSync(join(runDir, SAMPLES_DIR), { recursive: true });
      if (this.opened.isNew) writeRunConfig(runDir, run);
      const metricsPath = join(runDir, METRICS_FILE);
      const previous = readMetrics(metricsPath, step);
      if (existsSync(metricsPath)) writeFileAtomicSync(metricsPath, previous.lines.map((l) => `${l}\n`).join(''));
      const curve = previous.curve;
      const kidCurve = previous.kid;

      this.callbacks.onStart?.({
        run, runDir, resumedFrom: resumeFrom ? step : null, startStep: step, totalSteps,
        stepsPerEpoch: loader.stepsPerEpoch, droppedPerEpoch: loader.droppedPerEpoch,
        checkpointEngine: resumeFrom?.manifest.engine ?? null,
      });

      const sampleZ = sampleLatents(spec, run.sampleSeed, run.sampleCount);
      const sample = async (): Promise<void> => {
        if (config.sampleEvery === 0) return;
        const path = join(runDir, SAMPLES_DIR, `step-${String(step).padStart(6, '0')}.png`);
        const { channels: c, height: h, width: w } = spec.image;
        const images = floatNchwToUint8Hwc(await engine.generate(sampleZ, run.sampleCount), run.sampleCount, c, h, w);
        await writeGridPng(path, images, run.sampleCount, h, w, c, { cols: 5, upscale: Math.max(1, Math.floor(64 / h)) });
        this.callbacks.onSample?.(path, step);
      };
      let lastPlot = 0;
      const plot = (force: boolean): void => {
        const now = performance.now();
        if (!force && now - lastPlot < config.plotEvery * 1000) return;
        lastPlot = now;
        writeFileAtomicSync(join(runDir, LOSS_PLOT_FILE), renderLossSvg(curve, `${spec.preset} x${spec.width} seed ${seed}`, { label: 'SWD x1e3', points: kidCurve }));
      };
      let checkpointDir: string | null = resumeFrom?.dir ?? null;
      const checkpoint = async (): Promise<void> => {
        if (checkpointDir && listCheckpoints(runDir).some((c) => c.step === step)) return;
        const saved = saveCheckpoint(runDir, {
          spec, step, stepsPerEpoch: loader.stepsPerEpoch, batchSize: loader.batchSize, seed,
          dataChecksum: run.data.checksum, engine: engine.info.engine, backend: engine.info.backend,
          weights: await engine.getWeights(), optimizer: await engine.getOptimizerState(), keep: config.keep,
        });
        checkpointDir = saved.dir;
        this.callbacks.onCheckpoint?.(saved.dir, step);
      };

      if (step === 0 && !resumeFrom) await sample();
      let windowStart = performance.now();
      let windowImages = 0;
      for (const batch of loader.batches(step, totalSteps)) {
        // Let signals, timers and I/O run: a CPU-bound engine may resolve its promises without
        // ever returning to the event loop, and Ctrl-C must be seen after every step.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.stopReason) break;
        const metrics = await engine.trainStep(batch.images, batch.n, { seed, step: batch.step });
        if (!isFiniteMetrics(metrics)) {
          const last = listCheckpoints(runDir).at(-1);
          throw new CelebaGanError(
            'E_NAN_LOSS',
            `training diverged at step ${batch.step + 1}: loss_D=${metrics.lossD}, loss_G=${metrics.lossG}, D(x)=${metrics.dReal}, D(G(z))=${metrics.dFake}; this state was not saved`,
            {
              hint: last
                ? `The last good checkpoint is step ${last.step} (${last.dir}). Resume from it with --resume, or start again with another --seed or a smaller --batch-size.`
                : 'No checkpoint was written yet. Start again with another --seed, a smaller --batch-size or a lower --checkpoint-every, and check the data set with `celeba-gan prepare`.',
            },
          );
        }
        step = batch.step + 1;
        windowImages += batch.n;
        const epoch = Math.floor(batch.step / loader.stepsPerEpoch);
        this.callbacks.onStep?.(step, totalSteps, metrics);

        if (step % config.logEvery === 0 || step === totalSteps) {
          const now = performance.now();
          const entry: LogEntry = {
            step, epoch, ...metrics,
            imagesPerSec: windowImages / Math.max(1e-9, (now - windowStart) / 1000),
            elapsed: (now - started) / 1000,
            time: new Date().toISOString(),
          };
          windowStart = now;
          windowImages = 0;
          appendLine(metricsPath, entry);
          curve.push({ step, lossD: metrics.lossD, lossG: metrics.lossG, dReal: metrics.dReal, dFake: metrics.dFake });
          this.callbacks.onLog?.(entry);
          plot(false);
        }
        for (const hook of this.hooks) {
          const values = await hook.onStepEnd({ step, epoch, metrics, engine, spec, runDir, run });
          if (values && Object.keys(values).length > 0) {
            appendLine(metricsPath, { kind: hook.name, step, ...values });
            this.callbacks.onEval?.(hook.name, step, values);
            if (typeof values.swd === 'number') kidCurve.push({ step, value: values.swd });
          }
        }
        if (config.sampleEvery > 0 && step % config.sampleEvery === 0) {
          await sample();
          plot(true);
        }
        if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) await checkpoint();
      }
      await checkpoint();
      plot(true);
      return {
        status: this.stopReason ? 'stopped' : 'completed',
        step,
        totalSteps,
        checkpoint: checkpointDir,
        ...(this.stopReason ? { stopReason: this.stopReason } : {}),
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      this.opened.reader.close();
    }
  }
}

function emptyOptimizer(like: Awaited<ReturnType<TrainingEngine['getOptimizerState']>>): Awaited<ReturnType<TrainingEngine['getOptimizerState']>> {
  const tensors = new Map([...like.tensors].map(([k, t]) => [k, { shape: [...t.shape], data: new Float32Array(t.data.length) }]));
  return { tensors, steps: { generator: 0, discriminator: 0 } };
}

/** Open, check and run in one call (tests, scripts). The CLI uses openRun + Trainer to wire signals. */
export async function train(config: TrainConfig, engine: TrainingEngine, callbacks?: TrainCallbacks, hooks?: StepHook[]): Promise<TrainResult> {
  return new Trainer(await openRun(config), engine, callbacks, hooks).run();
}
