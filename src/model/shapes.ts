import { CelebaGanError } from '../errors.js';
import type { ArchitectureSpec, LayerSpec, NetworkName, Padding } from './spec.js';
import { numel } from './tensors.js';

/** Activation shape without the batch dimension: [C, H, W] for images, [F] for vectors. */
export type ActShape = readonly number[];

/** Explicit padding of one spatial axis: rows/columns added (conv) or cropped (transposed conv). */
export interface AxisPads {
  begin: number;
  end: number;
}

/**
 * Convolution: output size and TensorFlow-style pads. `same` gives ceil(in / stride) with the
 * odd extra padding at the end.
 */
export function convAxis(inSize: number, kernel: number, stride: number, padding: Padding): { out: number; pads: AxisPads } {
  if (padding === 'valid') {
    return { out: Math.floor((inSize - kernel) / stride) + 1, pads: { begin: 0, end: 0 } };
  }
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + kernel - inSize, 0);
  const begin = Math.floor(total / 2);
  return { out, pads: { begin, end: total - begin } };
}

/**
 * Transposed convolution: output size and how many rows/columns to CROP from the full
 * transposed-convolution result ((in - 1) * stride + kernel). `same` gives in * stride, cropping
 * the odd extra at the end (TensorFlow's conv2d_transpose); ONNX ConvTranspose `pads` take these
 * numbers directly.
 */
export function convTransposeAxis(inSize: number, kernel: number, stride: number, padding: Padding): { out: number; pads: AxisPads } {
  const full = (inSize - 1) * stride + kernel;
  if (padding === 'valid') {
    // TensorFlow's `valid` output is (in - 1) * stride + max(kernel, stride); the extra
    // (stride > kernel) rows would be zeros + bias. No preset uses that case, so refuse it.
    if (stride > kernel)
      throw new CelebaGanError('E_SPEC', `transposed convolution with stride ${stride} > kernel ${kernel} and valid padding is not supported`);
    return { out: full, pads: { begin: 0, end: 0 } };
  }
  const out = inSize * stride;
  const total = full - out;
  if (total < 0) throw new CelebaGanError('E_SPEC', `transposed convolution with kernel ${kernel} < stride ${stride} and same padding is not supported`);
  const begin = Math.floor(total / 2);
  return { out, pads: { begin, end: total - begin } };
}

export interface LayerInfo {
  index: number;
  layer: LayerSpec;
  input: ActShape;
  output: ActShape;
  /** Spatial pads [height, width] for conv2d / convTranspose2d layers. */
  pads?: { h: AxisPads; w: AxisPads };
}

/** Walk a network and give every layer its input/output shape (batch dimension omitted). */
export function layerInfos(spec: ArchitectureSpec, network: NetworkName): LayerInfo[] {
  let shape: ActShape = network === 'generator' ? [spec.zDim] : [spec.image.channels, spec.image.height, spec.image.width];
  const layers = spec[network];
  return layers.map((layer, index) => {
    const input = shape;
    const where = `${network} layer ${index} (${layer.kind})`;
    const rankError = (rank: number) => new CelebaGanError('E_SPEC', `${where} expects a rank-${rank} input but gets [${input.join(', ')}]`);
    let output: ActShape;
    let pads: LayerInfo['pads'];
    switch (layer.kind) {
      case 'dense':
        if (input.length !== 1) throw rankError(1);
        output = [layer.units];
        break;
      case 'reshape': {
        const size = input.reduce((a, b) => a * b, 1);
        if (size !== layer.channels * layer.height * layer.width) {
          throw new CelebaGanError('E_SPEC', `${where} cannot reshape ${size} values to ${layer.channels}x${layer.height}x${layer.width}`);
        }
        output = [layer.channels, layer.height, layer.width];
        break;
      }
      case 'conv2d':
      case 'convTranspose2d': {
        const [, inH, inW] = input;
        if (input.length !== 3 || inH === undefined || inW === undefined) throw rankError(3);
        const axis = layer.kind === 'conv2d' ? convAxis : convTransposeAxis;
        const h = axis(inH, layer.kernel, layer.stride, layer.padding);
        const w = axis(inW, layer.kernel, layer.stride, layer.padding);
        output = [layer.filters, h.out, w.out];
        pads = { h: h.pads, w: w.pads };
        break;
      }
      case 'flatten':
        output = [input.reduce((a, b) => a * b, 1)];
        break;
      case 'concatLabels':
        if (input.length !== 1) throw rankError(1);
        output = [input[0]! + labelCount(spec, where)];
        break;
      case 'projectLabels':
        labelCount(spec, where);
        output = input;
        break;
      default:
        output = input;
    }
    shape = output;
    return { index, layer, input, output, pads };
  });
}

