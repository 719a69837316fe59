/**
 * EMA generator vs raw generator, by SWD, along one demo-length training run.
 *
 *   npm run bench:ema [-- --steps 3000 --at 250,500,1000,2000,3000 --n 300 --latent-sets 3]
 *                     [--engine auto|torch|tfjs --width W --batch-size B --lr L --beta1 B1 --ema 0.999 --threads T]
 *                     [--dropout R --d-width W --up-kernel K]   (experiments, see benchSpec)
 *
 * Trains the demo's recipe (DEMO_RECIPE in src/config/demo.ts; each flag overrides one number) on
 * the demo's synthetic set through the real training loop. At each step of --at it generates n
 * images from the raw and from the EMA generator (the same fixed latents) and measures both
 * against n real images with src/eval's SWD and colour distance; beside them, the baseline: the
 * same metrics between two disjoint halves of the real set at the same n (src/eval/yardstick.ts).
 * Noise: each generator is scored on --latent-sets disjoint sets of n latents; the table gives
 * the mean and, in brackets, the half-range over the sets (the real set is the same for both
 * generators, so its own chance spread moves raw and EMA together).
 * The issue asks that EMA <= raw at every checkpoint; the last line says whether it held.
 * Steps, not seconds, are the yardstick: on a shared machine wall time per step says little, so
 * the CPU time per step (all threads) is printed too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_RECIPE, demoSpec } from '../src/config/demo.js';
import { DatasetReader } from '../src/data/dataset-file.js';
import { prepareSynthetic } from '../src/data/synthetic.js';
import { createEngine, type EngineChoice } from '../src/engines/create-engine.js';
import type { GeneratorWeights, TrainingEngine } from '../src/engines/engine.js';
import { sampleLatents } from '../src/engines/randomness.js';
import { openSwdKernel, realHalves, realHalvesScores, scoreAgainst, type ImageSet, type SwdKernel } from '../src/eval/index.js';
import type { ArchitectureSpec } from '../src/model/spec.js';
import { train, type StepHook } from '../src/train/index.js';
import { floatNchwToUint8Hwc } from '../src/util/image.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string' },
    at: { type: 'string' },
    n: { type: 'string', default: '300' },
    'latent-sets': { type: 'string', default: '3' },
    engine: { type: 'string', default: 'auto' },
    width: { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    beta1: { type: 'string' },
    dropout: { type: 'string' },
    'd-width': { type: 'string' },
    'up-kernel': { type: 'string' },
    ema: { type: 'string' },
    threads: { type: 'string' },
    synthetic: { type: 'string', default: String(DEMO_RECIPE.synthetic) },
    seed: { type: 'string', default: String(DEMO_RECIPE.seed) },
  },
});

const steps = Number(args.steps ?? DEMO_RECIPE.benchSteps);
const at = (args.at ?? [250, 500, 1000, 2000, steps].filter((s, i, a) => s <= steps && a.indexOf(s) === i).join(',')).split(',').map(Number);
const n = Number(args.n);
const latentSets = Number(args['latent-sets']);
const seed = Number(args.seed);
const recipe = {
  width: Number(args.width ?? DEMO_RECIPE.width),
  batchSize: Number(args['batch-size'] ?? DEMO_RECIPE.batchSize),
  learningRate: Number(args.lr ?? DEMO_RECIPE.learningRate),
  beta1: Number(args.beta1 ?? DEMO_RECIPE.beta1),
  ema: Number(args.ema ?? DEMO_RECIPE.ema),
  dropout: args.dropout === undefined ? undefined : Number(args.dropout),
  discriminatorWidth: args['d-width'] === undefined ? undefined : Number(args['d-width']),
  upKernel: args['up-kernel'] === undefined ? undefined : Number(args['up-kernel']),
};

/**
 * The demo's spec, with the experiments docs/research/demo-recipe.md measured against it (none kept
 * in the recipe): generator dropout rate (0 removes the layers), the discriminator at another
 * width, the kernel of the generator's stride-2 transposed convolutions.
 */
function benchSpec(): ArchitectureSpec {
  const base = demoSpec(recipe.width, recipe);
  const { dropout, discriminatorWidth, upKernel } = recipe;
  let generator = base.generator;
  if (dropout !== undefined)
    generator = generator.filter((l) => l.kind !== 'dropout' || dropout > 0).map((l) => (l.kind === 'dropout' ? { ...l, rate: dropout } : l));
  if (upKernel !== undefined) generator = generator.map((l) => (l.kind === 'convTranspose2d' && l.stride === 2 ? { ...l, kernel: upKernel } : l));
  const discriminator = discriminatorWidth === undefined ? base.discriminator : demoSpec(discriminatorWidth, recipe).discriminator;
  return { ...base, generator, discriminator };
}

function dropoutRate(spec: ArchitectureSpec): number {
  const layer = spec.generator.find((l) => l.kind === 'dropout');
  return layer?.kind === 'dropout' ? layer.rate : 0;
}

