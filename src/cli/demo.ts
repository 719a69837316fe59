import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { DEMO_PRESET, DEMO_RECIPE, demoSpec } from '../config/demo.js';
import { DatasetReader } from '../data/dataset-file.js';
import { prepareSynthetic } from '../data/synthetic.js';
import { ENGINE_CHOICES, createEngine, type EngineChoice } from '../engines/create-engine.js';
import type { GeneratorWeights, TrainingEngine } from '../engines/engine.js';
import { sampleLatents } from '../engines/randomness.js';
import { CelebaGanError, UsageError, assertInteger, assertNumber, assertOneOf } from '../errors.js';
import { openSwdKernel, realHalves, realHalvesScores, type ImageSet, type SetScore } from '../eval/index.js';
import type { AgreementReport } from '../eval/attribute-agreement.js';
import { attributeDraw, type ModelAttributes } from '../inference/attributes.js';
import { generateImages, type GenerateResult } from '../inference/generate.js';
import { openGenerator } from '../inference/session.js';
import { initialWeights } from '../model/init.js';
import { Trainer, exportRun, openRun, type ExportRunResult, type TrainResult } from '../train/index.js';
import { floatNchwToUint8Hwc } from '../util/image.js';
import { deriveSeed } from '../util/rng.js';
import { Progress, formatDuration } from '../util/progress.js';
import {
  agreementLines,
  conditionalDemoEngine,
  demoAgreement,
  demoModelAttributes,
  drawnLabels,
  trainDemoClassifier,
  writeAttributeGrid,
  type DemoClassifier,
} from './demo-attributes.js';
import { Screen } from './output.js';
import { StepTimer, catchStopSignals, type StopSignal, type StopSignals } from './signals.js';

/**
 * `celeba-gan demo`: the whole pipeline on a fresh clone, no GPU and no download:
 *   synthetic data set -> train the fastest engine here for a few minutes -> ONNX -> 64 faces + grid,
 * and SWD / colour distance of the first and the last generator beside the real-halves baseline.
 * Everything lands under one folder (default demo/). Each step is a library call of the module
 * that owns it (src/data, src/engines + src/train, src/eval, src/onnx, src/inference); this file
 * only orchestrates and reports. The recipe is data: src/config/demo.ts.
 */

interface DemoArgs {
  out: string;
  minutes: number;
  synthetic: number;
  engine: string;
  width?: number;
  'batch-size'?: number;
  steps?: number;
  seed: number;
  faces: number;
  force: boolean;
  attributes: boolean;
}

/** The flags, checked. `width` / `batchSize` undefined: picked for the engine (demoSettings). */
interface DemoConfig {
  out: string;
  minutes: number;
  count: number;
  engine: EngineChoice;
  width?: number;
  batchSize?: number;
  maxSteps?: number;
  seed: number;
  faces: number;
  force: boolean;
  /** --attributes: the conditional recipe on the labelled synthetic faces (src/cli/demo-attributes.ts). */
  attributes: boolean;
}

/**
 * Width and batch per engine, so a few minutes on 2 CPU cores show learning. libtorch: the
 * demo recipe. Pure-JS tfjs: width 0.03125 batch 16 (seconds per step: it shows the pipeline,
 * not faces). Measured figures: docs ("demo").
 */
function demoSettings(engine: TrainingEngine['info']): { width: number; batchSize: number; why: string } {
  const recipe = `${DEMO_RECIPE.name}: width ${DEMO_RECIPE.width}, batch ${DEMO_RECIPE.batchSize}, Adam ${DEMO_RECIPE.learningRate}/${DEMO_RECIPE.beta1}, EMA ${DEMO_RECIPE.ema}`;
  if (engine.engine === 'torch')
    return {
      width: DEMO_RECIPE.width,
      batchSize: DEMO_RECIPE.batchSize,
      why: `${recipe} (libtorch: about 1,200 to 1,800 steps in 3 minutes on 2 idle cores, docs/benchmarks.md)`,
    };
  if (/pure JS/i.test(engine.backend)) {
    return {
      width: 0.03125,
      batchSize: 16,
      why: 'pure-JS tfjs is slow (seconds per step at width 0.25): width 0.03125, batch 16 (build the torch addon or install tfjs-node for more)',
    };
  }
  return { width: DEMO_RECIPE.width, batchSize: DEMO_RECIPE.batchSize, why: `${recipe} (${engine.backend})` };
}