/** K, the number of attributes of a conditional spec; label layers in an unconditional spec are an error. */
function labelCount(spec: ArchitectureSpec, where = 'the spec'): number {
  const k = spec.conditioning?.attributes.length ?? 0;
  if (k === 0) throw new CelebaGanError('E_SPEC', `${where} needs attribute labels, but the spec has no conditioning attributes`);
  return k;
}

/** K for a conditional spec, 0 for an unconditional one. */
export function attributeCount(spec: ArchitectureSpec): number {
  return spec.conditioning?.attributes.length ?? 0;
}

export function outputShape(spec: ArchitectureSpec, network: NetworkName): ActShape {
  const last = layerInfos(spec, network).at(-1);
  if (!last) throw new CelebaGanError('E_SPEC', `the ${network} has no layers`);
  return last.output;
}

export type ParamRole = 'weight' | 'bias' | 'gamma' | 'beta' | 'runningMean' | 'runningVar';

export interface ParamInfo {
  /** Canonical name, e.g. `generator.deconv1.weight`. */
  name: string;
  network: NetworkName;
  layer: string;
  role: ParamRole;
  shape: number[];
  /** False for batch-norm running statistics (updated by forward passes, not the optimiser). */
  trainable: boolean;
}

/** Every tensor of a network in canonical order, names and layouts (see spec.ts). */
export function parameterList(spec: ArchitectureSpec, network: NetworkName): ParamInfo[] {
  const out: ParamInfo[] = [];
  const add = (layer: string, suffix: string, role: ParamRole, shape: number[], trainable = true): void => {
    out.push({ name: `${network}.${layer}.${suffix}`, network, layer, role, shape, trainable });
  };
  for (const info of layerInfos(spec, network)) {
    const l = info.layer;
    // layerInfos gives dense a rank-1 and convolutions a rank-3 input; batch norm follows one of them.
    const inputChannels = (): number => {
      const c = info.input[0];
      if (c === undefined) throw new CelebaGanError('E_SPEC', `${network} layer ${info.index} (${l.kind}) has no input channels`);
      return c;
    };
    switch (l.kind) {
      case 'dense':
        add(l.name, 'weight', 'weight', [l.units, inputChannels()]);
        if (l.bias) add(l.name, 'bias', 'bias', [l.units]);
        break;
      case 'conv2d':
        add(l.name, 'weight', 'weight', [l.filters, inputChannels(), l.kernel, l.kernel]);
        if (l.bias) add(l.name, 'bias', 'bias', [l.filters]);
        break;
      case 'convTranspose2d':
        add(l.name, 'weight', 'weight', [inputChannels(), l.filters, l.kernel, l.kernel]);
        if (l.bias) add(l.name, 'bias', 'bias', [l.filters]);
        break;
      case 'projectLabels':
        add(l.name, 'weight', 'weight', [labelCount(spec), numel(info.input)]);
        break;
      case 'batchNorm': {
        const c = inputChannels();
        add(l.name, 'weight', 'gamma', [c]);
        add(l.name, 'bias', 'beta', [c]);
        add(l.name, 'running_mean', 'runningMean', [c], false);
        add(l.name, 'running_var', 'runningVar', [c], false);
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** Both networks' tensors: generator first, then discriminator. */
export function allParameters(spec: ArchitectureSpec): ParamInfo[] {
  return [...parameterList(spec, 'generator'), ...parameterList(spec, 'discriminator')];
}

export function countParameters(spec: ArchitectureSpec, network: NetworkName): number {
  return parameterList(spec, network)
    .filter((p) => p.trainable)
    .reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}
