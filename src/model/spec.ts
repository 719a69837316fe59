/**
 * The architecture as plain data: the one description of both networks that every engine
 * (TensorFlow.js, libtorch) and the ONNX exporter read. Nothing else defines layer sizes.
 *
 * Conventions (canonical, engine-independent):
 * - Activations are described channel-first (C x H x W); engines may run channels-last
 *   internally but `reshape` and `flatten` are defined in C,H,W order (PyTorch's `view`).
 * - Padding `same` follows TensorFlow: for an odd total padding the extra row/column goes at
 *   the END (bottom/right), for convolutions and transposed convolutions alike. See
 *   `src/model/shapes.ts` for the explicit pads every layer gets.
 * - Weight layouts (see `parameterList` in shapes.ts):
 *     dense            weight [out, in], bias [out]
 *     conv2d           weight [out, in, kh, kw], bias [out]          (PyTorch Conv2d, ONNX Conv)
 *     convTranspose2d  weight [in, out, kh, kw], bias [out]          (PyTorch ConvTranspose2d, ONNX ConvTranspose)
 *     batchNorm        weight (gamma) [C], bias (beta) [C], running_mean [C], running_var [C]
 *   Names are `<network>.<layer name>.<param>`, e.g. `generator.deconv1.weight`.
 * - Batch norm momentum uses TensorFlow's convention: running = momentum * running + (1 - momentum) * batch
 *   (PyTorch's `momentum` is 1 - this). The running variance is updated with the UNBIASED batch
 *   variance (as PyTorch does); normalisation while training uses the biased batch variance.
 */

export type Padding = 'same' | 'valid';

export interface DenseLayer {
  kind: 'dense';
  name: string;
  units: number;
  bias: boolean;
}
/** Dense output -> C x H x W, in C,H,W order. */
export interface ReshapeLayer {
  kind: 'reshape';
  channels: number;
  height: number;
  width: number;
}
export interface Conv2dLayer {
  kind: 'conv2d';
  name: string;
  filters: number;
  kernel: number;
  stride: number;
  padding: Padding;
  bias: boolean;
}
export interface ConvTranspose2dLayer {
  kind: 'convTranspose2d';
  name: string;
  filters: number;
  kernel: number;
  stride: number;
  padding: Padding;
  bias: boolean;
}
export interface BatchNormLayer {
  kind: 'batchNorm';
  name: string;
  /** TensorFlow convention: running = momentum * running + (1 - momentum) * batch. */
  momentum: number;
  epsilon: number;
}
export interface LeakyReluLayer {
  kind: 'leakyRelu';
  alpha: number;
}
export interface ReluLayer {
  kind: 'relu';
}
/** Active only while training; `rate` is the fraction of units dropped (inverted dropout). */
export interface DropoutLayer {
  kind: 'dropout';
  rate: number;
}
export interface TanhLayer {
  kind: 'tanh';
}
export interface SigmoidLayer {
  kind: 'sigmoid';
}
/** C x H x W -> C*H*W, in C,H,W order. */
export interface FlattenLayer {
  kind: 'flatten';
}
/**
 * Conditional generator: [F] -> [F + K], the attribute vector y (K values, +1/-1) appended to
 * its input (placed before the first layer, so the first layer takes zDim + K inputs).
 */
export interface ConcatLabelsLayer {
  kind: 'concatLabels';
}
/**
 * Projection discriminator (Miyato & Koyama 2018): passes its input h through unchanged and adds
 * sum_k y_k <e_k, flatten(h)> (flatten in C,H,W order) to the network's output logit.
 * `<name>.weight` is E [K, C*H*W], a trainable discriminator tensor.
 */
export interface ProjectLabelsLayer {
  kind: 'projectLabels';
  name: string;
}

export type LayerSpec =
  | DenseLayer
  | ReshapeLayer
  | Conv2dLayer
  | ConvTranspose2dLayer
  | BatchNormLayer
  | LeakyReluLayer
  | ReluLayer
  | DropoutLayer
  | TanhLayer
  | SigmoidLayer
  | FlattenLayer
  | ConcatLabelsLayer
  | ProjectLabelsLayer;

export type LayerKind = LayerSpec['kind'];
export type NetworkName = 'generator' | 'discriminator';

export type WeightInit =
  /** Glorot/Xavier uniform for dense and conv kernels (TensorFlow's default), zero biases, BN gamma 1, beta 0. */
  | { kind: 'glorotUniform' }
  /** DCGAN: kernels N(0, std), BN gamma N(1, std), zero biases and beta. */
  | { kind: 'normal'; std: number };

export interface TrainingSpec {
  batchSize: number;
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Target for real images in the discriminator loss (0.9 = one-sided label smoothing). */
  realLabel: number;
  init: WeightInit;
}

/**
 * An attribute-conditional model: every image has K attributes, +1 (has it) or -1 (not), in this
 * order. The generator appends them to z (`concatLabels`), the discriminator projects them onto
 * its features (`projectLabels`).
 */
export interface Conditioning {
  /** Attribute names in the data set's order, e.g. CelebA's `Smiling`; K = their count. */
  attributes: readonly string[];
  /**
   * Fraction of the training images with each attribute (+1), in attribute order. Only the EMA
   * generator's batch-norm statistics use it (their labels are drawn with these odds, so the
   * statistics match the label mix the generator trains on); 0.5 each when not given.
   */
  frequencies?: readonly number[];
}

export interface ArchitectureSpec {
  /** Preset this spec was built from, e.g. `seed28`. */
  preset: string;
  /** Channel-width multiplier applied to every hidden layer (1 = the preset as published). */
  width: number;
  zDim: number;
  latent: 'uniform' | 'normal';
  image: { channels: number; height: number; width: number };
  /** Absent: an unconditional model (no label layers, no labels anywhere). */
  conditioning?: Conditioning;
  /** z [N, zDim] (and labels [N, K] when conditional) -> images [N, C, H, W] in [-1, 1]. */
  generator: readonly LayerSpec[];
  /** images [N, C, H, W] in [-1, 1] (and labels [N, K]) -> logits [N, 1] (no sigmoid: losses use logits). */
  discriminator: readonly LayerSpec[];
  training: TrainingSpec;
}