/** Images per set for the demo's SWD and colour distance (the real-halves baseline needs 2n real faces). */
const DEMO_EVAL_N = 300;

export interface DemoPaths {
  root: string;
  data: string;
  run: string;
  model: string;
  faces: string;
  grid: string;
}

function demoPaths(root: string): DemoPaths {
  return {
    root,
    data: join(root, 'data', 'synthetic-28.cgds'),
    run: join(root, 'runs', `demo-${DEMO_PRESET}`),
    model: join(root, 'models', `demo-${DEMO_PRESET}.onnx`),
    faces: join(root, 'faces'),
    grid: join(root, 'grid.png'),
  };
}

/** The paths a demo writes; --force removes exactly these (nothing else under --out). */
function ownedPaths(p: DemoPaths): string[] {
  return [join(p.root, 'data'), join(p.root, 'runs'), join(p.root, 'models'), p.faces, p.grid];
}

/** The demo's lines: notes to stderr, its summary to stdout, each escaped (src/cli/output.ts). */
const screen = new Screen();

function say(line: string): void {
  screen.log(`celeba-gan demo: ${line}`);
}

function demoConfig(argv: DemoArgs): DemoConfig {
  return {
    out: argv.out,
    minutes: assertNumber('minutes', argv.minutes, 0, 24 * 60, { exclusiveMin: true }),
    count: assertInteger('synthetic', argv.synthetic, 16, 1_000_000),
    engine: assertOneOf<EngineChoice>('engine', argv.engine, ENGINE_CHOICES),
    width: argv.width === undefined ? undefined : assertNumber('width', argv.width, 0, 4, { exclusiveMin: true }),
    batchSize: argv['batch-size'] === undefined ? undefined : assertInteger('batch-size', argv['batch-size'], 2, 4096),
    maxSteps: argv.steps === undefined ? undefined : assertInteger('steps', argv.steps, 1),
    seed: assertInteger('seed', argv.seed, 0, 0xffffffff),
    faces: assertInteger('faces', argv.faces, 1, 100_000),
    force: argv.force,
    attributes: argv.attributes,
  };
}

/** A previous demo in --out: E_OUTPUT_EXISTS, or with --force remove exactly what it wrote. */
function clearPreviousDemo(paths: DemoPaths, cfg: DemoConfig): void {
  const existing = ownedPaths(paths).filter((p) => existsSync(p));
  if (existing.length === 0) return;
  if (!cfg.force) {
    throw new UsageError('E_OUTPUT_EXISTS', `${cfg.out}/ already holds a demo (${existing[0]} exists)`, {
      hint: `Pass --force to replace it (removes ${cfg.out}/data, runs, models, faces and grid.png only), or another --out.`,
    });
  }
  for (const p of existing) rmSync(p, { recursive: true, force: true });
  say(`--force: removed the previous demo in ${cfg.out}/`);
}

interface DemoEngine {
  engine: TrainingEngine;
  width: number;
  batchSize: number;
  /** Why this width and batch when picked for the engine. */
  why: string;
  /** Why `auto` chose this engine, and what it found (BLAS, ...). */
  notes: string[];
}

/**
 * The engine at the width and batch the demo trains. The engine comes first because its speed
 * decides the width (pure-JS tfjs gets a narrower network); it is opened again only when the
 * width differs. libtorch keeps its default threads, one per core (src/config/demo.ts says why).
 */
