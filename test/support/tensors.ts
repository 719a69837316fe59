import assert from 'node:assert/strict';
import type { ArchitectureSpec } from '../../src/model/spec.js';
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
