import { spawnSync } from 'node:child_process';
import { loadOnnxruntime } from '../../src/bindings/onnxruntime.js';
import { Rng } from '../../src/util/rng.js';
import { PYTHON } from './references.js';

/**
 * Run a serialized model in onnxruntime-node (CPU, all graph optimisations on). A conditional
 * model also takes `attributes` [n, K].
 */
export async function runOnnx(
  model: Uint8Array,
  z: Float32Array,
  n: number,
  zDim: number,
  attributes?: { data: Float32Array; k: number },
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const ort = await loadOnnxruntime();
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', executionProviders: ['cpu'] });
  try {
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = { z: new ort.Tensor('float32', z, [n, zDim]) };
    if (attributes) feeds.attributes = new ort.Tensor('float32', attributes.data, [n, attributes.k]);
    const out = await session.run(feeds);
    const images = out.images!;
    return { data: images.data as Float32Array, dims: images.dims };
  } finally {
    await session.release();
  }
}

export function randomZ(seed: number, n: number, zDim: number, latent: 'uniform' | 'normal'): Float32Array {
  const rng = new Rng(seed, 'test-z');
  const z = new Float32Array(n * zDim);
  return latent === 'uniform' ? rng.fillUniform(z, -1, 1) : rng.fillNormal(z);
}

export { maxAbsDiff } from './tensors.js';

// Which python3, and whether a reference may be missing: test/support/references.ts decides.
export { PYTHON, pythonMissing } from './references.js';

/** Run a python script with arguments; returns stdout (text, or bytes), throws with stderr on failure. */
export function python(script: string, args?: string[]): string;
export function python(script: string, args: string[], output: 'buffer'): Buffer;
export function python(script: string, args: string[] = [], output: 'text' | 'buffer' = 'text'): string | Buffer {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${String(r.status)}): ${r.error?.message ?? r.stderr.toString()}`);
  return output === 'buffer' ? r.stdout : r.stdout.toString('utf8');
}
