import { ensureFolder } from '../util/atomic.js';
import { emaAsGenerator, generatorAsEma, hasEma } from '../engines/ema.js';
import type { StepMetrics, TrainingEngine } from '../engines/engine.js';
import { CelebaGanError } from '../errors.js';
import { checkIdenticalWeights, type ProcessGroup } from '../distributed/group.js';
import { initialWeights } from '../model/init.js';
import type { ArchitectureSpec } from '../model/spec.js';
import type { TensorMap } from '../model/tensors.js';
import { lastGoodCheckpoint, listCheckpoints, saveCheckpoint } from './checkpoint.js';
import { LossPlot } from './loss-plot.js';
import { MetricsLog, type LogEntry } from './metrics-log.js';
import { openRun, type OpenedRun, type TrainConfig } from './open-run.js';
import { writeAttributeRows } from './label-rows.js';
import { writeRunConfig, type RunConfig } from './run-config.js';
import { SampleGrid } from './samples.js';

/**
 * The training loop, engine-agnostic: a TrainingEngine, a dataset file and a run folder
 * (checked beforehand by open-run.ts). Prints nothing; it reports through callbacks and its
 * return value (src/cli/train.ts prints). Read `Trainer.run` top to bottom: load or initialise
 * the weights, then for each batch one `engine.trainStep`, then the named chores of that step
 * (log, hooks, sample grid, checkpoint).
 *
 * A periodic checkpoint that fails for lack of space (E_NO_SPACE) or file handles does not end
 * the run: `onCheckpointFailed` says so, training goes on and the next checkpoint tries again.
 * The final checkpoint must succeed; its failure ends the run with the error.
 *
 * Data-parallel training (`dist`, one Trainer per rank; the engine averages the gradients): every
 * rank checks it starts from the same weights, and before each step the ranks agree whether to
 * stop (a stop on any rank stops all after the same step). Rank 0 alone writes the run folder:
 * run.json, metrics.jsonl, loss.svg, samples, checkpoints and hooks' results; the others only train.
 */

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
 * A hook run after every step (`--eval-every` plugs in here). It decides itself whether this
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
  /** A periodic checkpoint failed for a passing reason (full disk); training goes on and retries at the next one. */
  onCheckpointFailed?(error: CelebaGanError, step: number): void;
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
  /** What a killed earlier process left in the run folder and what was done about it. */
  recovered: string[];
  /**
   * The EMA generator: its decay (0: none) and where it started: `checkpoint` (its saved EMA),
   * `raw` (a checkpoint without one: from its raw weights; `note` says so), `start` (a new run).
   */
  ema: { decay: number; from: 'checkpoint' | 'raw' | 'start' | 'off'; note?: string };
  /** Data-parallel ranks (1: one process); `note` when the checkpoint was trained by another number. */
  dist: { worldSize: number; rank: number; weightsDigest?: string; note?: string };
}

/** A Trainer's part in data-parallel training (the engine already averages gradients over `group`). */
export interface TrainerDist {
  group: ProcessGroup;
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

/** Codes of checkpoint failures that may pass (space freed, handles closed): the run goes on. */
const PASSING_CHECKPOINT_FAILURES: ReadonlySet<string> = new Set(['E_NO_SPACE', 'E_TOO_MANY_FILES']);

function isFiniteMetrics(m: StepMetrics): boolean {
  return Number.isFinite(m.lossD) && Number.isFinite(m.lossG) && Number.isFinite(m.dReal) && Number.isFinite(m.dFake);
}

export class Trainer {
  private stopReason: string | null = null;
  private readonly hooks: StepHook[];
  private readonly runConfig: RunConfig;
  private readonly runDir: string;
  private readonly spec: ArchitectureSpec;
  /** The newest checkpoint written (or resumed from) and its step. */
  private saved: { dir: string; step: number } | null;

