import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { buildSpec } from '../config/presets.js';
import { DatasetReader } from '../data/dataset-file.js';
import type { GeneratorWeights } from '../engines/engine.js';
import { sampleLatents } from '../engines/randomness.js';
import { colourDistance, realHalves, swd, type ImageSet } from '../eval/index.js';
import { initialWeights } from '../model/init.js';
import { floatNchwToUint8Hwc } from '../util/image.js';
import { deriveSeed } from '../util/rng.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { prepareSynthetic } from '../data/synthetic.js';
import type { TrainingEngine } from '../engines/engine.js';
import { ENGINE_CHOICES, createEngine, type EngineChoice } from '../engines/create-engine.js';
import { CelebaGanError, UsageError, assertInteger, assertNumber, assertOneOf } from '../errors.js';
import { generateImages } from '../inference/generate.js';
import { openGenerator } from '../inference/session.js';
import { Trainer, exportRun, openRun } from '../train/index.js';
import { Progress, formatDuration } from '../util/progress.js';
import { StepTimer, catchStopSignals, type StopSignal, type StopSignals } from './signals.js';

/**
 * `celeba-gan demo`: the whole pipeline on a fresh clone, no GPU and no download:
 *   synthetic data set -> train the fastest engine here for a few minutes -> ONNX -> 64 faces + grid.
 * Everything lands under one folder (default demo/). Each step is a library call of the module
 * that owns it (src/data, src/engines + src/train, src/onnx, src/inference); this file only
 * orchestrates and reports.
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
}

export const DEMO_PRESET = 'seed28';

/**
 * The demo's own recipe, `demo28`: seed28's networks (so export, generate and eval see an
 * ordinary seed28 model), trained to show learning within minutes on 2 CPU cores, with an EMA
 * generator. The faithful presets are untouched; README ("demo") says why each number.
 * `threads`: libtorch's intra-op threads on the CPU (one thread is faster than two on 2 cores, at
 * width 0.125 and 0.25: OpenBLAS runs its own threads for the matrix products).
 * `benchSteps`: about what an idle 2-core machine reaches in the 3-minute demo (bench:ema's default).
 */
export const DEMO_RECIPE = Object.freeze({
  name: 'demo28',
  width: 0.25,
  batchSize: 32,
  learningRate: 0.0005,
  beta1: 0.5,
  ema: 0.999,
  threads: 1,
  synthetic: 4096,
  seed: 2018,
  benchSteps: 1800,
});

export interface DemoTraining {
  learningRate: number;
  beta1: number;
}

/** seed28 at `width` with the demo recipe's Adam settings (or `training`'s). */
export function demoSpec(width: number, training: DemoTraining = DEMO_RECIPE): ArchitectureSpec {
  const base = buildSpec(DEMO_PRESET, width);
  return Object.freeze({ ...base, training: Object.freeze({ ...base.training, learningRate: training.learningRate, beta1: training.beta1 }) });
}

/**
 * Width and batch per engine, so a few minutes on 2 CPU cores show learning. libtorch: the
 * demo recipe. Pure-JS tfjs: width 0.03125 batch 16 (seconds per step: it shows the pipeline,
 * not faces). Measured figures: README ("demo").
 */
export function demoSettings(engine: TrainingEngine['info']): { width: number; batchSize: number; why: string } {
  const recipe = `${DEMO_RECIPE.name}: width ${DEMO_RECIPE.width}, batch ${DEMO_RECIPE.batchSize}, Adam ${DEMO_RECIPE.learningRate}/${DEMO_RECIPE.beta1}, EMA ${DEMO_RECIPE.ema}`;
  if (engine.engine === 'torch') return { width: DEMO_RECIPE.width, batchSize: DEMO_RECIPE.batchSize, why: `${recipe} (libtorch: ~0.1 s per step on 2 idle cores, ~1,800 steps in 3 minutes)` };
  if (/pure JS/i.test(engine.backend)) {
    return { width: 0.03125, batchSize: 16, why: 'pure-JS tfjs is slow (seconds per step at width 0.25): width 0.03125, batch 16 (build the torch addon or install tfjs-node for more)' };
  }
  return { width: DEMO_RECIPE.width, batchSize: DEMO_RECIPE.batchSize, why: `${recipe} (${engine.backend})` };
}

/** Images per set for the demo's SWD and colour distance (the real-halves baseline needs 2n real faces). */
export const DEMO_EVAL_N = 300;

