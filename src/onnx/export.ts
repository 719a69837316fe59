import { CelebaGanError, UsageError, describe } from '../errors.js';
import { checkWeights, firstNonFinite } from '../model/check-weights.js';
import { attributeCount, layerInfos, outputShape, parameterList, type LayerInfo } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { numel, type Tensor32, type TensorMap } from '../model/tensors.js';
import { packageVersion } from '../version.js';
import { foldBatchNorm, type BatchNormStats } from './fold.js';
import type { LabelRowTable } from './attribute-rows.js';
import { GraphBuilder, attr, tensorValue } from './graph-builder.js';
import { ATTRIBUTES_INPUT, META, conditioningMetadata, specMetadata } from './metadata.js';
import { encodeModel, type Model, type ValueInfo } from './onnx-proto.js';

/**
 * spec + canonical weights -> the generator as an ONNX ModelProto, in inference mode: batch norm
 * with its running statistics (or folded into the preceding layer), dropout gone.
 *
 *   z           float32 [batch, zDim]           (symbolic `batch`)
 *   attributes  float32 [batch, K]              conditional specs only: +1/-1 per attribute, in the
 *                                               order metadata `celeba_gan.attributes` lists
 *   images      float32 [batch, C, H, W] NCHW   in [-1, 1]
 *
 * The graph is read off `layerInfos(spec, 'generator')`, the one architecture description; the
 * explicit pads of each transposed convolution come from src/model/shapes.ts, which computes
 * them so the result equals TensorFlow's `same` (odd extra cropped at the end) exactly.
 */

export const DEFAULT_OPSET = 17;
export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

/**
 * Lowest IR version able to carry each opset (ONNX's release table: 1.8 = IR 7 / opset 13,
 * 1.10 = IR 8 / opset 15, 1.14 = IR 9 / opset 19, 1.16 = IR 10 / opset 21). The lowest, so the
 * model loads in the oldest runtimes that know the opset.
 */
const IR_VERSION_FOR_OPSET: Readonly<Record<number, number>> = Object.freeze({
  13: 7,
  14: 7,
  15: 8,
  16: 8,
  17: 8,
  18: 8,
  19: 9,
  20: 9,
  21: 10,
});

/** Validate an opset request; returns the opset. */
export function assertOpset(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_OPSET || value > MAX_OPSET) {
    throw new UsageError('E_OPSET', `Expected integer between ${MIN_OPSET} and ${MAX_OPSET} for opset but received ${describe(value)}`, {
      hint: `Pass --opset between ${MIN_OPSET} and ${MAX_OPSET}, or leave it out for ${DEFAULT_OPSET} (onnxruntime 1.13 and newer load it).`,
    });
  }
  return value;
}

export function irVersionFor(opset: number): number {
  const ir = IR_VERSION_FOR_OPSET[assertOpset(opset)];
  if (ir === undefined) throw new Error(`IR_VERSION_FOR_OPSET lacks opset ${opset}; it must cover ${MIN_OPSET}..${MAX_OPSET}`);
  return ir;
}

export interface BuildOnnxOptions {
  /** ONNX opset (default 17). */
  opset?: number;
  /** Fold batch norm into the preceding dense/convolution weights (default false). */
  foldBatchNorm?: boolean;
  /** Extra metadata_props (step, checkpoint hash, ...); override the spec-derived keys. */
  metadata?: Record<string, string>;
  /**
   * Conditional specs: the fraction of training images with each attribute, in attribute order
   * (from the data set), stored as metadata `celeba_gan.attribute_frequencies`. Default: the
   * spec's own conditioning.frequencies, if it has them.
   */
  attributeFrequencies?: readonly number[];
  /**
   * Conditional specs: the training data's distinct label rows with their counts
   * (LabelRowCounter.table() over the data set's labels), stored as metadata
   * `celeba_gan.attribute_rows` so that generation can draw the attributes a user does not name
   * from the data's own rows. At most MAX_ROW_TABLE_BYTES encoded.
   */
  attributeRows?: LabelRowTable;
}

