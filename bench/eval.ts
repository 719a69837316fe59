/**
 * Evaluation speed: seconds per 1,000 images for each feature extractor and the face detector,
 * on each tfjs backend available here, plus the cost of the metrics themselves.
 *
 *   (a) faceres (224x224, 1024-d) and the tiny face detector (128x128) on the fast backend
 *       (`auto`: tensorflow when tfjs-node is loaded, else wasm) and on the pure-JS cpu backend
 *   (b) Inception from a user-supplied ONNX file (--inception), on onnxruntime cpu
 *   (c) KID (100 subsets of 1000) and FID on n x 1024 random features
 *   (e) SWD and the colour check as `eval` computes them (generated and real halves against R1)
 *       at --swd-n (300) 28 px faces: projections on the JS loop (the path before onnxruntime)
 *       and on onnxruntime side by side, with the ratio and the largest difference per level.
 *       --swd-only runs just this part.
 *
 * Each extractor is timed on a few images after one warm-up batch and the time is scaled to
 * 1,000 images (printed as "extrapolated from N"): the per-image cost does not depend on n.
 * Inputs are synthetic 28x28 faces (the extractors resize to their own input, so the input
 * size barely matters).
 *
 *   (d) with --curve: a short training run on synthetic faces with the --eval-every hook; prints
 *       the SWD and colour-distance curve beside the real-halves baseline (it should fall as
 *       training goes)
 *
 *   npm run bench:eval [-- --images 64 --cpu-images 4 --inception pt_inception.onnx --metrics-n 2000 --quick]
 *   npm run bench:eval -- --swd-only [--swd-n 300 --swd-size 28 --swd-repeats 3]
 *   npm run bench:eval -- --curve [--engine auto --width 0.125 --steps 400 --eval-every 50 --eval-n 200]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildSpec } from '../src/config/presets.js';
import { prepareSynthetic, renderSyntheticFace } from '../src/data/synthetic.js';
import { createEngine, type EngineChoice } from '../src/engines/create-engine.js';
import { loadTinyFaceDetector } from '../src/eval/face-detector.js';
import { loadFaceres } from '../src/eval/faceres.js';
import { loadInception } from '../src/eval/inception.js';
import { featureSet, fid, kid } from '../src/eval/metrics.js';
import { openSwdKernel, type SwdKernelName } from '../src/eval/swd-kernel.js';
import type { ImageSet } from '../src/eval/swd.js';
import { realHalvesScores, type SetScore } from '../src/eval/yardstick.js';
import { loadEvalRuntime, type EvalBackendName } from '../src/eval/tfjs-runtime.js';
import { createTrainingEvalHook } from '../src/eval/training-eval.js';
import { train } from '../src/train/loop.js';
import { Rng } from '../src/util/rng.js';

const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: '64' },
    'cpu-images': { type: 'string', default: '4' },
    inception: { type: 'string' },
    'metrics-n': { type: 'string', default: '2000' },
    quick: { type: 'boolean', default: false },
    curve: { type: 'boolean', default: false },
    engine: { type: 'string', default: 'auto' },
    width: { type: 'string', default: '0.125' },
    steps: { type: 'string', default: '400' },
    'batch-size': { type: 'string', default: '32' },
    'eval-every': { type: 'string', default: '50' },
    'eval-n': { type: 'string', default: '200' },
    'swd-only': { type: 'boolean', default: false },
    'swd-n': { type: 'string', default: '300' },
    'swd-size': { type: 'string', default: '28' },
    'swd-repeats': { type: 'string', default: '3' },
  },
});
const quick = args.quick;
const fastImages = quick ? 16 : Number(args.images);
const cpuImages = quick ? 2 : Number(args['cpu-images']);
const metricsN = quick ? 500 : Number(args['metrics-n']);
const SIZE = 28;

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function faces(n: number): Uint8Array {
  const out = new Uint8Array(n * SIZE * SIZE * 3);
  for (let i = 0; i < n; i++) renderSyntheticFace(2018, i, SIZE, out, i * SIZE * SIZE * 3);
  return out;
}

/** Seconds per 1,000 images of `run` on n images, after one warm-up call on a small batch. */
async function perThousand(
  n: number,
  warm: (imgs: Uint8Array, k: number) => Promise<unknown>,
  run: (imgs: Uint8Array, k: number) => Promise<unknown>,
): Promise<number> {
  await warm(faces(Math.min(n, 2)), Math.min(n, 2));
  const imgs = faces(n);
  const t0 = performance.now();
  await run(imgs, n);
  return ((performance.now() - t0) / 1000 / n) * 1000;
}

