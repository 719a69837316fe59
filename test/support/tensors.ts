import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { initialWeights } from '../../src/model/init.js';
import { allParameters } from '../../src/model/shapes.js';
import type { ArchitectureSpec } from '../../src/model/spec.js';
import type { TensorMap } from '../../src/model/tensors.js';
import { Rng } from '../../src/util/rng.js';

/** Shared numeric helpers of the engine, EMA and ONNX tests. */

/** n random uint8 HWC images of the spec's size, from `stream` of `seed` (each test its own stream). */
export function fakeBatch(spec: ArchitectureSpec, n: number, seed: number, stream: string): Uint8Array {
  const rng = new Rng(seed, stream);
  const out = new Uint8Array(n * spec.image.height * spec.image.width * spec.image.channels);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  return out;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let m = 0;
  // `]!`: i < a.length === b.length.
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/**
 * The scale of each trainable parameter's gradient, for tolerances: the largest |value| over the
 * `adam.m.*` tensors of its layer (`<network>.<layer>.*`). A bias that feeds batch norm has a zero
 * gradient in exact arithmetic, so its own largest value is rounding noise, which differs between
 * BLAS kernels (AVX2 / AVX-512, OPENBLAS_CORETYPE); the layer's weight gradient is the scale that
 * noise is made at.
 */
export function layerGradientScales(spec: ArchitectureSpec, moments: ReadonlyMap<string, { data: Float32Array }>): Map<string, number> {
  const trainable = allParameters(spec).filter((p) => p.trainable);
  const perLayer = new Map<string, number>();
  for (const p of trainable) {
    const m = moments.get(`adam.m.${p.name}`);
    assert.ok(m, `no adam.m.${p.name}`);
    const layer = `${p.network}.${p.layer}`;
    perLayer.set(layer, Math.max(perLayer.get(layer) ?? 0, maxAbs(m.data)));
  }
  // `!`: every trainable parameter's layer was set above.
  return new Map(trainable.map((p) => [p.name, perLayer.get(`${p.network}.${p.layer}`)!]));
}

/**
 * Asserts `diff <= tol` (a parity check's error within its bound). Where the environment names a
 * file in CELEBA_GAN_TOLERANCE_LOG, each check also appends `{check, diff, tol, ratio}` to it as a
 * JSON line: runs under different BLAS settings (OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY) then
 * show how much headroom each bound has (docs/development.md, "Tests").
 */
export function assertWithin(check: string, diff: number, tol: number, message = `${check}: max |diff| ${diff} > ${tol}`): void {
  const log = process.env.CELEBA_GAN_TOLERANCE_LOG;
  if (log) appendFileSync(log, `${JSON.stringify({ check, diff, tol, ratio: diff / tol, env: blasEnv() })}\n`);
  assert.ok(diff <= tol, message);
}

function blasEnv(): string {
  return `OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? '(unset)'} ATEN_CPU_CAPABILITY=${process.env.ATEN_CPU_CAPABILITY ?? '(unset)'}`;
}

/** Initial weights with non-trivial batch-norm running statistics, so inference mode tests them. */
export function testWeights(spec: ArchitectureSpec, seed: number): TensorMap {
  const w = initialWeights(spec, seed);
  const rng = new Rng(seed, 'running-stats');
  for (const p of allParameters(spec)) {
    if (p.role === 'runningMean') rng.fillUniform(w.get(p.name)!.data, -0.5, 0.5);
    if (p.role === 'runningVar') rng.fillUniform(w.get(p.name)!.data, 0.5, 2);
    if (p.role === 'beta') rng.fillUniform(w.get(p.name)!.data, -0.1, 0.1);
  }
  return w;
}

/** RGB uint8 HWC images -> float32 NCHW in [-1, 1], rounded as the engines do (x / 127.5 - 1 in float32). */
export function hwcToNchwFloat(batch: Uint8Array, n: number, h: number, w: number): Float32Array {
  const out = new Float32Array(batch.length);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) out[((i * 3 + c) * h + y) * w + x] = Math.fround(Math.fround(batch[((i * h + y) * w + x) * 3 + c]! / 127.5) - 1);
  return out;
}
