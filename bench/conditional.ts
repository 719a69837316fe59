/**
 * Does the conditional demo recipe give the faces asked for, and at what cost in quality?
 *
 *   npm run bench:conditional [-- --minutes 10 --n 200 --swd-n 300 --latent-sets 3 --engine auto
 *                                 --classifier-images 8192 --held-out 2048 --epochs 8 --json bench-conditional.json]
 *
 * 1. The demo's synthetic set (DEMO_RECIPE.synthetic faces, seed 2018), labelled with the 10
 *    attributes the drawing shows (src/data/synthetic.ts).
 * 2. An attribute classifier (src/eval/attribute-classifier.ts) trained on --classifier-images
 *    other real synthetic faces; its accuracy on --held-out faces it never saw is printed first:
 *    the agreement figures below mean nothing beyond it.
 * 3. The conditional demo recipe (demoSpec with the data set's attributes) trained for --minutes,
 *    then the unconditional demo recipe for the same minutes on the same data, each through the
 *    real training loop (the engine `auto` picks, its default threads).
 * 4. Agreement (src/eval/attribute-agreement.ts): per attribute, n faces asked for with it and n
 *    without it from the same latents (attributeDraw 'Name' / '-Name', the EMA generator the demo
 *    exports), read by the classifier.
 * 5. SWD x1e3 of each model's EMA generator against --swd-n real faces, on --latent-sets disjoint
 *    sets of latents (mean and half-range), the conditional model with its labels drawn from the
 *    training rows (as `generate` draws them with no --attr), beside the real-halves baseline.
 * Targets (issue 20): average agreement >= 90% after 10 minutes; conditional SWD no worse than
 * unconditional. The table, the command, date and machine go to stdout and --json.
 * Timed: run it under the shared CPU lock (flock /tmp/cpu.lock npm run bench:conditional).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_RECIPE, demoSpec } from '../src/config/demo.js';
import { DatasetReader } from '../src/data/dataset-file.js';
import { prepareSynthetic } from '../src/data/synthetic.js';
import { createEngine, type EngineChoice } from '../src/engines/create-engine.js';
import type { TrainingEngine } from '../src/engines/engine.js';
import { sampleLatents } from '../src/engines/randomness.js';
import { engineFaces, measureAgreement, type AgreementReport } from '../src/eval/attribute-agreement.js';
import { AttributeClassifier, readLabelledImages, type AttributeAccuracy } from '../src/eval/attribute-classifier.js';
import { openSwdKernel, realHalves, realHalvesScores, scoreAgainst, type ImageSet, type SwdKernel } from '../src/eval/index.js';
import { attributeDraw, type ModelAttributes } from '../src/inference/attributes.js';
import type { ArchitectureSpec } from '../src/model/spec.js';
import { countLabelRows } from '../src/onnx/attribute-rows.js';
import { Trainer, openRun } from '../src/train/index.js';
import { floatNchwToUint8Hwc } from '../src/util/image.js';
import { deriveSeed } from '../src/util/rng.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    n: { type: 'string', default: '200' },
    'swd-n': { type: 'string', default: '300' },
    'latent-sets': { type: 'string', default: '3' },
    engine: { type: 'string', default: 'auto' },
    synthetic: { type: 'string', default: String(DEMO_RECIPE.synthetic) },
    'classifier-images': { type: 'string', default: '8192' },
    'held-out': { type: 'string', default: '2048' },
    epochs: { type: 'string', default: '8' },
    seed: { type: 'string', default: String(DEMO_RECIPE.seed) },
    json: { type: 'string', default: 'bench-conditional.json' },
  },
});

const minutes = Number(args.minutes);
const n = Number(args.n);
const swdN = Number(args['swd-n']);
const latentSets = Number(args['latent-sets']);
const seed = Number(args.seed);
const classifierImages = Number(args['classifier-images']);
const heldOut = Number(args['held-out']);

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;

interface Trained {
  steps: number;
  seconds: number;
  cpuSeconds: number;
}

/** Train `engine` on the data set for `minutes` of wall time (the demo's loop: time-bounded, EMA on). */
async function trainFor(engine: TrainingEngine, dataPath: string, outDir: string): Promise<Trained> {
  const opened = await openRun({
    spec: engine.spec,
    dataPath,
    outDir,
    seed,
    batchSize: DEMO_RECIPE.batchSize,
    steps: 100_000_000,
    sampleEvery: 0,
    checkpointEvery: 0,
    keep: 1,
    verifyData: false,
    ema: DEMO_RECIPE.ema,
  });
  const limit = minutes * 60 * 1000;
  let started = 0;
  const cpu = process.cpuUsage();
  const trainer: Trainer = new Trainer(opened, engine, {
    onStart: () => (started = performance.now()),
    onStep: () => {
      if (performance.now() - started >= limit) trainer.stop(`the ${minutes}-minute limit`);
    },
  });
  const result = await trainer.run();
  const used = process.cpuUsage(cpu);
  return { steps: result.step, seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
}

interface SwdScore {
  mean: number;
  /** Half the range over the latent sets. */
  spread: number;
  colour: number;
}

/** SWD of the EMA generator on `latentSets` disjoint sets of swdN latents (labels from `labelsFor`). */
async function swdOf(engine: TrainingEngine, real: ImageSet, kernel: SwdKernel, labelsFor?: (set: number) => Float32Array): Promise<SwdScore> {
  const { channels: c, height: h, width: w } = engine.spec.image;
  const swds: number[] = [];
  let colour = 0;
  for (let set = 0; set < latentSets; set++) {
    const z = sampleLatents(engine.spec, deriveSeed(seed, 'bench-conditional-swd', set), swdN);
    const images = await engine.generate(z, swdN, 'ema', labelsFor?.(set));
    const scored = await scoreAgainst(real, { data: floatNchwToUint8Hwc(images, swdN, c, h, w), n: swdN, height: h, width: w }, { run: { kernel } });
    swds.push(scored.swd.mean);
    colour += scored.colour.value / latentSets;
  }
  return { mean: swds.reduce((a, b) => a + b, 0) / latentSets, spread: (Math.max(...swds) - Math.min(...swds)) / 2, colour };
}

interface ModelResult {
  spec: ArchitectureSpec;
  trained: Trained;
  swd: SwdScore;
  agreement?: AgreementReport;
}

async function trainAndScore(
  spec: ArchitectureSpec,
  dataPath: string,
  runDir: string,
  real: ImageSet,
  kernel: SwdKernel,
  extra: { model?: ModelAttributes; classifier?: AttributeClassifier },
): Promise<ModelResult> {
  const engine = await createEngine(spec, { engine: args.engine as EngineChoice });
  try {
    log(
      `  training ${spec.conditioning ? 'the conditional' : 'the unconditional'} model on ${engine.info.engine} (${engine.info.backend}) for ${minutes} min ...`,
    );
    const trained = await trainFor(engine, dataPath, runDir);
    log(
      `    ${trained.steps} steps in ${trained.seconds.toFixed(0)} s (${(trained.seconds / trained.steps).toFixed(3)} s/step, ${trained.cpuSeconds.toFixed(0)} CPU s)`,
    );
    const { model, classifier } = extra;
    // The conditional model's SWD faces carry labels drawn from the training rows, as `generate` with no --attr.
    const draw = model ? attributeDraw(model, undefined) : undefined;
    const swd = await swdOf(engine, real, kernel, draw ? (set) => draw.rowsFor(deriveSeed(seed, 'bench-conditional-swd', set), 0, swdN) : undefined);
    const agreement =
      model && classifier
        ? await measureAgreement({ model, classifier, faces: engineFaces(engine, 'ema', seed, n), n, seed: deriveSeed(seed, 'bench-conditional-draw') })
        : undefined;
    return { spec, trained, swd, ...(agreement ? { agreement } : {}) };
  } finally {
    engine.dispose();
  }
}

function machine(): Record<string, unknown> {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? '(unset)',
    node: process.version,
    // The 1-minute load average: other work on a shared machine slows every figure here.
    load: Number(loadavg()[0]!.toFixed(2)),
  };
}