async function openDemoEngine(cfg: DemoConfig): Promise<DemoEngine> {
  const probeWidth = cfg.width ?? DEMO_RECIPE.width;
  const probe = await createEngine(demoSpec(probeWidth), { engine: cfg.engine });
  const picked = demoSettings(probe.info);
  const notes = [...probe.info.notes];
  const width = cfg.width ?? picked.width;
  const batchSize = cfg.batchSize ?? picked.batchSize;
  if (width === probeWidth) return { engine: probe, width, batchSize, why: picked.why, notes };
  probe.dispose();
  const engine = await createEngine(demoSpec(width), { engine: probe.info.engine });
  return { engine, width, batchSize, why: picked.why, notes };
}

/** The first n real faces (R1) and the next n (R2) of the demo's data set. */
function readRealHalves(dataPath: string, n: number): [ImageSet, ImageSet] {
  const reader = new DatasetReader(dataPath);
  try {
    const { height, width } = reader.header;
    return realHalves({ data: reader.read(Uint32Array.from({ length: 2 * n }, (_, i) => i)), n: 2 * n, height, width }, n);
  } finally {
    reader.close();
  }
}

/**
 * n images of the engine's raw or EMA generator on the demo's fixed latents (a conditional one's
 * with label rows drawn from the training rows, as `generate` draws them with no --attr).
 */
async function generatorSet(engine: TrainingEngine, weights: GeneratorWeights, n: number, seed: number, model?: ModelAttributes): Promise<ImageSet> {
  const { channels: c, height: h, width: w } = engine.spec.image;
  const labels = model ? drawnLabels(model, deriveSeed(seed, 'demo-eval'), n) : undefined;
  const images = await engine.generate(sampleLatents(engine.spec, deriveSeed(seed, 'demo-eval'), n), n, weights, labels);
  return { data: floatNchwToUint8Hwc(images, n, c, h, w), n, height: h, width: w };
}

/** The demo step running now, as the stop token's handler sees it. */
interface DemoStep {
  /** What the first signal makes this step do. */
  finishing: () => string;
  onStop?: (signal: StopSignal) => void;
}

/**
 * One stop token for every step: the first Ctrl-C / SIGTERM ends the step running now cleanly
 * (the data set is not written; training saves a checkpoint; faces stop after the batches
 * computed), the demo skips the steps after it and exits 130 / 143.
 */
class DemoStops {
  step: DemoStep = { finishing: () => 'stopping' };
  progress: Progress | null = null;
  readonly signals: StopSignals = catchStopSignals({
    finishing: () => `${this.step.finishing()}; the demo stops there`,
    onStop: (signal) => this.step.onStop?.(signal),
    print: (line) => (this.progress ? this.progress.log(line) : screen.log(line)),
  });

  /** Stopped by a signal: say what to run for the rest, exit 130 / 143. */
  stopped(rest: string[]): void {
    say(`stopped by ${this.signals.received}; to go on:`);
    for (const line of rest) say(`  ${line}`);
    process.exitCode = this.signals.exitCode ?? 130;
  }
}

/** Seconds per part of the demo, printed at the end (docs: where the minutes go). */
interface DemoTimes {
  data: number;
  train: number;
  scores: number;
  export: number;
  faces: number;
  /** --attributes: the agreement and the attribute grid, after training. */
  attributes: number;
}

async function makeData(cfg: DemoConfig, paths: DemoPaths, size: number, stops: DemoStops): Promise<boolean> {
  stops.step = { finishing: () => `stopping the synthetic data set; ${paths.data} will not be written` };
  say(`making ${cfg.count} synthetic ${size}x${size} faces -> ${paths.data}`);
  const data = await prepareSynthetic({ count: cfg.count, out: paths.data, size, seed: cfg.seed, signal: stops.signals.signal }).catch((err: unknown) => {
    if (stops.signals.received && err instanceof CelebaGanError && err.code === 'E_ABORTED') return null;
    throw err;
  });
  if (data) say(`  done in ${data.seconds.toFixed(1)} s`);
  return data !== null;
}