export interface DemoScore {
  /** SWD x1e3 (src/eval/swd.ts) and colour distance x1e3 (src/eval/colour.ts) against n real faces. */
  swd: number;
  colour: number;
}

/** The demo's yardstick: the first n real faces, and the real-halves baseline (the next n against them). */
export function demoYardstick(dataPath: string, n = DEMO_EVAL_N): { real: ImageSet; baseline: DemoScore } {
  const reader = new DatasetReader(dataPath);
  let all: ImageSet;
  try {
    const { height, width } = reader.header;
    all = { data: reader.read(Uint32Array.from({ length: 2 * n }, (_, i) => i)), n: 2 * n, height, width };
  } finally {
    reader.close();
  }
  const [r1, r2] = realHalves(all, n);
  return { real: r1, baseline: { swd: swd(r2, r1).mean, colour: colourDistance(r2, r1).value } };
}

/** SWD and colour distance of the engine's raw or EMA generator on fixed latents against `real`. */
export async function demoScore(engine: TrainingEngine, weights: GeneratorWeights, real: ImageSet, seed: number): Promise<DemoScore> {
  const { channels: c, height: h, width: w } = engine.spec.image;
  const n = real.n;
  const images = floatNchwToUint8Hwc(await engine.generate(sampleLatents(engine.spec, deriveSeed(seed, 'demo-eval'), n), n, weights), n, c, h, w);
  const set: ImageSet = { data: images, n, height: h, width: w };
  return { swd: swd(set, real).mean, colour: colourDistance(set, real).value };
}

function scoreLine(label: string, s: DemoScore, base: DemoScore): string {
  return `    ${label.padEnd(32)} SWD ${s.swd.toFixed(1).padStart(6)} (${(s.swd / base.swd).toFixed(2)}x baseline)   colour ${s.colour.toFixed(1).padStart(7)} (${(s.colour / base.colour).toFixed(1)}x)`;
}

export interface DemoPaths {
  root: string;
  data: string;
  run: string;
  model: string;
  faces: string;
  grid: string;
}