  constructor(
    private readonly opened: OpenedRun,
    private readonly engine: TrainingEngine,
    private readonly callbacks: TrainCallbacks = {},
    hooks: StepHook[] = [],
    private readonly dist?: TrainerDist,
  ) {
    this.hooks = [...hooks];
    this.runConfig = opened.isNew ? { ...opened.run, engine: engine.info.engine } : opened.run;
    this.runDir = opened.config.outDir;
    this.spec = opened.config.spec;
    this.saved = opened.resumeFrom ? { dir: opened.resumeFrom.dir, step: opened.resumeFrom.manifest.step } : null;
  }

  /** Ask the loop to stop after the current step; it saves a checkpoint and returns `stopped`. */
  stop(reason = 'stop requested'): void {
    this.stopReason ??= reason;
  }

  get stopping(): boolean {
    return this.stopReason !== null;
  }

  /** Whether this process writes the run folder (rank 0, or the only process). */
  get writes(): boolean {
    return !this.dist || this.dist.group.rank === 0;
  }

  addHook(hook: StepHook): void {
    this.hooks.push(hook);
  }

  async run(): Promise<TrainResult> {
    const started = performance.now();
    const { config, loader, totalSteps, resumeFrom } = this.opened;
    const { engine, spec, runDir } = this;
    const run = this.runConfig;
    try {
      // Weights: the checkpoint resumed from, or the spec's seeded initialisation.
      if (resumeFrom) await engine.setWeights(resumeFrom.weights, resumeFrom.optimizer);
      else await engine.setWeights(initialWeights(spec, run.seed), emptyOptimizer(await engine.getOptimizerState()));
      let step = resumeFrom?.manifest.step ?? 0;
      const ema = await this.startEma(step);
      const dist = await this.startDist();
      const writes = this.writes;
      const worldSize = dist.worldSize;

      // Rank 0 writes only once every rank has opened the run (checkIdenticalWeights above).
      if (writes) this.prepareRunFolder();
      // What rank 0 (or the only process) writes; null on the other ranks.
      const out = writes
        ? {
            metrics: new MetricsLog(runDir, step),
            plot: new LossPlot(runDir, `${spec.preset} x${spec.width} seed ${run.seed}`, config.plotEvery),
            samples: new SampleGrid(runDir, spec, run),
          }
        : null;
      this.callbacks.onStart?.({
        run,
        runDir,
        resumedFrom: resumeFrom ? step : null,
        startStep: step,
        totalSteps,
        stepsPerEpoch: loader.stepsPerEpoch,
        droppedPerEpoch: loader.droppedPerEpoch,
        checkpointEngine: resumeFrom?.manifest.engine ?? null,
        recovered: this.opened.recovered,
        ema,
        dist,
      });
      if (out && step === 0 && !resumeFrom) await this.writeSamples(out.samples, step);

      let window = { start: performance.now(), images: 0 };
      for (const batch of loader.batches(step, totalSteps)) {
        // Let signals, timers and I/O run: a CPU-bound engine may resolve its promises without
        // ever returning to the event loop, and Ctrl-C must be seen after every step.
        await new Promise((resolve) => setImmediate(resolve));
        if (await this.agreeToStop()) break;

        // A conditional spec trains on the batch's label rows (labelled data sets: src/data/batches.ts).
        const labels = spec.conditioning ? (batch as { labels?: Float32Array }).labels : undefined;
        const m = await engine.trainStep(batch.images, batch.n, { seed: run.seed, step: batch.step, labels });
        if (!isFiniteMetrics(m)) throw await this.diverged(batch.step + 1, m);
        step = batch.step + 1;
        const epoch = Math.floor(batch.step / loader.stepsPerEpoch);
        window.images += batch.n * worldSize;
        this.callbacks.onStep?.(step, totalSteps, m);
        if (!out) continue;
        const { metrics, plot, samples } = out;

        if (step % config.logEvery === 0 || step === totalSteps) {
          this.log(metrics, { step, epoch, metrics: m, window, started });
          window = { start: performance.now(), images: 0 };
          plot.write(metrics.curve, metrics.swd);
        }
        await this.runHooks(metrics, { step, epoch, metrics: m, engine, spec, runDir, run });
        if (config.sampleEvery > 0 && step % config.sampleEvery === 0) {
          await this.writeSamples(samples, step);
          plot.write(metrics.curve, metrics.swd, true);
        }
        if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) await this.checkpoint(step, { periodic: true });
      }
      if (out) {
        await this.checkpoint(step, { periodic: false });
        out.plot.write(out.metrics.curve, out.metrics.swd, true);
      }
      return {
        status: this.stopReason ? 'stopped' : 'completed',
        step,
        totalSteps,
        checkpoint: this.saved?.dir ?? null,
        ...(this.stopReason ? { stopReason: this.stopReason } : {}),
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      this.opened.reader.close();
    }
  }