/** Train for --minutes (or --steps) from the seed's initial weights, then save a checkpoint. */
async function trainDemo(cfg: DemoConfig, paths: DemoPaths, { engine, batchSize }: DemoEngine, stops: DemoStops): Promise<TrainResult> {
  const opened = await openRun({
    spec: engine.spec,
    dataPath: paths.data,
    outDir: paths.run,
    seed: cfg.seed,
    batchSize,
    steps: cfg.maxSteps ?? 100_000_000,
    checkpointEvery: 0,
    keep: 1,
    verifyData: false,
    ema: DEMO_RECIPE.ema,
  });
  const limit = cfg.minutes * 60;
  const clock = new StepTimer();
  const trainer: Trainer = new Trainer(opened, engine, {
    onStart: () => {
      clock.start();
      stops.progress = new Progress({ label: 'train', total: cfg.maxSteps ?? Infinity, unit: 'steps', timeLimit: limit });
    },
    onStep: (s, _total, m) => {
      clock.step();
      stops.progress?.update(s, `D ${m.lossD.toFixed(3)} G ${m.lossG.toFixed(3)} D(x) ${m.dReal.toFixed(2)} D(G(z)) ${m.dFake.toFixed(2)}`);
      if (clock.elapsed() >= limit) trainer.stop(`the ${cfg.minutes}-minute limit`);
    },
  });
  stops.step = {
    finishing: () => `finishing the current training step (${clock.lastStepText()}) and saving a checkpoint`,
    onStop: (signal) => trainer.stop(signal),
  };
  say(`training for ${formatDuration(limit)}${cfg.maxSteps === undefined ? '' : ` or ${cfg.maxSteps} steps`} -> ${paths.run}/`);
  try {
    const trained = await trainer.run();
    say(`  ${trained.step} steps in ${trained.seconds.toFixed(0)} s${trained.stopReason ? ` (stopped by ${trained.stopReason})` : ''}`);
    return trained;
  } finally {
    stops.progress?.finish();
    stops.progress = null;
  }
}

interface DemoScores {
  n: number;
  baseline: SetScore;
  first: SetScore;
  ema: SetScore;
  raw: SetScore;
  kernel: string;
}

/**
 * SWD and colour distance of the first sample (the untrained generator's images, made before
 * training) and the last one (EMA and raw) against R1, and the real-halves baseline: one SWD
 * pass, so R1's projections are computed once.
 */
async function scoreDemo(engine: TrainingEngine, halves: [ImageSet, ImageSet], first: ImageSet, seed: number, model?: ModelAttributes): Promise<DemoScores> {
  const [r1, r2] = halves;
  const ema = await generatorSet(engine, 'ema', r1.n, seed, model);
  const raw = await generatorSet(engine, 'raw', r1.n, seed, model);
  const kernel = await openSwdKernel('auto');
  try {
    const { baseline, generated } = await realHalvesScores(r1, r2, [first, ema, raw], { run: { kernel } });
    const [f, e, r] = generated as [SetScore, SetScore, SetScore];
    return { n: r1.n, baseline, first: f, ema: e, raw: r, kernel: kernel.description };
  } finally {
    await kernel.dispose();
  }
}

/**
 * 64 (--faces) faces of the exported model through onnxruntime, and their contact sheet (with
 * --attributes the grid is the attribute grid instead; a conditional model's faces have every
 * attribute drawn from the training rows, as `generate` with no --attr).
 */
async function makeFaces(cfg: DemoConfig, paths: DemoPaths, stops: DemoStops): Promise<GenerateResult & { provider: string }> {
  stops.step = { finishing: () => 'writing the faces already computed' };
  const session = await openGenerator(paths.model, { provider: 'auto' });
  try {
    const attributes = attributeDraw(session.info.attributes, undefined, paths.model);
    for (const note of attributes?.notes ?? []) say(`note: ${note}`);
    const generated = await generateImages(session, {
      ...(attributes ? { attributes } : {}),
      outDir: paths.faces,
      n: cfg.faces,
      seed: cfg.seed,
      upscale: 4,
      ...(cfg.attributes ? {} : { grid: { path: paths.grid } }),
      signal: stops.signals.signal,
    });
    return { ...generated, provider: session.providerUsed };
  } finally {
    await session.close();
  }
}