export function demoPaths(root: string): DemoPaths {
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

function say(line: string): void {
  process.stderr.write(`celeba-gan demo: ${line}\n`);
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'The whole pipeline in a few minutes, no GPU or download: synthetic data, train, export ONNX, generate faces',
  builder: (y: Argv) =>
    y
      .option('out', { type: 'string', default: 'demo', describe: 'Folder for everything the demo makes' })
      .option('minutes', { type: 'number', default: 3, describe: 'Training time' })
      .option('synthetic', { type: 'number', default: DEMO_RECIPE.synthetic, describe: 'Synthetic faces in the data set' })
      .option('engine', { type: 'string', default: 'auto', describe: `Training engine: ${ENGINE_CHOICES.join(', ')} (auto: torch when its addon loads, else tfjs)` })
      .option('width', { type: 'number', describe: 'Channel width of seed28 (default: picked for the engine, see README)' })
      .option('batch-size', { type: 'number', describe: 'Training batch (default: picked for the engine)' })
      .option('steps', { type: 'number', describe: 'Stop training after this many steps even within --minutes' })
      .option('seed', { type: 'number', default: DEMO_RECIPE.seed, describe: 'Seed for data, training and faces' })
      .option('faces', { type: 'number', default: 64, describe: 'Faces to generate' })
      .option('force', { type: 'boolean', default: false, describe: "Replace a previous demo's data, run, model and faces in --out" })
      .example('$0 demo', 'about 4 minutes: demo/data, demo/runs, demo/models, demo/faces, demo/grid.png')
      .example('$0 demo --minutes 10 --force', 'train longer, replacing the previous demo'),
  handler: async (argv) => {
    const started = performance.now();
    const minutes = assertNumber('minutes', argv.minutes, 0, 24 * 60, { exclusiveMin: true });
    const count = assertInteger('synthetic', argv.synthetic, 16, 1_000_000);
    const engineChoice = assertOneOf<EngineChoice>('engine', argv.engine, ENGINE_CHOICES);
    const seed = assertInteger('seed', argv.seed, 0, 0xffffffff);
    const faces = assertInteger('faces', argv.faces, 1, 100_000);
    const maxSteps = argv.steps === undefined ? undefined : assertInteger('steps', argv.steps, 1);
    if (argv.width !== undefined) assertNumber('width', argv.width, 0, 4, { exclusiveMin: true });
    if (argv['batch-size'] !== undefined) assertInteger('batch-size', argv['batch-size'], 2, 4096);

    const paths = demoPaths(argv.out);
    const existing = ownedPaths(paths).filter((p) => existsSync(p));
    if (existing.length > 0) {
      if (!argv.force) {
        throw new UsageError('E_OUTPUT_EXISTS', `${argv.out}/ already holds a demo (${existing[0]} exists)`, {
          hint: `Pass --force to replace it (removes ${argv.out}/data, runs, models, faces and grid.png only), or another --out.`,
        });
      }
      for (const p of existing) rmSync(p, { recursive: true, force: true });
      say(`--force: removed the previous demo in ${argv.out}/`);
    }

    // 1. Engine first: its speed decides the network width.
    const probeSpec = demoSpec(argv.width ?? DEMO_RECIPE.width);
    let engine = await createEngine(probeSpec, { engine: engineChoice });
    const notes = [...engine.info.notes];
    const picked = demoSettings(engine.info);
    const width = argv.width ?? picked.width;
    const batchSize = argv['batch-size'] ?? picked.batchSize;
    const threads = engine.info.engine === 'torch' && engine.info.device === 'cpu' ? DEMO_RECIPE.threads : undefined;
    if (width !== probeSpec.width || threads !== undefined) {
      engine.dispose();
      engine = await createEngine(demoSpec(width), { engine: engine.info.engine, ...(threads === undefined ? {} : { threads }) });
    }
    const spec = engine.spec;
    say(`engine ${engine.info.engine} (${engine.info.backend})`);
    for (const note of notes) say(`  ${note}`);
    say(`${DEMO_PRESET} at width ${width}, batch ${batchSize}${argv.width === undefined ? `: ${picked.why}` : ' (--width)'}; seed ${seed}`);

    // One stop token for every step: the first Ctrl-C / SIGTERM ends the step running now
    // cleanly (the data set is not written; training saves a checkpoint; faces stop after the
    // batches computed), the demo skips the steps after it and exits 130 / 143.
    let step: DemoStep = { finishing: () => 'stopping' };
    let progress: Progress | null = null;
    const stop = catchStopSignals({
      finishing: () => `${step.finishing()}; the demo stops there`,
      onStop: (signal) => step.onStop?.(signal),
      print: (line) => (progress ? progress.log(line) : process.stderr.write(`${line}\n`)),
    });
    try {
      // 2. Data: procedural faces, no download.
      step = { finishing: () => `stopping the synthetic data set; ${paths.data} will not be written` };
      say(`making ${count} synthetic 28x28 faces -> ${paths.data}`);
      const data = await prepareSynthetic({ count, out: paths.data, size: spec.image.height, seed, signal: stop.signal }).catch((err: unknown) => {
        if (stop.received && err instanceof CelebaGanError && err.code === 'E_ABORTED') return null;
        throw err;
      });
      if (!data) return stopped(stop, [`celeba-gan demo --out ${argv.out} --force   (start again)`]);
      say(`  done in ${data.seconds.toFixed(1)} s`);

      // The yardstick, and the untrained generator (the first sample grid's weights) on it.
      const yard = demoYardstick(paths.data, Math.min(DEMO_EVAL_N, Math.floor(count / 2)));
      await engine.setWeights(initialWeights(spec, seed));
      const first = await demoScore(engine, 'raw', yard.real, seed);

      // 3. Train for --minutes (or --steps), then save a checkpoint.
      const opened = await openRun({
        spec,
        dataPath: paths.data,
        outDir: paths.run,
        seed,
        batchSize,
        steps: maxSteps ?? 100_000_000,
        checkpointEvery: 0,
        keep: 1,
        verifyData: false,
        ema: DEMO_RECIPE.ema,
      });
      const limit = minutes * 60;
      const clock = new StepTimer();
      const trainer: Trainer = new Trainer(opened, engine, {
        onStart: () => {
          clock.start();
          progress = new Progress({ label: 'train', total: maxSteps ?? Infinity, unit: 'steps', timeLimit: limit });
        },
        onStep: (s, _total, m) => {
          clock.step();
          progress?.update(s, `D ${m.lossD.toFixed(3)} G ${m.lossG.toFixed(3)} D(x) ${m.dReal.toFixed(2)} D(G(z)) ${m.dFake.toFixed(2)}`);
          if (clock.elapsed() >= limit) trainer.stop(`the ${minutes}-minute limit`);
        },
      });
      step = {
        finishing: () => `finishing the current training step (${clock.lastStepText()}) and saving a checkpoint`,
        onStop: (signal) => trainer.stop(signal),
      };
      say(`training for ${formatDuration(limit)}${maxSteps === undefined ? '' : ` or ${maxSteps} steps`} -> ${paths.run}/`);
      let trained;
      try {
        trained = await trainer.run();
      } finally {
        (progress as Progress | null)?.finish();
        progress = null;
      }
      say(`  ${trained.step} steps in ${trained.seconds.toFixed(0)} s${trained.stopReason ? ` (stopped by ${trained.stopReason})` : ''}`);
      if (stop.received) {
        return stopped(stop, [
          `celeba-gan train --out ${paths.run} --resume --steps ${trained.step + 1000}   (train on)`,
          `celeba-gan export --run ${paths.run} --onnx ${paths.model}   (then faces: celeba-gan generate --model ${paths.model} --upscale 4)`,
        ]);
      }

      const lastEma = await demoScore(engine, 'ema', yard.real, seed);
      const lastRaw = await demoScore(engine, 'raw', yard.real, seed);

      // 4. Export the (EMA) generator to ONNX (seconds).
      step = { finishing: () => 'finishing the ONNX export (seconds)' };
      const exported = await exportRun({ runDir: paths.run, out: paths.model });
      say(`exported step ${exported.step} (${exported.weights === 'ema' ? 'EMA generator' : 'raw weights'}) -> ${paths.model}`);
      if (stop.received) return stopped(stop, [`celeba-gan generate --model ${paths.model} --out ${paths.faces} --n ${faces} --seed ${seed} --upscale 4`]);

      // 5. Faces with onnxruntime, and a contact sheet.
      step = { finishing: () => 'writing the faces already computed' };
      const session = await openGenerator(paths.model, { provider: 'auto' });
      let generated;
      try {
        generated = await generateImages(session, { outDir: paths.faces, n: faces, seed, upscale: 4, grid: { path: paths.grid }, signal: stop.signal });
      } finally {
        await session.close();
      }
      if (generated.stopped) {
        return stopped(stop, [`celeba-gan generate --model ${paths.model} --out ${paths.faces} --seed ${seed} --upscale 4 --index ${generated.firstIndex + generated.written} --n ${faces - generated.written}`]);
      }
      const total = (performance.now() - started) / 1000;
      process.stdout.write(
        [
          `demo done in ${formatDuration(total)}: everything is in ${argv.out}/`,
          `  data   ${paths.data}  (${count} synthetic faces, seed ${seed})`,
          `  run    ${paths.run}/  (${engine.info.engine}, ${DEMO_PRESET} width ${width}, ${trained.step} steps; samples/, loss.svg, metrics.jsonl, checkpoints/)`,
          `  model  ${paths.model}  (the ${exported.weights === 'ema' ? 'EMA' : 'raw'} generator)`,
          `  faces  ${paths.faces}/  (${generated.written} PNGs at 112x112 via onnxruntime ${session.providerUsed}, manifest.jsonl)`,
          `  grid   ${paths.grid}  (from the ${exported.weights === 'ema' ? 'EMA' : 'raw'} generator)`,
          `  quality: SWD x1e3 and colour distance x1e3 against ${yard.real.n} real faces; the real-halves baseline (${yard.real.n} real vs ${yard.real.n} others) is SWD ${yard.baseline.swd.toFixed(1)}, colour ${yard.baseline.colour.toFixed(1)}`,
          scoreLine('first sample (step 0)', first, yard.baseline),
          scoreLine(`last sample (step ${trained.step}), EMA`, lastEma, yard.baseline),
          scoreLine(`last sample (step ${trained.step}), raw`, lastRaw, yard.baseline),
          `next: celeba-gan generate --model ${paths.model} --n 1000 --upscale 4   (or train longer: celeba-gan train --data ${paths.data})`,
          '',
        ].join('\n'),
      );
    } finally {
      stop.dispose();
      engine.dispose();
    }
  },
};

/** The demo step running now, as the stop token's handler sees it. */
interface DemoStep {
  /** What the first signal makes this step do. */
  finishing: () => string;
  onStop?: (signal: StopSignal) => void;
}

/** Stopped by a signal: say what to run for the rest, exit 130 / 143. */
function stopped(stop: StopSignals, rest: string[]): void {
  say(`stopped by ${stop.received}; to go on:`);
  for (const line of rest) say(`  ${line}`);
  process.exitCode = stop.exitCode ?? 130;
}