/** Serialize the generator of `spec` with `weights` as an ONNX model. Pure: no I/O. */
export function buildGeneratorOnnx(spec: ArchitectureSpec, weights: TensorMap, opts: BuildOnnxOptions = {}): Uint8Array {
  const opset = assertOpset(opts.opset ?? DEFAULT_OPSET);
  const fold = opts.foldBatchNorm ?? false;
  const get = generatorTensors(spec, weights);
  const infos = layerInfos(spec, 'generator');
  const folds = fold ? planFolds(infos) : new Map<number, LayerInfo>();
  const foldedBn = new Set([...folds.values()].map((bn) => bn.index));

  const g = new GraphBuilder();
  const shapes: ValueInfo[] = []; // every intermediate's shape, for viewers (Netron) and the checker
  let x = 'z';
  for (const info of infos) {
    const before = x;
    const l = info.layer;
    const nodeName = 'name' in l ? l.name : `${l.kind}_${info.index}`;
    const out = `${nodeName}_out`;
    const p = (suffix: string): string => `generator.${nodeName}.${suffix}`;
    switch (l.kind) {
      case 'dense':
      case 'conv2d':
      case 'convTranspose2d': {
        let weight = get(p('weight'));
        let bias = l.bias ? get(p('bias')).data : undefined;
        const bn = folds.get(info.index);
        if (bn) {
          const folded = foldBatchNorm(
            {
              weight: weight.data,
              shape: weight.shape,
              outAxis: l.kind === 'convTranspose2d' ? 1 : 0,
              bias,
              // A dense layer reshaped to C x H x W feeds each channel H * W outputs.
              outputsPerChannel: l.kind === 'dense' ? numel(bn.input.slice(1)) : 1,
            },
            bnStats(get, bn),
          );
          weight = { shape: weight.shape, data: folded.weight };
          bias = folded.bias;
        }
        const inputs = [x, g.float(p('weight'), weight.shape, weight.data)];
        if (bias) inputs.push(g.float(p('bias'), [bias.length], bias));
        if (l.kind === 'dense') {
          x = g.node('Gemm', nodeName, inputs, out, [attr.int('transB', 1)]); // weight [out, in]
        } else {
          const pads = info.pads!;
          x = g.node(l.kind === 'conv2d' ? 'Conv' : 'ConvTranspose', nodeName, inputs, out, [
            attr.ints('kernel_shape', [l.kernel, l.kernel]),
            attr.ints('strides', [l.stride, l.stride]),
            // [h_begin, w_begin, h_end, w_end]; for ConvTranspose: rows/columns cropped from the full result
            attr.ints('pads', [pads.h.begin, pads.w.begin, pads.h.end, pads.w.end]),
          ]);
        }
        break;
      }
      case 'reshape': // canonical C,H,W order is NCHW's own
        x = g.node('Reshape', nodeName, [x, g.int64(`${nodeName}.shape`, [-1, l.channels, l.height, l.width])], out);
        break;
      case 'batchNorm': {
        if (foldedBn.has(info.index)) break;
        const inputs = ['weight', 'bias', 'running_mean', 'running_var'].map((s) => {
          const t = get(p(s));
          return g.float(p(s), t.shape, t.data);
        });
        x = g.node('BatchNormalization', nodeName, [x, ...inputs], out, [attr.float('epsilon', l.epsilon)]);
        break;
      }
      case 'leakyRelu':
        x = g.node('LeakyRelu', nodeName, [x], out, [attr.float('alpha', l.alpha)]);
        break;
      case 'relu':
        x = g.node('Relu', nodeName, [x], out);
        break;
      case 'tanh':
        x = g.node('Tanh', nodeName, [x], out);
        break;
      case 'sigmoid':
        x = g.node('Sigmoid', nodeName, [x], out);
        break;
      case 'flatten':
        x = g.node('Flatten', nodeName, [x], out, [attr.int('axis', 1)]);
        break;
      case 'dropout': // inference: identity
        break;
      case 'concatLabels': // [z, attributes]: the first layer takes zDim + K inputs
        x = g.node('Concat', nodeName, [x, ATTRIBUTES_INPUT], out, [attr.int('axis', 1)]);
        break;
      case 'projectLabels':
        throw new CelebaGanError('E_SPEC', `generator layer ${info.index} is a discriminator's label projection`);
      default: {
        const never: never = l;
        throw new CelebaGanError('E_SPEC', `generator layer ${info.index} has unknown kind ${(never as { kind: string }).kind}`);
      }
    }
    if (x !== before) shapes.push(tensorValue(x, ['batch', ...info.output]));
  }
  const last = g.nodes[g.nodes.length - 1];
  if (!last) throw new CelebaGanError('E_SPEC', 'the generator has no layers to export');
  last.output = ['images'];
  shapes.pop();

  const image = outputShape(spec, 'generator');
  const k = attributeCount(spec);
  const metadata = { ...specMetadata(spec, fold), ...conditioningMetadata(spec, opts.attributeFrequencies, opts.attributeRows), ...opts.metadata };
  const step = metadata[META.step];
  const doc =
    `celeba-gan ${spec.preset} generator (width ${spec.width})${step === undefined ? '' : `, training step ${step}`}: ` +
    `z float32 [batch, ${spec.zDim}] ~ ${spec.latent === 'uniform' ? 'U(-1, 1)' : 'N(0, 1)'} ` +
    (k > 0 ? `with attributes float32 [batch, ${k}] (+1/-1: ${spec.conditioning!.attributes.join(', ')}) ` : '') +
    `-> images float32 [batch, ${image.join(', ')}] (NCHW, RGB) in [-1, 1]; ` +
    `batch norm ${fold ? 'folded into the preceding layers' : 'with running statistics'}.`;
  const model: Model = {
    ir_version: irVersionFor(opset),
    opset_import: [{ domain: '', version: opset }],
    producer_name: 'celeba-gan',
    producer_version: packageVersion(),
    doc_string: doc,
    graph: {
      name: `celeba_gan_${spec.preset}_generator`,
      node: g.nodes,
      initializer: g.initializers,
      input: [tensorValue('z', ['batch', spec.zDim]), ...(k > 0 ? [tensorValue(ATTRIBUTES_INPUT, ['batch', k])] : [])],
      output: [tensorValue('images', ['batch', ...image])],
      value_info: shapes,
    },
    metadata_props: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  };
  return encodeModel(model);
}

