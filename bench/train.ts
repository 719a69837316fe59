import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { buildSpec } from '../src/config/presets.js';
import { createTfjsEngine } from '../src/engines/tfjs/tfjs-engine.js';
import { initialWeights } from '../src/model/init.js';
import { Rng } from '../src/util/rng.js';

/**
 * Training speed (images/s) per engine, side by side, for seed28 at width 1 and at a tiny width.
 *
 *   npm run bench:train [-- --engine tfjs|torch|all] [--steps 5] [--warmup 1] [--batch-size 64]
 *                          [--preset seed28] [--widths 1,0.0625] [--backend auto|tfjs-node|cpu] [--threads 2]
 *                          [--device cpu|cuda|cuda:N] [--amp] [--json results.json]
 *
 * `--device cuda` runs the torch engine and PyTorch eager on the same GPU (`--amp`: both with
 * bfloat16 autocast); tfjs is left out there, since GPU and CPU figures are not compared.
 *
 * Contenders are a list: tfjs here; the native torch engine and a PyTorch-eager reference come
 * from bench/train-native.ts when it loads. Steps use an in-memory random batch (the data layer
 * is not what is measured). The pure-JS tfjs CPU backend needs minutes per step at width 1, so
 * there it runs ONE untimed-warm-up-free step and says so.
 */

export interface BenchCase {
  preset: string;
  width: number;
  batch: number;
  steps: number;
  warmup: number;
  threads: number;
  backend?: string;
  /** torch contenders: `cpu` (default), `cuda`, `cuda:N`. */
  device?: string;
  /** torch contenders on CUDA: bfloat16 autocast. */
  amp?: boolean;
}

export interface BenchResult {
  name: string;
  backend: string;
  imagesPerSecond: number | null;
  steps: number;
  note?: string;
}

export interface Contender {
  name: string;
  engine: 'tfjs' | 'torch';
  run(c: BenchCase): Promise<BenchResult>;
}

function randomBatch(n: number, bytesPerImage: number): Uint8Array {
  const rng = new Rng(1, 'bench-train');
  const out = new Uint8Array(n * bytesPerImage);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  return out;
}

export const tfjsContender: Contender = {
  name: 'tfjs engine',
  engine: 'tfjs',
  async run(c) {
    const spec = buildSpec(c.preset, c.width);
    let engine;
    try {
      engine = await createTfjsEngine(spec, { backend: c.backend ?? 'auto' });
    } catch (err) {
      return { name: this.name, backend: c.backend ?? 'auto', imagesPerSecond: null, steps: 0, note: `skipped: ${(err as Error).message.split('\n')[0]}` };
    }
    try {
      await engine.setWeights(initialWeights(spec, 1));
      const pureJs = engine.info.backend.startsWith('cpu');
      const slow = pureJs && c.width >= 0.5;
      const warmup = slow ? 0 : c.warmup;
      const steps = slow ? 1 : c.steps;
      const { height, width, channels } = spec.image;
      const batch = randomBatch(c.batch, height * width * channels);
      for (let s = 0; s < warmup; s++) await engine.trainStep(batch, c.batch, { seed: 1, step: s });
      const t0 = performance.now();
      for (let s = 0; s < steps; s++) await engine.trainStep(batch, c.batch, { seed: 1, step: warmup + s });
      const seconds = (performance.now() - t0) / 1000;
      return {
        name: this.name,
        backend: engine.info.backend,
        imagesPerSecond: (c.batch * steps) / seconds,
        steps,
        note: slow ? `pure-JS backend: ONE step, no warm-up (${seconds.toFixed(1)} s/step)` : `${(seconds / steps).toFixed(3)} s/step`,
      };
    } finally {
      engine.dispose();
    }
  },
};

/** The torch engine and PyTorch eager, from bench/train-native.ts (E's); absent = none. */
async function nativeContenders(): Promise<{ contenders: Contender[]; why?: string }> {
  type Native = typeof import('./train-native.js');
  let mod: Native;
  try {
    const path = './train-native.js';
    mod = (await import(path)) as Native;
  } catch (err) {
    return { contenders: [], why: (err as Error).message.split('\n')[0] };
  }
  const opts = (c: BenchCase) => ({
    preset: c.preset,
    width: c.width,
    batch: c.batch,
    threads: c.threads,
    warmup: c.warmup,
    steps: c.steps,
    device: c.device,
    amp: c.amp,
  });
  return {
    contenders: [
      {
        name: 'torch engine',
        engine: 'torch',
        async run(c) {
          const r = await mod.benchTorchEngine(opts(c));
          return {
            name: r.name,
            backend: r.imagesPerSecond === null ? '' : (r.note ?? ''),
            imagesPerSecond: r.imagesPerSecond,
            steps: c.steps,
            note: r.imagesPerSecond === null ? r.note : undefined,
          };
        },
      },
      {
        name: 'PyTorch eager',
        engine: 'torch',
        async run(c) {
          const r = mod.benchPytorchEager(opts(c));
          return {
            name: r.name,
            backend: r.imagesPerSecond === null ? '' : (r.note ?? ''),
            imagesPerSecond: r.imagesPerSecond,
            steps: c.steps,
            note: r.imagesPerSecond === null ? r.note : 'reference',
          };
        },
      },
    ],
  };
}

