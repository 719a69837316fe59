import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { buildSpec } from '../../src/config/presets.js';
import { DatasetReader } from '../../src/data/dataset-file.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { LabelRowCounter } from '../../src/onnx/attribute-rows.js';
import { buildGeneratorOnnx } from '../../src/onnx/export.js';
import { weightsWithBatchNorm } from '../onnx/fixtures.js';

/**
 * Per-attribute evaluation's fixtures: a labelled synthetic data set and a tiny conditional
 * generator (the project's exporter, seeded initial weights with randomised batch-norm
 * statistics) whose attributes are three of the data's and one it lacks.
 *
 * With seed 3, 48 faces at 28 px carry Smiling 16 times, Eyeglasses 7 and Pale_Skin once: at
 * n = 6 Smiling is compared at 6 images per set, Eyeglasses at 3 and Pale_Skin (on) is too rare.
 */

export const COND_SET = { count: 48, size: 28, seed: 3 } as const;
/** In the model's input order; Wearing_Hat is not drawn by the synthetic maker. */
export const MODEL_ATTRIBUTES = ['Smiling', 'Eyeglasses', 'Pale_Skin', 'Wearing_Hat'] as const;

export async function writeConditionalSet(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  await prepareSynthetic({ count: COND_SET.count, out: path, size: COND_SET.size, seed: COND_SET.seed });
}

/** Every image's labels as the data set gives them: [count, K] in reader.attributes.names order. */
export function allLabels(reader: DatasetReader): Float32Array {
  return reader.readLabels(Uint32Array.from({ length: reader.count }, (_, i) => i));
}

/** The spec and weights writeConditionalModel exports (for running the same generator in an engine). */
export function conditionalWeights(seed = 21): { spec: ReturnType<typeof buildSpec>; weights: ReturnType<typeof weightsWithBatchNorm> } {
  const spec = buildSpec('seed28', 0.0625, { attributes: [...MODEL_ATTRIBUTES] });
  return { spec, weights: weightsWithBatchNorm(spec, seed) };
}

/**
 * A conditional seed28 generator on MODEL_ATTRIBUTES, exported with the training label rows of
 * `data` (Wearing_Hat -1 throughout, as a data set without hats would give).
 */
export function writeConditionalModel(path: string, data: string, seed = 21): void {
  const reader = new DatasetReader(data);
  try {
    const names = reader.attributes!.names;
    const labels = allLabels(reader);
    const k = MODEL_ATTRIBUTES.length;
    const rows = new Float32Array(reader.count * k);
    for (let i = 0; i < reader.count; i++) {
      MODEL_ATTRIBUTES.forEach((a, j) => {
        const c = names.indexOf(a);
        rows[i * k + j] = c < 0 ? -1 : labels[i * names.length + c]!;
      });
    }
    const counter = new LabelRowCounter(k);
    counter.add(rows);
    const frequencies = MODEL_ATTRIBUTES.map((_, j) => rows.filter((v, i) => i % k === j && v > 0).length / reader.count);
    const { spec, weights } = conditionalWeights(seed);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, buildGeneratorOnnx(spec, weights, { attributeFrequencies: frequencies, attributeRows: counter.table() }));
  } finally {
    reader.close();
  }
}