function upKernel(spec: ArchitectureSpec): number | undefined {
  const layer = spec.generator.find((l) => l.kind === 'convTranspose2d' && l.stride === 2);
  return layer?.kind === 'convTranspose2d' ? layer.kernel : undefined;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

interface Score {
  swd: number;
  /** Half the range of SWD over the latent sets. */
  spread: number;
  colour: number;
  /** SWD per pyramid level (finest first), mean over the latent sets. */
  levels: number[];
}

/** Mean SWD and colour distance over the latent sets (each n latents) against `real`. */
async function score(engine: TrainingEngine, zs: Float32Array[], weights: GeneratorWeights, real: ImageSet, kernel: SwdKernel): Promise<Score> {
  const { channels: c, height: h, width: w } = engine.spec.image;
  const swds: number[] = [];
  let colour = 0;
  let levels: number[] = [];
  for (const z of zs) {
    const set: ImageSet = { data: floatNchwToUint8Hwc(await engine.generate(z, n, weights), n, c, h, w), n, height: h, width: w };
    const scored = await scoreAgainst(real, set, { run: { kernel } });
    swds.push(scored.swd.mean);
    levels = scored.swd.levels.map((l, i) => (levels[i] ?? 0) + l.value / zs.length);
    colour += scored.colour.value / zs.length;
  }
  return { swd: swds.reduce((a, b) => a + b, 0) / swds.length, spread: (Math.max(...swds) - Math.min(...swds)) / 2, colour, levels };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-ema-'));
  try {
    const data = join(dir, 'synthetic-28.cgds');
    await prepareSynthetic({ count: Number(args.synthetic), out: data, size: 28, seed });
    const reader = new DatasetReader(data);
    const all: ImageSet = { data: reader.read(Uint32Array.from({ length: 2 * n }, (_, i) => i)), n: 2 * n, height: 28, width: 28 };
    reader.close();
    const [r1, r2] = realHalves(all, n);
    const kernel = await openSwdKernel('auto');
    const { baseline } = await realHalvesScores(r1, r2, [], { run: { kernel } });
    const baseSwd = baseline.swd;
    const base = { swd: baseSwd.mean, colour: baseline.colour.value };

    const spec = benchSpec();
    const engine = await createEngine(spec, { engine: args.engine as EngineChoice, ...(args.threads === undefined ? {} : { threads: Number(args.threads) }) });
    log(`bench:ema: the ${DEMO_RECIPE.name} recipe on ${engine.info.engine} (${engine.info.backend})`);
    log(
      `  seed28 width ${recipe.width}, batch ${recipe.batchSize}, Adam lr ${recipe.learningRate} beta1 ${recipe.beta1}, EMA ${recipe.ema}, G dropout ${dropoutRate(spec)}, D width ${recipe.discriminatorWidth ?? recipe.width}, G stride-2 kernel ${upKernel(spec)}; ${steps} steps; n = ${n}, ${latentSets} latent sets; seed ${seed}`,
    );
    log(`  SWD projections on ${kernel.description}`);
    log(
      `  baseline, two disjoint halves of the real set (n = ${n}): SWD x1e3 ${base.swd.toFixed(1)} (per level ${baseSwd.levels.map((l) => l.value.toFixed(0)).join(' / ')}), colour ${base.colour.toFixed(2)}`,
    );
    log('');
    log(
      '  step | raw SWD [+-] (/ base)  | EMA SWD [+-] (/ base)  | EMA <= raw | raw colour | EMA colour | CPU s/step | wall s/step | raw / EMA SWD per level (finest first)',
    );
    const zs = Array.from({ length: latentSets }, (_, k) => sampleLatents(spec, seed + k, n));
    const rows: { step: number; raw: Score; ema: Score }[] = [];
    let trainWall = 0;
    let trainCpu = 0;
    let mark = { wall: performance.now(), cpu: process.cpuUsage() };
    const hook: StepHook = {
      name: 'bench-ema',
      async onStepEnd({ step, engine: e }) {
        if (!at.includes(step)) return;
        const cpu = process.cpuUsage(mark.cpu);
        trainWall += (performance.now() - mark.wall) / 1000;
        trainCpu += (cpu.user + cpu.system) / 1e6;
        const raw = await score(e, zs, 'raw', r1, kernel);
        const ema = await score(e, zs, 'ema', r1, kernel);
        rows.push({ step, raw, ema });
        const ratio = (s: Score): string => `${s.swd.toFixed(1).padStart(6)} [${s.spread.toFixed(1)}] (${(s.swd / base.swd).toFixed(2)}x)`;
        log(
          `  ${String(step).padStart(4)} | ${ratio(raw).padEnd(22)} | ${ratio(ema).padEnd(22)} | ${(ema.swd <= raw.swd ? 'yes' : 'NO').padEnd(10)} | ` +
            `${raw.colour.toFixed(2).padStart(10)} | ${ema.colour.toFixed(2).padStart(10)} | ${(trainCpu / step).toFixed(3).padStart(10)} | ${(trainWall / step).toFixed(3).padStart(11)} | ${raw.levels.map((v) => v.toFixed(0)).join(' / ')} ; ${ema.levels.map((v) => v.toFixed(0)).join(' / ')}`,
        );
        mark = { wall: performance.now(), cpu: process.cpuUsage() };
      },
    };
    try {
      await train(
        {
          spec,
          dataPath: data,
          outDir: join(dir, 'run'),
          seed,
          batchSize: recipe.batchSize,
          steps,
          ema: recipe.ema,
          sampleEvery: 0,
          checkpointEvery: 0,
          verifyData: false,
        },
        engine,
        {},
        [hook],
      );
    } finally {
      engine.dispose();
      await kernel.dispose();
    }
    const held = rows.filter((r) => r.ema.swd <= r.raw.swd).length;
    log('');
    log(
      `EMA SWD <= raw SWD at ${held} of ${rows.length} checkpoints${held === rows.length ? '' : ' (NOT at every one)'}; training took ${trainWall.toFixed(0)} s wall, ${trainCpu.toFixed(0)} s CPU here`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