export async function benchTrain(
  engines: 'tfjs' | 'torch' | 'all',
  base: Omit<BenchCase, 'width'>,
  widths: number[],
  log: (line: string) => void = console.log,
): Promise<BenchResult[][]> {
  const contenders: Contender[] = [];
  const gpu = (base.device ?? 'cpu') !== 'cpu';
  if (gpu && engines !== 'torch') log(`--device ${base.device}: the tfjs engine is left out (GPU and CPU figures are not compared)`);
  if (engines !== 'torch' && !gpu) contenders.push(tfjsContender);
  if (engines !== 'tfjs') {
    const native = await nativeContenders();
    if (native.contenders.length === 0) log(`torch contenders unavailable: ${native.why}`);
    contenders.push(...native.contenders);
  }
  const all: BenchResult[][] = [];
  for (const width of widths) {
    const c: BenchCase = { ...base, width };
    const where = gpu ? `torch on ${c.device}${c.amp ? ' with bfloat16 autocast' : ', float32'}` : `${c.threads} threads for torch`;
    log(`\n${c.preset} width ${width}, batch ${c.batch}, ${c.warmup} warm-up + ${c.steps} timed steps (${where})`);
    const results: BenchResult[] = [];
    for (const contender of contenders) {
      // The pure-JS backend needs minutes per step at full width: in a comparison of all engines
      // it is measured at the tiny width only (for scale); `--engine tfjs` still runs it.
      if (engines === 'all' && contender.engine === 'tfjs' && width >= 0.5 && (await tfjsIsPureJs(c))) {
        results.push({
          name: contender.name,
          backend: 'cpu (pure JS)',
          imagesPerSecond: null,
          steps: 0,
          note: 'skipped at this width (minutes per step); run `--engine tfjs` to measure it',
        });
        continue;
      }
      results.push(await contender.run(c));
    }
    // Ratios against the reference: PyTorch eager where it ran, else the first measured contender.
    const reference = results.find((x) => x.name === 'PyTorch eager' && x.imagesPerSecond !== null) ?? results.find((x) => x.imagesPerSecond !== null);
    for (const r of results) {
      const ratio =
        r.imagesPerSecond !== null && reference && reference !== r ? `${(r.imagesPerSecond / reference.imagesPerSecond!).toFixed(2)}x ${reference.name}` : '';
      const speed = r.imagesPerSecond === null ? '-'.padStart(10) : r.imagesPerSecond.toFixed(2).padStart(10);
      log(`  ${r.name.padEnd(14)} ${speed} images/s  ${ratio.padEnd(24)} ${r.backend}${r.note ? `; ${r.note}` : ''}`);
    }
    all.push(results);
  }
  return all;
}

async function tfjsIsPureJs(c: BenchCase): Promise<boolean> {
  const { loadTfjs } = await import('../src/bindings/tfjs.js');
  try {
    return (await loadTfjs((c.backend ?? 'auto') as Parameters<typeof loadTfjs>[0])).backend.startsWith('cpu');
  } catch {
    return false; // the contender itself reports why it cannot run
  }
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

export interface BenchTrainArgs {
  engine: 'tfjs' | 'torch' | 'all';
  base: Omit<BenchCase, 'width'>;
  widths: number[];
  json?: string;
}

const FLAGS = ['engine', 'preset', 'batch-size', 'steps', 'warmup', 'threads', 'backend', 'device', 'widths', 'json'];

/** The command line of bench:train; throws naming the bad flag (the script prints it and exits 2). */
export function parseBenchTrainArgs(argv: string[]): BenchTrainArgs {
  for (const [i, a] of argv.entries()) {
    if (!a.startsWith('--')) continue;
    const name = a.slice(2);
    if (name === 'amp') continue;
    if (!FLAGS.includes(name)) throw new Error(`unknown flag ${a}; flags: ${[...FLAGS, 'amp'].map((f) => `--${f}`).join(' ')}`);
    if (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--')) throw new Error(`${a} needs a value`);
  }
  const engine = (arg(argv, 'engine') ?? 'all') as BenchTrainArgs['engine'];
  if (!['tfjs', 'torch', 'all'].includes(engine)) throw new Error(`--engine must be tfjs, torch or all (got ${engine})`);
  const preset = arg(argv, 'preset') ?? 'seed28';
  const device = arg(argv, 'device') ?? 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new Error(`--device must be cpu, cuda or cuda:N (got ${device})`);
  const amp = argv.includes('--amp');
  if (amp && device === 'cpu') throw new Error('--amp needs --device cuda');
  const num = (name: string, fallback: number, min: number): number => {
    const v = Number(arg(argv, name) ?? fallback);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min} (got ${arg(argv, name)})`);
    return v;
  };
  const widths = (arg(argv, 'widths') ?? '1,0.0625').split(',').map(Number);
  if (widths.some((w) => !(w > 0 && w <= 1))) throw new Error(`--widths must be numbers in (0, 1] (got ${arg(argv, 'widths')})`);
  return {
    engine: device === 'cpu' ? engine : 'torch',
    base: {
      preset,
      batch: num('batch-size', buildSpec(preset).training.batchSize, 2),
      steps: num('steps', 5, 1),
      warmup: num('warmup', 1, 0),
      threads: num('threads', Math.min(2, availableParallelism()), 1),
      backend: arg(argv, 'backend'),
      device,
      amp,
    },
    widths,
    json: arg(argv, 'json'),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  let args: BenchTrainArgs;
  try {
    args = parseBenchTrainArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench:train: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const results = await benchTrain(args.engine, args.base, args.widths);
  if (args.json) {
    const rows = results.flatMap((perWidth, i) => perWidth.map((r) => ({ width: args.widths[i], ...r })));
    writeFileSync(args.json, `${JSON.stringify({ date: new Date().toISOString(), case: args.base, results: rows }, null, 2)}\n`);
  }
}