function printTable(accuracy: AttributeAccuracy[], agreement: AgreementReport): void {
  log('  attribute            | classifier held-out | positives | agreement: on    off   mean');
  for (const a of accuracy) {
    const g = agreement.attributes.find((x) => x.name === a.name);
    log(
      `  ${a.name.padEnd(20)} | ${pct(a.accuracy).padStart(19)} | ${pct(a.positives / a.n).padStart(9)} | ${g ? `${pct(g.on).padStart(14)} ${pct(g.off).padStart(6)} ${pct(g.agreement).padStart(6)}` : '(not scored)'}`,
    );
  }
  const meanAcc = accuracy.reduce((s, a) => s + a.accuracy, 0) / accuracy.length;
  log(`  ${'average'.padEnd(20)} | ${pct(meanAcc).padStart(19)} | ${''.padStart(9)} | ${''.padStart(14)} ${''.padStart(6)} ${pct(agreement.mean).padStart(6)}`);
}

async function main(): Promise<void> {
  const command = ['npm run bench:conditional', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  const date = new Date().toISOString();
  const startMachine = machine();
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-conditional-'));
  const kernel = await openSwdKernel('auto');
  try {
    log(`bench:conditional: ${command}`);
    log(`  ${date}; ${JSON.stringify(startMachine)}`);
    const data = join(dir, 'synthetic-28.cgds');
    await prepareSynthetic({ count: Number(args.synthetic), out: data, size: 28, seed });
    const reader = new DatasetReader(data);
    const attributes = reader.attributes!;
    const model: ModelAttributes = {
      names: attributes.names,
      frequencies: attributes.frequencies,
      rows: countLabelRows(reader, attributes.names.length).table(),
    };
    const all: ImageSet = { data: reader.read(Uint32Array.from({ length: 2 * swdN }, (_, i) => i)), n: 2 * swdN, height: 28, width: 28 };
    reader.close();
    const [r1, r2] = realHalves(all, swdN);

    // The classifier's own faces: another seed, so none of them is a training image of the GANs.
    const classifierData = join(dir, 'classifier-28.cgds');
    await prepareSynthetic({ count: classifierImages + heldOut, out: classifierData, size: 28, seed: deriveSeed(seed, 'classifier-data') });
    const cReader = new DatasetReader(classifierData);
    const trainSet = readLabelledImages(cReader, 0, classifierImages);
    const heldOutSet = readLabelledImages(cReader, classifierImages, heldOut);
    cReader.close();
    log(`  training the attribute classifier on ${classifierImages} real synthetic faces, ${args.epochs} epochs ...`);
    const classifier = await AttributeClassifier.train(trainSet, { epochs: Number(args.epochs), seed });
    const accuracy = await classifier.accuracy(heldOutSet);
    log(
      `    ${classifier.trained.seconds.toFixed(1)} s on ${classifier.trained.backend}; held-out accuracy (${heldOut} faces) ${accuracy.map((a) => `${a.name} ${pct(a.accuracy)}`).join(', ')}`,
    );

    const conditional = await trainAndScore(
      demoSpec(DEMO_RECIPE.width, DEMO_RECIPE, { attributes: attributes.names, frequencies: attributes.frequencies }),
      data,
      join(dir, 'conditional'),
      r1,
      kernel,
      {
        model,
        classifier,
      },
    );
    const unconditional = await trainAndScore(demoSpec(DEMO_RECIPE.width), data, join(dir, 'unconditional'), r1, kernel, {});
    classifier.dispose();
    const { baseline } = await realHalvesScores(r1, r2, [], { run: { kernel } });

    const agreement = conditional.agreement!;
    log('');
    log(
      `attribute agreement of the conditional ${DEMO_RECIPE.name} after ${minutes} min (${conditional.trained.steps} steps), ${n} faces per side, EMA generator:`,
    );
    printTable(accuracy, agreement);
    log('');
    const swdLine = (label: string, r: ModelResult): string =>
      `  ${label.padEnd(14)} ${String(r.trained.steps).padStart(6)} steps   SWD ${r.swd.mean.toFixed(1).padStart(6)} [+-${r.swd.spread.toFixed(1)}] (${(r.swd.mean / baseline.swd.mean).toFixed(2)}x baseline)   colour ${r.swd.colour.toFixed(2)}`;
    log(`SWD x1e3 against ${swdN} real faces, ${latentSets} latent sets (real-halves baseline ${baseline.swd.mean.toFixed(1)}; ${kernel.description}):`);
    log(swdLine('conditional', conditional));
    log(swdLine('unconditional', unconditional));
    const agreementMet = agreement.mean >= 0.9;
    const swdMet = conditional.swd.mean <= unconditional.swd.mean;
    log('');
    log(
      `targets: average agreement ${pct(agreement.mean)} ${agreementMet ? '>=' : '<'} 90%: ${agreementMet ? 'met' : 'MISSED'}; conditional SWD ${conditional.swd.mean.toFixed(1)} vs unconditional ${unconditional.swd.mean.toFixed(1)}: ${swdMet ? 'no worse, met' : 'WORSE, missed'}`,
    );

    const report = {
      command,
      date,
      machine: { ...startMachine, loadAtEnd: machine().load },
      recipe: { ...DEMO_RECIPE, preset: conditional.spec.preset, conditioning: 'labels concatenated to z; projection discriminator' },
      minutes,
      classifier: { ...classifier.trained, heldOut, accuracy },
      agreement: { n, weights: 'ema', ...agreement },
      swd: {
        n: swdN,
        latentSets,
        kernel: kernel.description,
        baseline: baseline.swd.mean,
        conditional: { ...conditional.swd, ...conditional.trained },
        unconditional: { ...unconditional.swd, ...unconditional.trained },
      },
      targets: { agreement: agreementMet, swd: swdMet },
    };
    writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${args.json}`);
  } finally {
    await kernel.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