  /**
   * Data-parallel: every rank holds the same weights (or all fail, naming the ranks that differ),
   * and a resume with another world size says what changes.
   */
  private async startDist(): Promise<TrainStart['dist']> {
    const saved = this.opened.resumeFrom?.manifest.worldSize ?? (this.opened.resumeFrom ? 1 : undefined);
    const worldSize = this.dist?.group.worldSize ?? 1;
    const note =
      saved !== undefined && saved !== worldSize
        ? `checkpoint ${this.opened.resumeFrom!.dir} was trained by ${saved} rank${saved === 1 ? '' : 's'} and continues with ${worldSize}: the global batch becomes ${worldSize} x ${this.opened.loader.batchSize} and the data order changes from here, so this is not the run ${saved} rank${saved === 1 ? '' : 's'} would have made (an exact resume needs the same world size)`
        : undefined;
    if (!this.dist) return { worldSize, rank: 0, ...(note ? { note } : {}) };
    const weights = await this.engine.getWeights();
    const digest = await checkIdenticalWeights(this.dist.group, Object.fromEntries([...weights].map(([k, t]) => [k, t.data])));
    return { worldSize, rank: this.dist.group.rank, weightsDigest: digest, ...(note ? { note } : {}) };
  }

  /** Whether to stop before the next step: this process's stop, or (data-parallel) any rank's. */
  private async agreeToStop(): Promise<boolean> {
    if (!this.dist) return this.stopReason !== null;
    const [votes] = await this.dist.group.allReduceMean([new Float32Array([this.stopReason ? 1 : 0])]);
    // Decide from the vote alone: a signal that lands on this rank while the vote is in flight
    // must not make it stop when the others (who saw a 0 from it) go on; it counts next step.
    const anyone = votes![0]! > 0;
    if (anyone) this.stopReason ??= 'a stop on another rank';
    return anyone;
  }

  /** Create the run folder's parts (run.json for a new run; a conditional run's label rows, label-rows.ts). */
  private prepareRunFolder(): void {
    ensureFolder(this.runDir, 'create the run folder');
    ensureFolder(SampleGrid.dir(this.runDir), 'create the samples folder');
    if (this.opened.attributeRows) writeAttributeRows(this.runDir, this.spec, this.opened.attributeRows);
    if (this.opened.isNew) writeRunConfig(this.runDir, this.runConfig);
  }

  private log(metrics: MetricsLog, o: { step: number; epoch: number; metrics: StepMetrics; window: { start: number; images: number }; started: number }): void {
    const now = performance.now();
    const entry: LogEntry = {
      step: o.step,
      epoch: o.epoch,
      ...o.metrics,
      imagesPerSec: o.window.images / Math.max(1e-9, (now - o.window.start) / 1000),
      elapsed: (now - o.started) / 1000,
      time: new Date().toISOString(),
    };
    metrics.logStep(entry);
    this.callbacks.onLog?.(entry);
  }

  private async runHooks(metrics: MetricsLog, ctx: StepEndContext): Promise<void> {
    for (const hook of this.hooks) {
      const values = await hook.onStepEnd(ctx);
      if (values && Object.keys(values).length > 0) {
        metrics.logHook(hook.name, ctx.step, values);
        this.callbacks.onEval?.(hook.name, ctx.step, values);
      }
    }
  }

