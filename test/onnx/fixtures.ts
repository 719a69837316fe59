import { join } from 'node:path';
import { initialWeights } from '../../src/model/init.js';
import { parameterList } from '../../src/model/shapes.js';
import type { ArchitectureSpec } from '../../src/model/spec.js';
import type { TensorMap } from '../../src/model/tensors.js';
import { newRunConfig, saveCheckpoint, writeRunConfig } from '../../src/train/index.js';
import { Rng } from '../../src/util/rng.js';

/**
 * Initial weights with batch-norm statistics and affine parameters set to non-trivial random
 * values, so an exporter that ignored (or mis-ordered) any of them would give different images.
 */
export function weightsWithBatchNorm(spec: ArchitectureSpec, seed: number): TensorMap {
  // Glorot-scaled kernels for every preset: with dcgan64's N(0, 0.02) at a tiny width the signal
  // would vanish behind the random batch-norm shifts and ReLUs, leaving constant images.
  const weights = initialWeights({ ...spec, training: { ...spec.training, init: { kind: 'glorotUniform' } } }, seed);
  for (const p of parameterList(spec, 'generator')) {
    const t = weights.get(p.name)!;
    const rng = new Rng(seed, 'test-bn', p.name);
    if (p.role === 'runningMean' || p.role === 'beta') rng.fillUniform(t.data, -0.5, 0.5);
    else if (p.role === 'runningVar') rng.fillUniform(t.data, 0.2, 3);
    else if (p.role === 'gamma') rng.fillUniform(t.data, 0.5, 1.5);
    else if (p.role === 'bias') rng.fillUniform(t.data, -0.1, 0.1);
  }
  return weights;
}

/** A run folder like `celeba-gan train` makes: run.json + checkpoints at the given steps. */
export function makeRun(runDir: string, spec: ArchitectureSpec, seed: number, steps: readonly number[] = [10]): TensorMap[] {
  writeRunConfig(
    runDir,
    newRunConfig({
      spec,
      seed,
      batchSize: spec.training.batchSize,
      data: { path: join('data', 'fixture.cgds'), checksum: '0'.repeat(64), count: 100, height: spec.image.height, width: spec.image.width },
      engine: 'tfjs',
      created: new Date(0).toISOString(),
      sampleSeed: seed,
      sampleCount: 16,
    }),
  );
  return steps.map((step, i) => {
    const weights = weightsWithBatchNorm(spec, seed + i);
    saveCheckpoint(runDir, {
      spec,
      step,
      stepsPerEpoch: 100,
      batchSize: spec.training.batchSize,
      seed,
      dataChecksum: '0'.repeat(64),
      engine: 'tfjs',
      weights,
      optimizer: { tensors: new Map(), steps: { generator: step, discriminator: step } },
    });
    return weights;
  });
}