function scoreLine(label: string, s: SetScore, base: SetScore): string {
  return `    ${label.padEnd(32)} SWD ${s.swd.mean.toFixed(1).padStart(6)} (${(s.swd.mean / base.swd.mean).toFixed(2)}x baseline)   colour ${s.colour.value.toFixed(1).padStart(7)} (${(s.colour.value / base.colour.value).toFixed(1)}x)`;
}

interface DemoOutcome {
  cfg: DemoConfig;
  paths: DemoPaths;
  setup: DemoEngine;
  trained: TrainResult;
  scores: DemoScores;
  exported: ExportRunResult;
  faces: GenerateResult & { provider: string };
  /** --attributes only. */
  attributes: AttributeOutcome | null;
  times: DemoTimes;
  total: number;
}

function summary({ cfg, paths, setup, trained, scores, exported, faces, attributes, times, total }: DemoOutcome): string {
  const weights = exported.weights === 'ema' ? 'EMA' : 'raw';
  const after = times.scores + times.export + times.faces + times.attributes;
  return [
    `demo done in ${formatDuration(total)}: everything is in ${cfg.out}/`,
    `  data   ${paths.data}  (${cfg.count} synthetic faces, seed ${cfg.seed})`,
    `  run    ${paths.run}/  (${setup.engine.info.engine}, ${DEMO_PRESET} width ${setup.width}, ${trained.step} steps; samples/, loss.svg, metrics.jsonl, checkpoints/)`,
    `  model  ${paths.model}  (the ${weights} generator)`,
    `  faces  ${paths.faces}/  (${faces.written} PNGs at 112x112 via onnxruntime ${faces.provider}, manifest.jsonl)`,
    `  grid   ${paths.grid}  (from the ${weights} generator${attributes ? ', a row per attribute setting on the same latents' : ''})`,
    `  quality: SWD x1e3 and colour distance x1e3 against ${scores.n} real faces; the real-halves baseline (${scores.n} real vs ${scores.n} others) is SWD ${scores.baseline.swd.mean.toFixed(1)}, colour ${scores.baseline.colour.value.toFixed(1)}`,
    scoreLine('first sample (step 0)', scores.first, scores.baseline),
    scoreLine(`last sample (step ${trained.step}), EMA`, scores.ema, scores.baseline),
    scoreLine(`last sample (step ${trained.step}), raw`, scores.raw, scores.baseline),
    ...(attributes ? agreementLines(attributes.agreement, attributes.classifier, attributes.grid, paths.grid) : []),
    `  time   data ${times.data.toFixed(1)} s, training ${times.train.toFixed(0)} s, then ${after.toFixed(1)} s: SWD + colour ${times.scores.toFixed(1)} s (${scores.kernel}), export ${times.export.toFixed(1)} s, faces ${times.faces.toFixed(1)} s${attributes ? `, agreement + grid ${times.attributes.toFixed(1)} s` : ''}`,
    `next: celeba-gan generate --model ${paths.model} --n 1000 --upscale 4   (or train longer: celeba-gan train --data ${paths.data})`,
    '',
  ].join('\n');
}

/** Seconds since `t` (performance.now()). */
function since(t: number): number {
  return (performance.now() - t) / 1000;
}

/** --attributes, before training: the labelled set's attributes and the classifier trained on its faces. */
interface AttributeSetup {
  model: ModelAttributes;
  classifier: DemoClassifier;
}

/** --attributes, after training: what the summary reports. */
interface AttributeOutcome {
  classifier: DemoClassifier;
  agreement: AgreementReport;
  /** The grid's rows, top first. */
  grid: string[];
}

/**
 * --attributes: swap the engine for the conditional recipe on the data set's attributes, and
 * train the attribute classifier on the demo's faces (null when a signal stopped it).
 */
