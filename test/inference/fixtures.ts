import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSpec } from '../../src/config/presets.js';
import { initialWeights } from '../../src/model/init.js';
import { parameterList } from '../../src/model/shapes.js';
import { buildGeneratorOnnx } from '../../src/onnx/export.js';
import { encodeModel, modelProtoType, type Model } from '../../src/onnx/onnx-proto.js';
import { Rng } from '../../src/util/rng.js';

/**
 * Test models made by the project's own exporter (src/onnx) from seeded initial weights: no
 * training, no committed binaries. Batch-norm statistics are randomised so that faces differ
 * visibly from one latent to the next (fresh statistics make every face a flat grey).
 */

export const TEST_WIDTH = 0.03125;

export function tempDir(prefix = 'cg-gen-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The spec and weights tinyModelBytes exports (for comparing its model with the training engine). */
export function tinyWeights(opts: { preset?: string; width?: number; seed?: number } = {}): {
  spec: ReturnType<typeof buildSpec>;
  weights: ReturnType<typeof initialWeights>;
} {
  const spec = buildSpec(opts.preset ?? 'seed28', opts.width ?? TEST_WIDTH);
  const seed = opts.seed ?? 1;
  const weights = initialWeights(spec, seed);
  for (const p of parameterList(spec, 'generator')) {
    const t = weights.get(p.name)!;
    const rng = new Rng(seed, 'test-bn', p.name);
    if (p.role === 'runningMean' || p.role === 'beta') rng.fillUniform(t.data, -0.5, 0.5);
    else if (p.role === 'runningVar') rng.fillUniform(t.data, 0.05, 0.5);
    else if (p.role === 'gamma') rng.fillUniform(t.data, 0.5, 1.5);
  }
  return { spec, weights };
}

export function tinyModelBytes(opts: { preset?: string; width?: number; seed?: number; edit?: (m: Model) => void } = {}): Uint8Array {
  const { spec, weights } = tinyWeights(opts);
  const bytes = buildGeneratorOnnx(spec, weights, { metadata: { 'celeba_gan.step': '1234', 'celeba_gan.checkpoint_sha256': 'cd'.repeat(32) } });
  if (!opts.edit) return bytes;
  // Decoded without protobuf defaults: filled-in defaults would give every attribute every field.
  const type = modelProtoType();
  const model = type.toObject(type.decode(bytes), { longs: Number, arrays: true }) as Model;
  opts.edit(model);
  return encodeModel(model);
}

/** Write a tiny model to `<dir>/<name>` and return its path. */
export function writeTinyModel(dir: string, name = 'tiny.onnx', opts: Parameters<typeof tinyModelBytes>[0] = {}): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, tinyModelBytes(opts));
  return path;
}

/** Rename graph input `z` (and its uses) to `to`, leaving the metadata as it was. */
export function renameInput(to: string): (m: Model) => void {
  return (m) => {
    for (const input of m.graph.input) if (input.name === 'z') input.name = to;
    for (const node of m.graph.node) node.input = node.input.map((name) => (name === 'z' ? to : name));
  };
}

export function dropMetadata(...keys: string[]): (m: Model) => void {
  return (m) => {
    m.metadata_props = m.metadata_props.filter((p) => !keys.includes(p.key));
  };
}

export function setMetadata(key: string, value: string): (m: Model) => void {
  return (m) => {
    const entry = m.metadata_props.find((p) => p.key === key);
    if (entry) entry.value = value;
    else m.metadata_props.push({ key, value });
  };
}

/** Give input `z` and output `images` a fixed batch dimension (a model exported for one batch size). */
export function fixBatch(batch: number): (m: Model) => void {
  return (m) => {
    for (const v of [...m.graph.input, ...m.graph.output]) {
      if (v.name === 'z' || v.name === 'images') v.type.tensor_type.shape.dim[0] = { dim_value: batch };
    }
  };
}