function line(what: string, runtime: string, seconds: number, n: number): void {
  log(`  ${what.padEnd(26)} ${runtime.padEnd(30)} ${seconds.toFixed(1).padStart(8)} s / 1,000 images   (extrapolated from ${n})`);
}

async function extractors(backend: EvalBackendName, n: number): Promise<void> {
  const fr = await loadFaceres({ backend });
  try {
    const s = await perThousand(
      n,
      (i, k) => fr.extract(i, k, SIZE, SIZE),
      (i, k) => fr.extract(i, k, SIZE, SIZE),
    );
    line('faceres 1024-d @224', fr.info.runtime, s, n);
  } finally {
    await fr.dispose();
  }
  const det = await loadTinyFaceDetector({ backend });
  try {
    const s = await perThousand(
      n,
      (i, k) => det.scores(i, k, SIZE, SIZE),
      (i, k) => det.scores(i, k, SIZE, SIZE),
    );
    line('tiny face detector @128', det.info.runtime, s, n);
  } finally {
    det.dispose();
  }
}

function header(): void {
  log(
    `celeba-gan bench:eval  ${new Date().toISOString()}  ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, node ${process.version}, OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? '(unset)'}`,
  );
}

function syntheticSet(seed: number, n: number, size: number): ImageSet {
  const bytes = size * size * 3;
  const data = new Uint8Array(n * bytes);
  for (let i = 0; i < n; i++) renderSyntheticFace(seed, i, size, data, i * bytes);
  return { data, n, height: size, width: size };
}

/**
 * (e) What `eval` spends on SWD + colour: the generated set and the real halves against R1, on
 * each projection kernel; the fastest of --swd-repeats runs (after one warm-up), so a busy
 * machine's stalls do not count.
 */
async function swdSpeed(): Promise<void> {
  const n = Number(args['swd-n']);
  const size = Number(args['swd-size']);
  const repeats = Number(args['swd-repeats']);
  const r1 = syntheticSet(2018, n, size);
  const r2 = syntheticSet(2019, n, size);
  const generated = syntheticSet(77, n, size);
  log(`(e) SWD + colour as \`eval\` computes them: n = ${n} per set, ${size} px (generated and real halves against R1), best of ${repeats}:`);
  const results: Partial<Record<SwdKernelName, { seconds: number; scores: { baseline: SetScore; generated: SetScore[] }; description: string }>> = {};
  for (const name of ['js', 'onnxruntime'] as const) {
    const kernel = await openSwdKernel(name);
    try {
      let best = Infinity;
      let scores = await realHalvesScores(r1, r2, [generated], { run: { kernel } });
      for (let k = 0; k < repeats; k++) {
        const t0 = performance.now();
        scores = await realHalvesScores(r1, r2, [generated], { run: { kernel } });
        best = Math.min(best, (performance.now() - t0) / 1000);
      }
      results[name] = { seconds: best, scores, description: kernel.description };
      log(`  ${name.padEnd(12)} ${best.toFixed(2).padStart(7)} s   ${kernel.description}`);
    } finally {
      await kernel.dispose();
    }
  }
  const js = results.js!;
  const ort = results.onnxruntime!;
  log(`  onnxruntime is ${(js.seconds / ort.seconds).toFixed(1)}x faster than the JS loop`);
  const pairs: [string, SetScore, SetScore][] = [
    ['generated', js.scores.generated[0]!, ort.scores.generated[0]!],
    ['real halves', js.scores.baseline, ort.scores.baseline],
  ];
  for (const [what, a, b] of pairs) {
    const levels = a.swd.levels.map(
      (l, i) => `${l.value.toFixed(4)} / ${b.swd.levels[i]!.value.toFixed(4)} (${(Math.abs(l.value - b.swd.levels[i]!.value) / l.value).toExponential(1)})`,
    );
    log(`  ${what.padEnd(12)} SWD x1e3 per level, JS / onnxruntime (relative difference): ${levels.join(', ')}`);
  }
}