async function setUpAttributes(cfg: DemoConfig, paths: DemoPaths, setup: DemoEngine, stops: DemoStops): Promise<AttributeSetup | null> {
  const model = demoModelAttributes(paths.data);
  const engine = await conditionalDemoEngine(setup.engine.info.engine, setup.width, model);
  setup.engine.dispose();
  setup.engine = engine;
  say(`--attributes: the conditional ${DEMO_RECIPE.name} recipe on ${model.names.length} attributes (${model.names.join(', ')})`);
  stops.step = { finishing: () => 'stopping the attribute classifier' };
  say(`training the attribute classifier on the demo's faces (held out: the last quarter, at most 512)`);
  const classifier = await trainDemoClassifier(paths.data, cfg.seed, stops.signals.signal).catch((err: unknown) => {
    if (stops.signals.received && err instanceof CelebaGanError && err.code === 'E_ABORTED') return null;
    throw err;
  });
  if (!classifier) return null;
  say(`  done in ${classifier.classifier.trained.seconds.toFixed(1)} s: held-out accuracy ${(100 * classifier.mean).toFixed(1)}% on average`);
  return { model, classifier };
}

/** --attributes, after export: the agreement and the attribute grid, from the engine's EMA generator. */
async function attributeWork(engine: TrainingEngine, { model, classifier }: AttributeSetup, paths: DemoPaths, seed: number): Promise<AttributeOutcome> {
  const agreement = await demoAgreement(engine, model, classifier.classifier, seed);
  const grid = await writeAttributeGrid(engine, model, paths.grid, seed);
  return { classifier, agreement, grid };
}

/** The demo's steps in order; returns early (after saying how to go on) when a signal stops one. */
async function runDemo(cfg: DemoConfig, paths: DemoPaths, setup: DemoEngine, stops: DemoStops, started: number): Promise<void> {
  const times: DemoTimes = { data: 0, train: 0, scores: 0, export: 0, faces: 0, attributes: 0 };
  const t = performance.now();
  if (!(await makeData(cfg, paths, setup.engine.spec.image.height, stops))) return stops.stopped([`celeba-gan demo --out ${cfg.out} --force   (start again)`]);
  const conditional = cfg.attributes ? await setUpAttributes(cfg, paths, setup, stops) : null;
  if (cfg.attributes && !conditional) return stops.stopped([`celeba-gan demo --attributes --out ${cfg.out} --force   (start again)`]);
  try {
    await trainAndReport(cfg, paths, setup, stops, started, { t, times, conditional });
  } finally {
    conditional?.classifier.classifier.dispose();
  }
}