  /** Turn the engine's EMA generator on (from the checkpoint's, or the raw weights) or off. */
  private async startEma(step: number): Promise<TrainStart['ema']> {
    const decay = this.opened.config.ema;
    const resumeFrom = this.opened.resumeFrom;
    if (decay === 0) {
      await this.engine.setEma(0);
      return { decay, from: 'off' };
    }
    if (resumeFrom && hasEma(this.spec, resumeFrom.weights)) {
      await this.engine.setEma(decay, emaAsGenerator(this.spec, resumeFrom.weights, `checkpoint ${resumeFrom.dir}`));
      return { decay, from: 'checkpoint' };
    }
    await this.engine.setEma(decay);
    if (!resumeFrom) return { decay, from: 'start' };
    return { decay, from: 'raw', note: `checkpoint ${resumeFrom.dir} has no EMA generator: the EMA starts from its raw weights at step ${step}` };
  }

  private async writeSamples(samples: SampleGrid, step: number): Promise<void> {
    if (this.opened.config.sampleEvery === 0) return;
    const path = await samples.write(this.engine, step);
    this.callbacks.onSample?.(path, step);
    if (this.opened.config.ema === 0) return;
    const emaPath = await samples.write(this.engine, step, 'ema');
    this.callbacks.onSample?.(emaPath, step);
  }

  /** Raw weights and, when kept, the EMA generator as `ema.generator.*`: what a checkpoint holds. */
  private async weightsToSave(): Promise<TensorMap> {
    const weights = await this.engine.getWeights();
    const ema = await this.engine.getEmaWeights();
    if (ema) for (const [name, t] of generatorAsEma(ema)) weights.set(name, t);
    return weights;
  }

  /** Save a checkpoint of the engine's state at `step` (once per step). */
  private async checkpoint(step: number, o: { periodic: boolean }): Promise<void> {
    if (this.saved?.step === step && listCheckpoints(this.runDir).some((c) => c.step === step)) return;
    const { loader, config } = this.opened;
    try {
      const saved = saveCheckpoint(this.runDir, {
        spec: this.spec,
        step,
        stepsPerEpoch: loader.stepsPerEpoch,
        batchSize: loader.batchSize,
        worldSize: loader.worldSize,
        seed: this.runConfig.seed,
        dataChecksum: this.runConfig.data.checksum,
        engine: this.engine.info.engine,
        backend: this.engine.info.backend,
        weights: await this.weightsToSave(),
        optimizer: await this.engine.getOptimizerState(),
        keep: config.keep,
        ...(config.ema > 0 ? { extra: { emaDecay: config.ema } } : {}),
      });
      this.saved = { dir: saved.dir, step };
      this.callbacks.onCheckpoint?.(saved.dir, step);
    } catch (err) {
      // Going on is only right when someone is told: without onCheckpointFailed the error ends the run.
      if (o.periodic && err instanceof CelebaGanError && PASSING_CHECKPOINT_FAILURES.has(err.code) && this.callbacks.onCheckpointFailed) {
        this.callbacks.onCheckpointFailed(err, step);
        return;
      }
      throw err;
    }
  }

  /** The error for a step whose losses are not finite, naming the last checkpoint that is really good. */
  private async diverged(step: number, m: StepMetrics): Promise<CelebaGanError> {
    const { ref, skipped } = await lastGoodCheckpoint(this.runDir);
    const notGood = skipped.length > 0 ? ` (not ${skipped.join('; ')})` : '';
    return new CelebaGanError(
      'E_NAN_LOSS',
      `training diverged at step ${step}: loss_D=${m.lossD}, loss_G=${m.lossG}, D(x)=${m.dReal}, D(G(z))=${m.dFake}; this state was not saved`,
      {
        hint: ref
          ? `The last good checkpoint is step ${ref.step} (${ref.dir})${notGood}. Resume from it with --resume, or start again with another --seed or a smaller --batch-size.`
          : `No good checkpoint was written yet${notGood}. Start again with another --seed, a smaller --batch-size or a lower --checkpoint-every, and check the data set with \`celeba-gan prepare\`.`,
      },
    );
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
