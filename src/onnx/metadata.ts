import { UsageError, assertNumber } from '../errors.js';
import { attributeCount, outputShape } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { packageVersion } from '../version.js';
import { ATTRIBUTE_KEYS, MAX_ROW_TABLE_BYTES, decodeRowTable, encodeRowTable, type LabelRowTable } from './attribute-rows.js';

/**
 * The `metadata_props` a celeba-gan ONNX model carries, so that a consumer (`generate`) needs no
 * flags: what z to feed and what comes out. Keys are stable; values are strings (ONNX's rule).
 * (src/inference/model-file.ts reads them back.)
 */
export const META = Object.freeze({
  version: 'celeba_gan.version',
  preset: 'celeba_gan.preset',
  width: 'celeba_gan.width',
  zDim: 'celeba_gan.z_dim',
  /** `uniform` = U(-1, 1), `normal` = N(0, 1) */
  latent: 'celeba_gan.latent',
  imageHeight: 'celeba_gan.image_height',
  imageWidth: 'celeba_gan.image_width',
  imageChannels: 'celeba_gan.image_channels',
  /** always `NCHW` */
  layout: 'celeba_gan.layout',
  /** always `-1,1` */
  outputRange: 'celeba_gan.output_range',
  /** training step of the exported checkpoint (set by exportRun) */
  step: 'celeba_gan.step',
  /** sha256 of the checkpoint's weights file (set by exportRun) */
  checkpointSha256: 'celeba_gan.checkpoint_sha256',
  /** `running-stats` or `folded` */
  batchNorm: 'celeba_gan.batchnorm',
  /** `ema` (the EMA generator, export's default) or `raw` (the trained weights) (set by exportRun) */
  weights: 'celeba_gan.weights',
  /** the EMA decay, when `weights` is `ema` (set by exportRun) */
  emaDecay: 'celeba_gan.ema_decay',
  /** conditional models: JSON array of the attribute names, in the order of the `attributes` input */
  attributes: ATTRIBUTE_KEYS.names,
  /** conditional models: JSON array, the fraction of training images with each attribute (same order) */
  attributeFrequencies: ATTRIBUTE_KEYS.frequencies,
  /** conditional models: the training data's distinct label rows with counts (src/onnx/attribute-rows.ts) */
  attributeRows: ATTRIBUTE_KEYS.rows,
});

/** The graph input of a conditional generator's attribute rows, [batch, K]. */
export const ATTRIBUTES_INPUT = 'attributes';

/**
 * A conditional spec's keys: its attribute names and, when known, their frequencies in the
 * training data (the export option, else the spec's own) and the training data's label rows
 * (the export option only). None for an unconditional spec.
 */
export function conditioningMetadata(spec: ArchitectureSpec, frequencies?: readonly number[], rows?: LabelRowTable): Record<string, string> {
  const k = attributeCount(spec);
  if (k === 0) {
    if (frequencies)
      throw new UsageError('E_NOT_CONDITIONAL', `attribute frequencies were given for the export, but this ${spec.preset} model is unconditional`);
    if (rows) throw new UsageError('E_NOT_CONDITIONAL', `attribute label rows were given for the export, but this ${spec.preset} model is unconditional`);
    return {};
  }
  const names = spec.conditioning!.attributes;
  const out: Record<string, string> = { [META.attributes]: JSON.stringify(names) };
  const f = frequencies ?? spec.conditioning!.frequencies;
  if (f) {
    if (f.length !== k)
      throw new UsageError('E_BAD_ARGUMENT', `Expected ${k} attribute frequencies (${names.join(', ')}) for the export but received ${f.length}`);
    f.forEach((v, i) => assertNumber(`frequency of ${names[i]}`, v, 0, 1));
    out[META.attributeFrequencies] = JSON.stringify(f);
  }
  if (rows) out[META.attributeRows] = rowTableValue(rows, k, names);
  return out;
}

/** The metadata value of a label-row table, checked against K and the size bound. */
function rowTableValue(rows: LabelRowTable, k: number, names: readonly string[]): string {
  try {
    decodeRowTable(rows, k, 'being exported');
  } catch (err) {
    throw new UsageError(
      'E_BAD_ARGUMENT',
      `the attribute label rows for the export do not fit ${k} attributes (${names.join(', ')}): ${(err as Error).message}`,
      {
        hint: 'Count the rows of the data set the model was trained on with LabelRowCounter (src/onnx/attribute-rows.ts).',
        cause: err,
      },
    );
  }
  const value = encodeRowTable(rows);
  if (value.length > MAX_ROW_TABLE_BYTES) {
    throw new UsageError('E_BAD_ARGUMENT', `the attribute label rows for the export take ${value.length} bytes; a model holds at most ${MAX_ROW_TABLE_BYTES}`, {
      hint: 'Make the table with LabelRowCounter.table(), which keeps the most common rows within the bound.',
    });
  }
  return value;
}

/** The keys derived from the spec alone; exportRun adds step, checkpoint hash and run details. */
export function specMetadata(spec: ArchitectureSpec, foldBatchNorm: boolean): Record<string, string> {
  const [channels, height, width] = outputShape(spec, 'generator');
  return {
    [META.version]: packageVersion(),
    [META.preset]: spec.preset,
    [META.width]: String(spec.width),
    [META.zDim]: String(spec.zDim),
    [META.latent]: spec.latent,
    [META.imageHeight]: String(height),
    [META.imageWidth]: String(width),
    [META.imageChannels]: String(channels),
    [META.layout]: 'NCHW',
    [META.outputRange]: '-1,1',
    [META.batchNorm]: foldBatchNorm ? 'folded' : 'running-stats',
  };
}