/** From the yardstick to the summary (runDemo's steps after the data set). */
async function trainAndReport(
  cfg: DemoConfig,
  paths: DemoPaths,
  setup: DemoEngine,
  stops: DemoStops,
  started: number,
  { t: dataStarted, times, conditional }: { t: number; times: DemoTimes; conditional: AttributeSetup | null },
): Promise<void> {
  const { engine } = setup;
  const model = conditional?.model;
  // The yardstick, and the untrained generator (the first sample grid's weights) on it; scored after training.
  const halves = readRealHalves(paths.data, Math.min(DEMO_EVAL_N, Math.floor(cfg.count / 2)));
  await engine.setWeights(initialWeights(engine.spec, cfg.seed));
  const first = await generatorSet(engine, 'raw', halves[0].n, cfg.seed, model);
  times.data = since(dataStarted);

  let t = performance.now();
  const trained = await trainDemo(cfg, paths, setup, stops);
  times.train = since(t);
  if (stops.signals.received) {
    return stops.stopped([
      `celeba-gan train --out ${paths.run} --resume --steps ${trained.step + 1000}   (train on)`,
      `celeba-gan export --run ${paths.run} --onnx ${paths.model}   (then faces: celeba-gan generate --model ${paths.model} --upscale 4)`,
    ]);
  }

  t = performance.now();
  const scores = await scoreDemo(engine, halves, first, cfg.seed, model);
  times.scores = since(t);

  t = performance.now();
  stops.step = { finishing: () => 'finishing the ONNX export (seconds)' };
  const exported = await exportRun({ runDir: paths.run, out: paths.model });
  times.export = since(t);
  say(`exported step ${exported.step} (${exported.weights === 'ema' ? 'EMA generator' : 'raw weights'}) -> ${paths.model}`);
  if (stops.signals.received)
    return stops.stopped([`celeba-gan generate --model ${paths.model} --out ${paths.faces} --n ${cfg.faces} --seed ${cfg.seed} --upscale 4`]);

  t = performance.now();
  const faces = await makeFaces(cfg, paths, stops);
  times.faces = since(t);
  if (faces.stopped) {
    return stops.stopped([
      `celeba-gan generate --model ${paths.model} --out ${paths.faces} --seed ${cfg.seed} --upscale 4 --index ${faces.firstIndex + faces.written} --n ${cfg.faces - faces.written}`,
    ]);
  }

  t = performance.now();
  const attributes = conditional ? await attributeWork(engine, conditional, paths, cfg.seed) : null;
  times.attributes = since(t);
  screen.result(
    ...summary({ cfg, paths, setup, trained, scores, exported, faces, attributes, times, total: since(started) })
      .trimEnd()
      .split('\n'),
  );
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'The whole pipeline in a few minutes, no GPU or download: synthetic data, train, export ONNX, generate faces',
  builder: (y: Argv) =>
    y
      .option('out', { type: 'string', default: 'demo', describe: 'Folder for everything the demo makes' })
      .option('minutes', { type: 'number', default: 3, describe: 'Training time' })
      .option('synthetic', { type: 'number', default: DEMO_RECIPE.synthetic, describe: 'Synthetic faces in the data set' })
      .option('engine', {
        type: 'string',
        default: 'auto',
        describe: `Training engine: ${ENGINE_CHOICES.join(', ')} (auto: torch when its addon loads, else tfjs)`,
      })
      .option('width', { type: 'number', describe: 'Channel width of seed28 (default: picked for the engine, see docs)' })
      .option('batch-size', { type: 'number', describe: 'Training batch (default: picked for the engine)' })
      .option('steps', { type: 'number', describe: 'Stop training after this many steps even within --minutes' })
      .option('seed', { type: 'number', default: DEMO_RECIPE.seed, describe: 'Seed for data, training and faces' })
      .option('faces', { type: 'number', default: 64, describe: 'Faces to generate' })
      .option('force', { type: 'boolean', default: false, describe: "Replace a previous demo's data, run, model and faces in --out" })
      .option('attributes', {
        type: 'boolean',
        default: false,
        describe:
          "Train the conditional recipe on the synthetic faces' attributes; grid.png gets a row per attribute setting, the summary the average agreement",
      })
      .example('$0 demo', 'about 4 minutes: demo/data, demo/runs, demo/models, demo/faces, demo/grid.png')
      .example('$0 demo --minutes 10 --force', 'train longer, replacing the previous demo')
      .example('$0 demo --attributes', 'faces on request: a conditional model, its grid and its attribute agreement'),
  handler: async (argv) => {
    const started = performance.now();
    const cfg = demoConfig(argv);
    const paths = demoPaths(cfg.out);
    clearPreviousDemo(paths, cfg);
    const setup = await openDemoEngine(cfg);
    say(`engine ${setup.engine.info.engine} (${setup.engine.info.backend})`);
    for (const note of setup.notes) say(`  ${note}`);
    say(`${DEMO_PRESET} at width ${setup.width}, batch ${setup.batchSize}${cfg.width === undefined ? `: ${setup.why}` : ' (--width)'}; seed ${cfg.seed}`);
    const stops = new DemoStops();
    try {
      await runDemo(cfg, paths, setup, stops, started);
    } finally {
      stops.signals.dispose();
      setup.engine.dispose();
    }
  },
};
