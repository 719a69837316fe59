import { UsageError, assertNumber } from '../errors.js';
import type { ArchitectureSpec, Conditioning, LayerSpec } from '../model/spec.js';

/**
 * Presets: the published numbers live here and nowhere else. `buildSpec` applies the channel
 * width multiplier (`--width`) to every hidden layer; image channels (3) are never scaled.
 */

export const PRESET_NAMES = ['seed28', 'dcgan64'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Scaled channel count: at least 1, rounded to the nearest integer. */
function scaleChannels(channels: number, width: number): number {
  return Math.max(1, Math.round(channels * width));
}

/**
 * seed28: the 2018 TensorFlow CelebA DCGAN exactly (docs/architecture.md lists its numbers).
 * TF1 defaults where the notebook relied on them: glorot-uniform kernels, biased convolutions,
 * batch norm momentum 0.99 and epsilon 0.001, Adam epsilon 1e-8.
 */
function seed28(width: number, conditioning?: Conditioning): ArchitectureSpec {
  const c0 = scaleChannels(1024, width);
  const c1 = scaleChannels(512, width);
  const c2 = scaleChannels(256, width);
  const d1 = scaleChannels(64, width);
  const d2 = scaleChannels(128, width);
  const d3 = scaleChannels(256, width);
  const bn = (name: string): LayerSpec => ({ kind: 'batchNorm', name, momentum: 0.99, epsilon: 1e-3 });
  const lrelu: LayerSpec = { kind: 'leakyRelu', alpha: 0.2 };
  const drop: LayerSpec = { kind: 'dropout', rate: 0.5 };
  return {
    preset: 'seed28',
    width,
    zDim: 100,
    latent: 'uniform',
    image: { channels: 3, height: 28, width: 28 },
    ...(conditioning ? { conditioning } : {}),
    generator: [
      ...labelsIntoGenerator(conditioning), // z 100 -> 100 + K
      { kind: 'dense', name: 'fc', units: 4 * 4 * c0, bias: false }, // z 100 (+ K) -> 16384
      { kind: 'reshape', channels: c0, height: 4, width: 4 }, // 1024 x 4 x 4
      bn('bn0'),
      lrelu,
      drop,
      { kind: 'convTranspose2d', name: 'deconv1', filters: c1, kernel: 4, stride: 1, padding: 'valid', bias: true }, // 512 x 7 x 7
      bn('bn1'),
      lrelu,
      drop,
      { kind: 'convTranspose2d', name: 'deconv2', filters: c2, kernel: 5, stride: 2, padding: 'same', bias: true }, // 256 x 14 x 14
      bn('bn2'),
      lrelu,
      drop,
      { kind: 'convTranspose2d', name: 'deconv3', filters: 3, kernel: 5, stride: 2, padding: 'same', bias: true }, // 3 x 28 x 28
      { kind: 'tanh' },
    ],
    discriminator: [
      { kind: 'conv2d', name: 'conv1', filters: d1, kernel: 5, stride: 2, padding: 'same', bias: true }, // 64 x 14 x 14
      lrelu,
      { kind: 'conv2d', name: 'conv2', filters: d2, kernel: 5, stride: 2, padding: 'same', bias: true }, // 128 x 7 x 7
      bn('bn2'),
      lrelu,
      { kind: 'conv2d', name: 'conv3', filters: d3, kernel: 5, stride: 2, padding: 'same', bias: true }, // 256 x 4 x 4
      bn('bn3'),
      lrelu,
      { kind: 'flatten' }, // 4096
      ...labelsIntoDiscriminator(conditioning), // + sum_k y_k <e_k, h> on the 4096 features
      { kind: 'dense', name: 'fc', units: 1, bias: true }, // logit
    ],
    training: {
      batchSize: 64,
      learningRate: 0.00025,
      beta1: 0.45,
      beta2: 0.999,
      epsilon: 1e-8,
      realLabel: 0.9,
      init: { kind: 'glorotUniform' },
    },
  };
}

/** dcgan64: PyTorch's DCGAN example/tutorial (ngf = ndf = 64, kernel-4 layers, no biases). */
function dcgan64(width: number, conditioning?: Conditioning): ArchitectureSpec {
  const ngf = scaleChannels(64, width);
  const ndf = scaleChannels(64, width);
  const bn = (name: string): LayerSpec => ({ kind: 'batchNorm', name, momentum: 0.9, epsilon: 1e-5 });
  const relu: LayerSpec = { kind: 'relu' };
  const lrelu: LayerSpec = { kind: 'leakyRelu', alpha: 0.2 };
  // Every resampling layer of PyTorch's DCGAN: 4x4, stride 2, no bias (batch norm follows).
  const stride2 =
    (kind: 'conv2d' | 'convTranspose2d') =>
    (name: string, filters: number): LayerSpec => ({ kind, name, filters, kernel: 4, stride: 2, padding: 'same', bias: false });
  const up = stride2('convTranspose2d');
  const down = stride2('conv2d');
  return {
    preset: 'dcgan64',
    width,
    zDim: 100,
    latent: 'normal',
    image: { channels: 3, height: 64, width: 64 },
    ...(conditioning ? { conditioning } : {}),
    generator: [
      ...labelsIntoGenerator(conditioning), // z 100 -> 100 + K
      { kind: 'reshape', channels: 100 + (conditioning?.attributes.length ?? 0), height: 1, width: 1 }, // 100 (+ K) x 1 x 1
      { kind: 'convTranspose2d', name: 'deconv1', filters: ngf * 8, kernel: 4, stride: 1, padding: 'valid', bias: false }, // 512 x 4 x 4
      bn('bn1'),
      relu,
      up('deconv2', ngf * 4), // 256 x 8 x 8
      bn('bn2'),
      relu,
      up('deconv3', ngf * 2), // 128 x 16 x 16
      bn('bn3'),
      relu,
      up('deconv4', ngf), // 64 x 32 x 32
      bn('bn4'),
      relu,
      up('deconv5', 3), // 3 x 64 x 64
      { kind: 'tanh' },
    ],
    discriminator: [
      down('conv1', ndf), // 64 x 32 x 32
      lrelu,
      down('conv2', ndf * 2), // 128 x 16 x 16
      bn('bn2'),
      lrelu,
      down('conv3', ndf * 4), // 256 x 8 x 8
      bn('bn3'),
      lrelu,
      down('conv4', ndf * 8), // 512 x 4 x 4
      bn('bn4'),
      lrelu,
      ...labelsIntoDiscriminator(conditioning), // + sum_k y_k <e_k, h> on the 8192 features conv5 reads
      { kind: 'conv2d', name: 'conv5', filters: 1, kernel: 4, stride: 1, padding: 'valid', bias: false }, // 1 x 1 x 1
      { kind: 'flatten' }, // logit
    ],
    training: {
      batchSize: 128,
      learningRate: 0.0002,
      beta1: 0.5,
      beta2: 0.999,
      epsilon: 1e-8,
      realLabel: 1,
      init: { kind: 'normal', std: 0.02 },
    },
  };
}

/**
 * Attribute conditioning is data added to a preset, the same for each: y appended to z before the
 * generator's first layer, and a projection discriminator (Miyato & Koyama 2018) on the features
 * the discriminator's last layer reads. Nothing is added without `conditioning`.
 */
function labelsIntoGenerator(conditioning: Conditioning | undefined): LayerSpec[] {
  return conditioning ? [{ kind: 'concatLabels' }] : [];
}

function labelsIntoDiscriminator(conditioning: Conditioning | undefined): LayerSpec[] {
  return conditioning ? [{ kind: 'projectLabels', name: 'embed' }] : [];
}

const BUILDERS: Readonly<Record<PresetName, (width: number, conditioning?: Conditioning) => ArchitectureSpec>> = Object.freeze({ seed28, dcgan64 });

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Options of `buildSpec`: attributes make the model conditional (src/model/spec.ts, Conditioning). */
export interface SpecOptions {
  /** Attribute names in the data set's order; empty or absent: an unconditional model. */
  attributes?: readonly string[];
  /** Fraction of training images with each attribute, in the same order (Conditioning.frequencies). */
  frequencies?: readonly number[];
}

/**
 * The spec for a preset at a channel width (1 = as published), conditional on `attributes` when
 * given. The result is deeply frozen.
 */
export function buildSpec(preset: string, width = 1, opts: SpecOptions = {}): ArchitectureSpec {
  if (!(PRESET_NAMES as readonly string[]).includes(preset)) {
    throw new UsageError('E_UNKNOWN_PRESET', `Unsupported preset "${preset}". Should be one of: ${PRESET_NAMES.join(', ')}`);
  }
  assertNumber('width', width, 0, 4, { exclusiveMin: true });
  return deepFreeze(BUILDERS[preset as PresetName](width, conditioningOf(opts)));
}

function conditioningOf(opts: SpecOptions): Conditioning | undefined {
  const attributes = opts.attributes ?? [];
  if (attributes.length === 0) {
    if (opts.frequencies?.length)
      throw new UsageError('E_BAD_ARGUMENT', 'Attribute frequencies were given without attributes', {
        hint: 'Pass the attribute names with their frequencies.',
      });
    return undefined;
  }
  const seen = new Set<string>();
  for (const name of attributes) {
    if (typeof name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(name)) {
      throw new UsageError('E_BAD_ARGUMENT', `Expected attribute names of letters, digits, '_' and '-' but received ${JSON.stringify(name)}`, {
        hint: "Use the data set's attribute names, e.g. CelebA's Smiling or Black_Hair.",
      });
    }
    if (seen.has(name)) throw new UsageError('E_BAD_ARGUMENT', `Attribute "${name}" is listed twice`, { hint: 'List each attribute once.' });
    seen.add(name);
  }
  const conditioning: Conditioning = { attributes: [...attributes] };
  if (opts.frequencies) {
    if (opts.frequencies.length !== attributes.length) {
      throw new UsageError('E_BAD_ARGUMENT', `Expected ${attributes.length} attribute frequencies (one per attribute) but received ${opts.frequencies.length}`);
    }
    opts.frequencies.forEach((f, i) => assertNumber(`frequency of ${attributes[i]}`, f, 0, 1));
    conditioning.frequencies = [...opts.frequencies];
  }
  return conditioning;
}
