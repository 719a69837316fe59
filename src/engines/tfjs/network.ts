import { layerInfos, type LayerInfo } from '../../model/shapes.js';
import type { ArchitectureSpec, NetworkName } from '../../model/spec.js';
import { nchwToNhwc, nhwcToNchw } from './layout.js';
import type { Tensor, Tensor4D, Tf, Variable } from './types.js';

/**
 * One network's forward pass, built from the spec with tfjs core ops (no tfjs-layers), so every
 * random draw and every batch-norm statistic is under our control. Activations run NHWC; the
 * canonical C,H,W order is restored around `reshape` and `flatten`.
 */

export interface TrainMode {
  train: true;
  /** Keep masks per dropout layer, NHWC (or [N, F]) already scaled; null = no dropout. */
  masks: Tensor[] | null;
  /**
   * Batch-norm running statistics computed by this forward, keyed by variable name. Applied to
   * the variables by the caller after the gradient step; kept (tf.keep) so they outlive tapes.
   */
  running: Map<string, Tensor>;
  /** Every kept tensor, disposed by the caller at the end of the step. */
  kept: Tensor[];
  /** Replaces every batch-norm layer's momentum (the EMA generator's statistics: a cumulative average). */
  momentum?: number;
}
export type Mode = { train: false } | TrainMode;

export class Network {
  readonly infos: LayerInfo[];

  constructor(
    private readonly tf: Tf,
    readonly spec: ArchitectureSpec,
    readonly name: NetworkName,
    private readonly vars: ReadonlyMap<string, Variable>,
  ) {
    this.infos = layerInfos(spec, name);
  }

  private v(layer: string, param: string): Variable {
    const key = `${this.name}.${layer}.${param}`;
    const found = this.vars.get(key);
    if (!found) throw new Error(`tfjs engine: no variable ${key}`);
    return found;
  }

  /**
   * x: generator [N, zDim]; discriminator [N, H, W, C] (NHWC). Returns images NHWC or logits [N, 1].
   * `labels` [N, K]: a conditional spec's attribute rows (its label layers need them).
   * `trace` (tests) receives every layer's output in canonical layout.
   */
  forward(x: Tensor, mode: Mode, labels?: Tensor, trace?: (info: LayerInfo, out: Tensor) => void): Tensor {
    const tf = this.tf;
    let h = x;
    let dropoutIndex = 0;
    /** The projection discriminator's term, added to the output (spec.ts, ProjectLabelsLayer). */
    let projection: Tensor | undefined;
    const needLabels = (): Tensor => {
      if (!labels) throw new Error(`tfjs engine: the ${this.name} is conditional and needs labels`);
      return labels;
    };
    for (const info of this.infos) {
      const l = info.layer;
      const n = h.shape[0];
      switch (l.kind) {
        case 'dense': {
          h = tf.matMul(h, this.v(l.name, 'weight'));
          if (l.bias) h = tf.add(h, this.v(l.name, 'bias'));
          break;
        }
        case 'reshape':
          // Canonical C,H,W order, then channels-last.
          h = nchwToNhwc(tf, tf.reshape(h, [n, l.channels, l.height, l.width]));
          break;
        case 'flatten':
          h = tf.reshape(nhwcToNchw(tf, h), [n, -1]);
          break;
        case 'conv2d': {
          h = tf.conv2d(h as Tensor4D, this.v(l.name, 'weight') as unknown as Tensor4D, l.stride, l.padding);
          if (l.bias) h = tf.add(h, this.v(l.name, 'bias'));
          break;
        }
        case 'convTranspose2d': {
          const [c, oh, ow] = info.output as [number, number, number];
          h = tf.conv2dTranspose(h as Tensor4D, this.v(l.name, 'weight') as unknown as Tensor4D, [n, oh, ow, c], l.stride, l.padding);
          if (l.bias) h = tf.add(h, this.v(l.name, 'bias'));
          break;
        }
        case 'batchNorm':
          h = this.batchNorm(h, l.name, l.momentum, l.epsilon, mode);
          break;
        case 'leakyRelu':
          h = tf.leakyRelu(h, l.alpha);
          break;
        case 'relu':
          h = tf.relu(h);
          break;
        case 'tanh':
          h = tf.tanh(h);
          break;
        case 'sigmoid':
          h = tf.sigmoid(h);
          break;
        case 'concatLabels':
          h = tf.concat([h, needLabels()], 1);
          break;
        case 'projectLabels': {
          // sum_k y_k <e_k, flatten(h)>: (y E) . h per image; E is held [F, K] (layout.ts).
          const features = tf.reshape(nhwcToNchw(tf, h), [n, -1]);
          const embedded = tf.matMul(needLabels(), this.v(l.name, 'weight'), false, true);
          projection = tf.sum(tf.mul(embedded, features), 1, true);
          break;
        }
        case 'dropout': {
          if (mode.train && mode.masks) {
            const mask = mode.masks[dropoutIndex];
            if (!mask) throw new Error(`tfjs engine: no dropout mask for dropout layer ${dropoutIndex}`);
            h = tf.mul(h, mask);
          }
          dropoutIndex++;
          break;
        }
      }
      trace?.(info, nhwcToNchw(tf, h));
    }
    return projection ? tf.add(h, projection) : h;
  }

  private batchNorm(x: Tensor, layer: string, momentum: number, epsilon: number, mode: Mode): Tensor {
    const tf = this.tf;
    const gamma = this.v(layer, 'weight');
    const beta = this.v(layer, 'bias');
    if (!mode.train) {
      const scale = tf.mul(tf.rsqrt(tf.add(this.v(layer, 'running_var'), epsilon)), gamma);
      return tf.add(tf.mul(tf.sub(x, this.v(layer, 'running_mean')), scale), beta);
    }
    const axes = x.shape.slice(0, -1).map((_, i) => i); // all but channels
    const count = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const { mean, variance } = tf.moments(x, axes); // biased variance: normalises while training
    const y = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
    // Running statistics (TF momentum convention; unbiased variance as PyTorch keeps it).
    const update = (param: 'running_mean' | 'running_var', batch: Tensor): void => {
      const key = `${this.name}.${layer}.${param}`;
      const current = mode.running.get(key) ?? this.v(layer, param);
      const m = mode.momentum ?? momentum;
      const next = tf.keep(tf.add(tf.mul(current, m), tf.mul(batch, 1 - m)));
      mode.kept.push(next);
      mode.running.set(key, next);
    };
    update('running_mean', mean);
    update('running_var', tf.mul(variance, count / Math.max(1, count - 1)));
    return y;
  }
}