/** Bytes of the generator's float32 tensors: the floor for the model's file size. */
export function generatorWeightBytes(spec: ArchitectureSpec): number {
  return parameterList(spec, 'generator').reduce((n, p) => n + 4 * numel(p.shape), 0);
}

/** Lookup of the generator's tensors, each checked against the spec's shape and for finite values. */
function generatorTensors(spec: ArchitectureSpec, weights: TensorMap): (name: string) => Tensor32 {
  checkWeights(spec, weights, {
    where: 'the export',
    network: 'generator',
    hint: 'Pass the weights of a checkpoint of this very spec (preset and width), e.g. from loadCheckpoint().',
  });
  const generator = new Map([...weights].filter(([name]) => name.startsWith('generator.')));
  const bad = firstNonFinite(generator);
  if (bad) {
    throw new CelebaGanError(
      'E_WEIGHTS_NOT_FINITE',
      `the weights to export hold ${bad.value} in ${bad.name} (value ${bad.index}); a model of them would only draw noise`,
      {
        hint: 'Export an earlier checkpoint (--checkpoint <step>), one from before training diverged.',
      },
    );
  }
  return (name) => weights.get(name)!;
}

function bnStats(get: (name: string) => Tensor32, bn: LayerInfo): BatchNormStats {
  const layer = bn.layer;
  if (layer.kind !== 'batchNorm') throw new Error('not a batch norm layer');
  const p = (s: string): Float32Array => get(`generator.${layer.name}.${s}`).data;
  return { gamma: p('weight'), beta: p('bias'), mean: p('running_mean'), variance: p('running_var'), epsilon: layer.epsilon };
}

/**
 * Which layer each batch norm folds into: the nearest dense/convolution before it with only
 * reshapes in between. Anything else in between (an activation) makes folding wrong, so it is
 * an error rather than a quietly unfolded layer.
 */
function planFolds(infos: LayerInfo[]): Map<number, LayerInfo> {
  const folds = new Map<number, LayerInfo>();
  for (const info of infos) {
    if (info.layer.kind !== 'batchNorm') continue;
    let j = info.index - 1;
    while (infos[j]?.layer.kind === 'reshape') j--;
    const producer = infos[j];
    const kind = producer?.layer.kind;
    if (!producer || !(kind === 'dense' || kind === 'conv2d' || kind === 'convTranspose2d') || folds.has(producer.index)) {
      throw new UsageError(
        'E_FOLD_BATCHNORM',
        `generator batch norm ${info.layer.name} does not directly follow a dense or convolution layer, so it cannot be folded`,
        {
          hint: 'Export without --fold-batchnorm.',
        },
      );
    }
    folds.set(producer.index, info);
  }
  return folds;
}
