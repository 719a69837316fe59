import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CelebaGanError, UsageError, describe } from '../errors.js';
import { layerInfos, outputShape, parameterList, type LayerInfo } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { numel, type Tensor32, type TensorMap } from '../model/tensors.js';
import { WEIGHTS_FILE, loadCheckpoint, readRunConfig } from '../train/checkpoint.js';
import { writeFileAtomic } from '../util/atomic.js';
import { packageVersion } from '../version.js';
import { foldBatchNorm, type BatchNormStats } from './fold.js';
import { GraphBuilder, attr, tensorValue } from './graph-builder.js';
import { META, specMetadata } from './metadata.js';
import { encodeModel, type Model, type ValueInfo } from './onnx-proto.js';

/**
 * spec + canonical weights -> the generator as an ONNX ModelProto, in inference mode: batch norm
 * with its running statistics (or folded into the preceding layer), dropout gone.
 *
 *   z       float32 [batch, zDim]           (symbolic `batch`)
 *   images  float32 [batch, C, H, W] NCHW   in [-1, 1]
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
  13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10,
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
  return IR_VERSION_FOR_OPSET[assertOpset(opset)]!;
}

export interface BuildOnnxOptions {
  /** ONNX opset (default 17). */
  opset?: number;
  /** Fold batch norm into the preceding dense/convolution weights (default false). */
  foldBatchNorm?: boolean;
  /** Extra metadata_props (step, checkpoint hash, ...); override the spec-derived keys. */
  metadata?: Record<string, string>;
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
              outputsPerChannel: l.kind === 'dense' ? numel(bn.input) / bn.input[0]! : 1,
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
  const metadata = { ...specMetadata(spec, fold), ...opts.metadata };
  const step = metadata[META.step];
  const doc =
    `celeba-gan ${spec.preset} generator (width ${spec.width})${step === undefined ? '' : `, training step ${step}`}: ` +
    `z float32 [batch, ${spec.zDim}] ~ ${spec.latent === 'uniform' ? 'U(-1, 1)' : 'N(0, 1)'} -> ` +
    `images float32 [batch, ${image.join(', ')}] (NCHW, RGB) in [-1, 1]; ` +
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
      input: [tensorValue('z', ['batch', spec.zDim])],
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

/** Lookup of the generator's tensors, each checked against the spec's shape. */
function generatorTensors(spec: ArchitectureSpec, weights: TensorMap): (name: string) => Tensor32 {
  const params = parameterList(spec, 'generator');
  for (const p of params) {
    const t = weights.get(p.name);
    const hint = 'Pass the weights of a checkpoint of this very spec (preset and width), e.g. from loadCheckpoint().';
    if (!t) throw new CelebaGanError('E_WEIGHTS', `weights lack tensor ${p.name} [${p.shape.join(', ')}] of the ${spec.preset} generator`, { hint });
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i]) || t.data.length !== numel(p.shape)) {
      throw new CelebaGanError('E_WEIGHTS', `tensor ${p.name} has shape [${t.shape.join(', ')}] but the ${spec.preset} generator at width ${spec.width} needs [${p.shape.join(', ')}]`, { hint });
    }
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
    while (j >= 0 && infos[j]!.layer.kind === 'reshape') j--;
    const producer = infos[j];
    const kind = producer?.layer.kind;
    if (!producer || !(kind === 'dense' || kind === 'conv2d' || kind === 'convTranspose2d') || folds.has(producer.index)) {
      throw new UsageError('E_FOLD_BATCHNORM', `generator batch norm ${info.layer.name} does not directly follow a dense or convolution layer, so it cannot be folded`, {
        hint: 'Export without --fold-batchnorm.',
      });
    }
    folds.set(producer.index, info);
  }
  return folds;
}

export interface ExportRunOptions {
  /** Run folder (holds run.json and checkpoints/). */
  runDir: string;
  /** Output .onnx path; its folder is created. */
  out: string;
  checkpoint?: 'latest' | number;
  opset?: number;
  foldBatchNorm?: boolean;
  /** Replace an existing, different file. */
  force?: boolean;
}

export interface ExportRunResult {
  path: string;
  /** `unchanged`: the file already held exactly these bytes. */
  status: 'written' | 'unchanged';
  bytes: number;
  /** Float32 bytes of the generator's tensors, for comparison with `bytes`. */
  weightBytes: number;
  step: number;
  checkpointDir: string;
  checkpointSha256: string;
  opset: number;
  foldBatchNorm: boolean;
  spec: ArchitectureSpec;
}

/** Export a run's checkpoint (default the latest) to an ONNX file, atomically. */
export async function exportRun(o: ExportRunOptions): Promise<ExportRunResult> {
  const opset = assertOpset(o.opset ?? DEFAULT_OPSET);
  const fold = o.foldBatchNorm ?? false;
  if (!existsSync(o.runDir) || !statSync(o.runDir).isDirectory()) {
    throw new CelebaGanError('E_NO_RUN', `run folder ${o.runDir} does not exist`, {
      kind: 'usage',
      hint: 'Run `celeba-gan train` first, or pass --run <folder> of a trained run (one holding run.json).',
    });
  }
  if (readRunConfig(o.runDir) === null) {
    throw new CelebaGanError('E_NO_RUN', `${o.runDir} is not a training run: it has no run.json`, {
      kind: 'usage',
      hint: 'Pass --run <folder> made by `celeba-gan train` (it holds run.json and checkpoints/).',
    });
  }
  const ckpt = await loadCheckpoint(o.runDir, o.checkpoint ?? 'latest');
  const sha = ckpt.manifest.files[WEIGHTS_FILE] ?? '';
  const bytes = buildGeneratorOnnx(ckpt.spec, ckpt.weights, {
    opset,
    foldBatchNorm: fold,
    metadata: {
      [META.step]: String(ckpt.manifest.step),
      [META.checkpointSha256]: sha,
      'celeba_gan.seed': String(ckpt.manifest.seed),
      'celeba_gan.engine': ckpt.manifest.engine,
    },
  });
  const result: ExportRunResult = {
    path: o.out,
    status: 'written',
    bytes: bytes.byteLength,
    weightBytes: generatorWeightBytes(ckpt.spec),
    step: ckpt.manifest.step,
    checkpointDir: ckpt.dir,
    checkpointSha256: sha,
    opset,
    foldBatchNorm: fold,
    spec: ckpt.spec,
  };
  if (existsSync(o.out)) {
    if (statSync(o.out).isDirectory()) {
      throw new CelebaGanError('E_OUTPUT_EXISTS', `${o.out} is a folder, not a file`, { kind: 'usage', hint: 'Pass a file path ending in .onnx to --onnx.' });
    }
    const existing = readFileSync(o.out);
    if (Buffer.compare(existing, bytes) === 0) return { ...result, status: 'unchanged' };
    if (!o.force) {
      throw new CelebaGanError('E_OUTPUT_EXISTS', `${o.out} already exists and holds a different model`, {
        kind: 'usage',
        hint: `Pass --force to replace it, or choose another path with --onnx <file> (e.g. ${join(dirname(o.out), `${basename(o.out, '.onnx')}-step${ckpt.manifest.step}.onnx`)}).`,
      });
    }
  }
  mkdirSync(dirname(o.out), { recursive: true });
  await writeFileAtomic(o.out, bytes);
  return result;
}
