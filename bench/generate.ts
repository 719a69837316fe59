/**
 * Generation speed, in one run on one model: the seed28 generator at width 1 (as published),
 * initial weights (speed does not depend on the values), exported by the project's exporter.
 *
 *   (a) model only: onnxruntime-node session.run images/s at several batch sizes
 *   (b) end to end: `generate` (latents + model + uint8 + PNG encode + write + manifest) images/s
 *   (c) the training engine's own inference (tfjs `generate()`) on the same latents
 *
 * Ratios printed: end-to-end / model-only at the same batch size (target >= 0.8: the pipeline
 * hides encoding behind the model) and onnxruntime / tfjs (target >= 3x).
 *
 *   npm run bench:generate [-- --provider cpu --images 1000 --batch-size 64 --tfjs-images 4 --depth 2 --encode 32 --quick]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildSpec } from '../src/config/presets.js';
import { createTfjsEngine } from '../src/engines/tfjs/tfjs-engine.js';
import { defaultPipelineDepth, generateImages } from '../src/inference/generate.js';
import { latentsFor, openGenerator } from '../src/inference/session.js';
import { modelOnly } from './model-only.js';
import { parseProvider } from '../src/bindings/onnxruntime.js';
import { initialWeights } from '../src/model/init.js';
import { buildGeneratorOnnx } from '../src/onnx/export.js';

const { values: args } = parseArgs({
  options: {
    provider: { type: 'string', default: 'auto' },
    images: { type: 'string', default: '1000' },
    'batch-size': { type: 'string', default: '64' },
    'tfjs-images': { type: 'string', default: '4' },
    seconds: { type: 'string', default: '3' },
    /** Pipeline knobs, to try on a given machine (defaults: generate's). */
    depth: { type: 'string' },
    encode: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const provider = parseProvider(args.provider);
const e2eImages = quick ? 256 : Number(args.images);
const e2eBatch = Number(args['batch-size']);
const tfjsImages = quick ? 2 : Number(args['tfjs-images']);
const secondsPerPoint = quick ? 0.5 : Number(args.seconds);
const BATCH_SIZES = quick ? [1, 16, 64] : [1, 16, 64, 256];
const SEED = 2018;

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** CPU milliseconds (this process, all threads) since `start`. */
function cpuMs(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1000;
}

