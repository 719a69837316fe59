import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { buildSpec } from '../src/config/presets.js';
import { initialWeights } from '../src/model/init.js';
import { allParameters } from '../src/model/shapes.js';
import { tensor, type TensorMap } from '../src/model/tensors.js';
import { buildGeneratorOnnx, generatorWeightBytes } from '../src/onnx/export.js';
import { RUN_FORMAT_VERSION, exportRun, saveCheckpoint, writeRunConfig } from '../src/train/index.js';
import { packageVersion } from '../src/version.js';

/**
 * How long `celeba-gan export --onnx` takes on a full-size (width 1) seed28 checkpoint, and how
 * the file size compares with the generator's float32 weights. Usage:
 *   npm run bench:export [-- --preset seed28 --width 1 --repeats 5]
 * The checkpoint is made here (initial weights + zero Adam moments, the real file sizes) in a
 * temporary run folder, which is removed afterwards.
 */

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = process.argv[i + 1];
  if (!value || value.startsWith('--')) throw new Error(`--${name} needs a value, e.g. --${name} ${fallback}`);
  return value;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s[Math.floor(s.length / 2)];
  if (m === undefined) throw new Error('median of no values');
  return m;
}

export async function benchExport(preset: string, width: number, repeats: number): Promise<void> {
  const spec = buildSpec(preset, width);
  const dir = mkdtempSync(join(tmpdir(), 'celeba-gan-bench-export-'));
  try {
    const runDir = join(dir, 'run');
    const weights = initialWeights(spec, 1);
    const moments: TensorMap = new Map();
    for (const p of allParameters(spec).filter((q) => q.trainable)) {
      moments.set(`adam.m.${p.name}`, tensor(p.shape));
      moments.set(`adam.v.${p.name}`, tensor(p.shape));
    }
    writeRunConfig(runDir, {
      format: 'celeba-gan-run',
      formatVersion: RUN_FORMAT_VERSION,
      packageVersion: packageVersion(),
      preset,
      width,
      spec,
      seed: 1,
      batchSize: spec.training.batchSize,
      data: { path: 'data/bench.cgds', checksum: '0'.repeat(64), count: 0, height: spec.image.height, width: spec.image.width },
      engine: 'tfjs',
      created: new Date().toISOString(),
      sampleSeed: 1,
      sampleCount: 16,
    });
    saveCheckpoint(runDir, {
      spec,
      step: 1000,
      stepsPerEpoch: 3165,
      batchSize: spec.training.batchSize,
      seed: 1,
      dataChecksum: '0'.repeat(64),
      engine: 'tfjs',
      weights,
      optimizer: { tensors: moments, steps: { generator: 1000, discriminator: 1000 } },
    });
    const weightBytes = generatorWeightBytes(spec);
    process.stdout.write(
      `export bench: ${preset} width ${width}, generator float32 weights ${(weightBytes / 1e6).toFixed(2)} MB, ${repeats} repeats (median)\n`,
    );
    for (const fold of [false, true]) {
      const build: number[] = [];
      const whole: number[] = [];
      let bytes = 0;
      for (let r = 0; r < repeats; r++) {
        let t = performance.now();
        bytes = buildGeneratorOnnx(spec, weights, { foldBatchNorm: fold }).byteLength;
        build.push((performance.now() - t) / 1000);
        t = performance.now();
        // What the CLI does: load + verify the checkpoint, build, compare, write atomically.
        await exportRun({ runDir, out: join(dir, `model-${fold}-${r}.onnx`), foldBatchNorm: fold });
        whole.push((performance.now() - t) / 1000);
      }
      process.stdout.write(
        `  ${(fold ? 'folded batch norm' : 'running-stats batch norm').padEnd(24)}: export ${median(whole).toFixed(3)} s ` +
          `(buildGeneratorOnnx alone ${median(build).toFixed(3)} s); file ${(bytes / 1e6).toFixed(2)} MB = weights ` +
          `${bytes >= weightBytes ? '+' : '-'}${Math.abs(bytes - weightBytes)} bytes\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchExport(arg('preset', 'seed28'), Number(arg('width', '1')), Number(arg('repeats', '5')));
}