async function main(): Promise<void> {
  header();
  const fast = await loadEvalRuntime('auto');
  if (fast.notes.length) log(`  fast backend ${fast.backend}; not used: ${fast.notes.join('; ')}`);
  log('(a) tfjs extractors:');
  await extractors(fast.backend, fastImages);
  if (fast.backend !== 'cpu') await extractors('cpu', cpuImages);

  log('(b) Inception (onnxruntime):');
  if (args.inception) {
    const inc = await loadInception(args.inception);
    try {
      const n = Math.max(2, Math.floor(fastImages / 2));
      const s = await perThousand(
        n,
        (i, k) => inc.extract(i, k, SIZE, SIZE),
        (i, k) => inc.extract(i, k, SIZE, SIZE),
      );
      line(`inception ${inc.info.dim}-d @${inc.info.inputSize}`, inc.info.runtime, s, n);
    } finally {
      await inc.dispose();
    }
  } else {
    log('  skipped: pass --inception <file.onnx> to time the standard FID features');
  }

  log(`(c) metrics on ${metricsN} x 1024 features per set:`);
  const rng = new Rng(7, 'bench-features');
  const a = featureSet(rng.fillNormal(new Float32Array(metricsN * 1024)), metricsN, 1024);
  const b = featureSet(rng.fillNormal(new Float32Array(metricsN * 1024), 0.1), metricsN, 1024);
  let t0 = performance.now();
  kid(a, b);
  log(`  KID (100 subsets of ${Math.min(1000, metricsN)})  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  t0 = performance.now();
  fid(a, b);
  log(`  FID (${metricsN < 1024 ? 'sample space' : '1024 x 1024 covariances'})  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await swdSpeed();
}

/** (d) A short run with the eval hook: the SWD curve of training. */
async function curve(): Promise<void> {
  const spec = buildSpec('seed28', Number(args.width));
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-eval-curve-'));
  try {
    const data = join(dir, 'synthetic-28.cgds');
    await prepareSynthetic({ count: 4000, out: data, size: 28, seed: 2018 });
    const engine = await createEngine(spec, { engine: args.engine as EngineChoice });
    const every = Number(args['eval-every']);
    const n = Number(args['eval-n']);
    log(
      `(d) SWD curve: seed28 width ${spec.width}, ${engine.info.engine} on ${engine.info.backend}, batch ${args['batch-size']}, ${args.steps} steps, synthetic faces; n ${n}, every ${every} steps`,
    );
    const hook = createTrainingEvalHook({ every, n, includeFirstStep: true });
    const t0 = performance.now();
    try {
      log('  step   SWD x1e3 (real halves)   colour x1e3 (real halves)   eval s   elapsed s');
      const row = (step: number, v: Record<string, number | string>): void =>
        log(
          `  ${String(step).padStart(5)}  ${(v.swd as number).toFixed(1).padStart(8)} (${(v.swdBaseline as number).toFixed(1)})  ${(v.colour as number).toFixed(2).padStart(12)} (${(v.colourBaseline as number).toFixed(2)})  ${(v.seconds as number).toFixed(1).padStart(12)} ${((performance.now() - t0) / 1000).toFixed(0).padStart(11)}`,
        );
      await train(
        {
          spec,
          dataPath: data,
          outDir: join(dir, 'run'),
          seed: 2018,
          batchSize: Number(args['batch-size']),
          steps: Number(args.steps),
          sampleEvery: 0,
          checkpointEvery: 0,
          keep: 1,
          logEvery: 50,
          plotEvery: 60,
          verifyData: false,
        },
        engine,
        { onEval: (_name, step, values) => row(step, values) },
        [hook],
      );
    } finally {
      await hook.dispose();
      engine.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.curve) await curve();
else if (args['swd-only']) {
  header();
  await swdSpeed();
} else await main();