async function main(): Promise<void> {
  const spec = buildSpec('seed28', 1);
  const weights = initialWeights(spec, SEED);
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-generate-'));
  try {
    const modelPath = join(dir, 'seed28-w1.onnx');
    const t0 = performance.now();
    writeFileSync(modelPath, buildGeneratorOnnx(spec, weights, {}));
    log(`celeba-gan bench:generate: seed28 width 1, ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, node ${process.version}`);
    log(`  exported in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    const session = await openGenerator(modelPath, { provider });
    log(
      `  onnxruntime provider ${session.providerUsed}${session.providerNotes.length ? ` (not used: ${session.providerNotes.map((n) => n.split(':')[0]).join(', ')})` : ''}`,
    );

    log('(a) model only (session.run):');
    const rates = new Map<number, number>();
    const cpuPerImage = new Map<number, number>();
    for (const b of BATCH_SIZES) {
      const m = await modelOnly(session, b, secondsPerPoint);
      rates.set(b, m.rate);
      cpuPerImage.set(b, m.cpuPerImage);
      log(`  batch ${String(b).padStart(3)}: ${m.rate.toFixed(1).padStart(8)} images/s  (CPU ${m.cpuPerImage.toFixed(2)} ms/image)`);
    }
    if (!rates.has(e2eBatch)) {
      const m = await modelOnly(session, e2eBatch, secondsPerPoint);
      rates.set(e2eBatch, m.rate);
      cpuPerImage.set(e2eBatch, m.cpuPerImage);
    }

    // The default depth for this provider first (the figure `generate` gives), then the other
    // one for comparison: overlapping encoding with the model (2) or not (1).
    const defaultDepth = args.depth === undefined ? defaultPipelineDepth(session.providerUsed) : Number(args.depth);
    const depths = args.depth === undefined ? [defaultDepth, 3 - defaultDepth] : [defaultDepth];
    log(
      `(b) end to end: generate ${e2eImages} PNGs, batch ${e2eBatch}, pipeline depth ${depths.join(' then ')} (default here: ${defaultPipelineDepth(session.providerUsed)}):`,
    );
    const e2eRuns: { depth: number; rate: number; cpu: number }[] = [];
    for (const depth of depths) {
      const outDir = join(dir, `faces-depth${depth}`);
      mkdirSync(outDir);
      const cpu0 = process.cpuUsage();
      const e2e = await generateImages(session, {
        outDir,
        n: e2eImages,
        seed: SEED,
        batchSize: e2eBatch,
        pipelineDepth: depth,
        ...(args.encode === undefined ? {} : { encodeConcurrency: Number(args.encode) }),
      });
      const cpu = cpuMs(cpu0) / e2eImages;
      e2eRuns.push({ depth, rate: e2e.imagesPerSecond, cpu });
      log(
        `  depth ${depth}: ${e2e.imagesPerSecond.toFixed(1)} images/s (${e2e.seconds.toFixed(2)} s; model ${((100 * e2e.modelSeconds) / e2e.seconds).toFixed(0)}% of it; ` +
          `at most ${e2e.maxInFlight} batch${e2e.maxInFlight === 1 ? '' : 'es'} in flight)  (CPU ${cpu.toFixed(2)} ms/image)`,
      );
    }
    const [e2e] = e2eRuns;
    if (e2e === undefined) throw new Error('no end-to-end run was measured');

    log(`(c) tfjs engine generate() on the same latents (${tfjsImages} images):`);
    const engine = await createTfjsEngine(spec, {});
    let tfjsRate = Number.NaN;
    try {
      await engine.setWeights(weights);
      const z = latentsFor(SEED, 0, tfjsImages, spec.zDim, spec.latent);
      await engine.generate(latentsFor(SEED, 0, 1, spec.zDim, spec.latent), 1); // warm-up (kernels, weight upload)
      const tt = performance.now();
      const viaTfjs = await engine.generate(z, tfjsImages);
      tfjsRate = tfjsImages / ((performance.now() - tt) / 1000);
      const viaOrt = await session.run(z, tfjsImages);
      if (viaOrt.length !== viaTfjs.length) throw new Error(`onnxruntime gave ${viaOrt.length} values and tfjs ${viaTfjs.length} for the same latents`);
      let maxDiff = 0;
      // `]!`: i < viaOrt.length = viaTfjs.length (checked above).
      for (let i = 0; i < viaOrt.length; i++) maxDiff = Math.max(maxDiff, Math.abs(viaOrt[i]! - viaTfjs[i]!));
      log(`  ${engine.info.backend}: ${tfjsRate.toFixed(2)} images/s (batch ${tfjsImages}); max |onnxruntime - tfjs| = ${maxDiff.toExponential(2)}`);
    } finally {
      engine.dispose();
    }
    await session.close();

    const modelAtBatch = rates.get(e2eBatch)!;
    const best = Math.max(...rates.values());
    const e2eRatio = e2e.rate / modelAtBatch;
    const ortBatch = rates.get(tfjsImages) ?? rates.get(16)!;
    log('ratios:');
    log(`  end-to-end / model-only (batch ${e2eBatch}, depth ${e2e.depth}): ${e2eRatio.toFixed(2)} (target >= 0.8) ${e2eRatio >= 0.8 ? 'ok' : 'BELOW TARGET'}`);
    for (const other of e2eRuns.slice(1)) log(`  end-to-end / model-only (batch ${e2eBatch}, depth ${other.depth}): ${(other.rate / modelAtBatch).toFixed(2)}`);
    // When the CPU is the bottleneck (cpu provider) throughput follows CPU time per image, which
    // other processes on a shared machine disturb far less than wall time.
    log(`  CPU per image, model-only / end-to-end (batch ${e2eBatch}, depth ${e2e.depth}): ${(cpuPerImage.get(e2eBatch)! / e2e.cpu).toFixed(2)}`);
    log(
      `  onnxruntime best / tfjs: ${(best / tfjsRate).toFixed(1)}x; at batch ${rates.has(tfjsImages) ? tfjsImages : 16}: ${(ortBatch / tfjsRate).toFixed(1)}x (target >= 3x) ${ortBatch / tfjsRate >= 3 ? 'ok' : 'BELOW TARGET'}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
