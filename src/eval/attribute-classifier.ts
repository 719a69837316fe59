import type { Scalar, Tensor2D, Tensor4D, Variable } from '../bindings/tfjs.js';
import type { DatasetReader } from '../data/dataset-file.js';
import { CelebaGanError, UsageError, assertInteger } from '../errors.js';
import { Rng } from '../util/rng.js';
import { loadEvalRuntime, withBackend, type EvalBackendName, type EvalRuntime } from './tfjs-runtime.js';

/**
 * An attribute classifier for labelled faces: the yardstick of a conditional generator (does a
 * face asked for with Eyeglasses have them?). It is trained on the real labelled images, and its
 * own held-out accuracy on real images is reported beside any agreement it measures: the
 * agreement of generated faces with their request is only as good as the classifier.
 *
 * The network, for H x W x 3 faces (28 x 28 shown), one sigmoid per attribute:
 *   x                                     3 x 28 x 28, scaled to [-1, 1]
 *   conv 5x5 stride 2 'same', relu       F x 14 x 14
 *   conv 3x3 stride 2 'same', relu      2F x 7 x 7
 *   dense                                K logits (attribute present when > 0)
 * Loss: sigmoid cross-entropy per attribute, Adam.
 *
 * Each convolution runs as patches x filter matrix: a conv2d with a fixed identity filter gathers
 * the k x k x C patches, and a matMul applies the trainable [k*k*C, F] filters. The wasm backend
 * (the fast CPU one here: tfjs-node does not install on every machine) has no
 * Conv2DBackpropFilter kernel, so tf.conv2d with trainable filters cannot train on it; the
 * patch conv's input gradient is Conv2DBackpropInput, which it has. The function is exactly
 * tf.conv2d with that filter.
 * Deterministic: initial weights and the order of examples come from `seed` (util/rng.ts).
 */

export interface LabelledImages {
  /** uint8 HWC RGB, n images back to back. */
  data: Uint8Array;
  /** n x K labels, +1 (has it) / -1, in `names` order. */
  labels: ArrayLike<number>;
  n: number;
  height: number;
  width: number;
  names: readonly string[];
}

export interface ClassifierOptions {
  /** Passes over the training images. Default 8. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Adam's step size. Default 0.002. */
  learningRate?: number;
  /** Filters of the first convolution (the second has twice as many). Default 16. */
  filters?: number;
  /** Initial weights and the order of examples. Default 0. */
  seed?: number;
  /** tfjs backend (src/eval/tfjs-runtime.ts); default auto (tfjs-node, else wasm, else pure JS). */
  backend?: EvalBackendName;
  /** Stop between batches: throws E_ABORTED. */
  signal?: AbortSignal;
}

/** One attribute's held-out result: the fraction of images whose label the classifier gives. */
export interface AttributeAccuracy {
  name: string;
  accuracy: number;
  /** Images with the attribute among those scored (the share a constant guess would get right). */
  positives: number;
  n: number;
}

/** Images per forward pass when classifying (bounded memory whatever n). */
const PREDICT_CHUNK = 512;

interface Layer {
  w: Variable;
  b: Variable;
  /** Identity filter [k, k, C, k*k*C] that gathers the patches (null for the dense layer). */
  gather: Tensor4D | null;
}

export class AttributeClassifier {
  private constructor(
    private readonly rt: EvalRuntime,
    readonly names: readonly string[],
    readonly height: number,
    readonly width: number,
    private readonly layers: readonly Layer[],
    /** What trained it: backend, examples, epochs, seconds. */
    readonly trained: { backend: string; examples: number; epochs: number; seconds: number },
  ) {}

  /** Train on `set` (its labels +1/-1 per attribute). */
  static async train(set: LabelledImages, opts: ClassifierOptions = {}): Promise<AttributeClassifier> {
    const started = performance.now();
    const epochs = assertInteger('epochs', opts.epochs ?? 8, 1, 1000);
    const batchSize = assertInteger('batch size', opts.batchSize ?? 64, 1, 4096);
    const filters = assertInteger('filters', opts.filters ?? 16, 1, 256);
    const seed = assertInteger('seed', opts.seed ?? 0, 0, 0xffffffff);
    checkSet(set);
    if (set.n < 2) throw new UsageError('E_BAD_ARGUMENT', `Expected at least 2 labelled images to train the attribute classifier but received ${set.n}`);
    const rt = await loadEvalRuntime(opts.backend ?? 'auto');
    return withBackend(rt, async () => {
      const layers = initialLayers(rt, set, filters, seed);
      const classifier = new AttributeClassifier(rt, set.names, set.height, set.width, layers, {
        backend: rt.description,
        examples: set.n,
        epochs,
        seconds: 0,
      });
      const tf = rt.tf;
      const optimizer = tf.train.adam(opts.learningRate ?? 0.002);
      const targets = Float32Array.from(set.labels, (v) => (v > 0 ? 1 : 0));
      const k = set.names.length;
      try {
        for (let epoch = 0; epoch < epochs; epoch++) {
          const order = shuffled(set.n, new Rng(seed, 'classifier-order', epoch));
          for (let first = 0; first < set.n; first += batchSize) {
            if (opts.signal?.aborted) throw new CelebaGanError('E_ABORTED', 'training the attribute classifier was stopped');
            const idx = order.subarray(first, Math.min(set.n, first + batchSize));
            const images = gatherImages(set, idx);
            const y = new Float32Array(idx.length * k);
            idx.forEach((i, row) => y.set(targets.subarray(i * k, (i + 1) * k), row * k));
            tf.tidy(() => {
              const x = classifier.input(images, idx.length);
              const labels = tf.tensor2d(y, [idx.length, k]);
              optimizer.minimize(() => tf.losses.sigmoidCrossEntropy(labels, classifier.logits(x)).mean<Scalar>());
            });
            // Let timers and signals run between batches (tfjs's CPU backends never yield).
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
      } catch (err) {
        classifier.dispose();
        throw err;
      } finally {
        optimizer.dispose();
      }
      classifier.trained.seconds = (performance.now() - started) / 1000;
      return classifier;
    });
  }

  /** +1/-1 per attribute for n uint8 HWC images: [n, K] in `names` order. */
  async predict(data: Uint8Array, n: number): Promise<Int8Array> {
    const bytes = this.height * this.width * 3;
    if (data.length !== n * bytes) {
      throw new UsageError('E_BAD_ARGUMENT', `Expected ${n} images of ${this.width}x${this.height}x3 (${n * bytes} bytes) but received ${data.length} bytes`);
    }
    const k = this.names.length;
    const out = new Int8Array(n * k);
    await withBackend(this.rt, async () => {
      for (let first = 0; first < n; first += PREDICT_CHUNK) {
        const m = Math.min(PREDICT_CHUNK, n - first);
        const logits = this.rt.tf.tidy(() => this.logits(this.input(data.subarray(first * bytes, (first + m) * bytes), m)));
        const values = await logits.data();
        logits.dispose();
        for (let i = 0; i < m * k; i++) out[first * k + i] = values[i]! > 0 ? 1 : -1;
      }
    });
    return out;
  }

  /** Per attribute, the fraction of `set`'s images whose label the classifier gives. */
  async accuracy(set: LabelledImages): Promise<AttributeAccuracy[]> {
    checkSet(set);
    const names = set.names.join(',');
    if (names !== this.names.join(',')) {
      throw new UsageError('E_BAD_ARGUMENT', `Expected images labelled with ${this.names.join(', ')} but received ${set.names.join(', ')}`);
    }
    const predicted = await this.predict(set.data, set.n);
    const k = this.names.length;
    return this.names.map((name, a) => {
      let right = 0;
      let positives = 0;
      for (let i = 0; i < set.n; i++) {
        const label = set.labels[i * k + a]! > 0 ? 1 : -1;
        if (predicted[i * k + a] === label) right++;
        if (label > 0) positives++;
      }
      return { name, accuracy: right / set.n, positives, n: set.n };
    });
  }

  dispose(): void {
    for (const l of this.layers) {
      l.w.dispose();
      l.b.dispose();
      l.gather?.dispose();
    }
  }

  /** uint8 HWC -> [n, H, W, 3] in [-1, 1]. */
  private input(data: Uint8Array, n: number): Tensor4D {
    const tf = this.rt.tf;
    return tf.tidy(() => tf.tensor4d(Float32Array.from(data), [n, this.height, this.width, 3]).div(127.5).sub(1));
  }

  /** [n, H, W, 3] -> [n, K] logits (shapes: the file header). */
  private logits(x: Tensor4D): Tensor2D {
    const tf = this.rt.tf;
    let h: Tensor4D = x;
    const dense = this.layers[this.layers.length - 1]!;
    for (const layer of this.layers.slice(0, -1)) {
      const patches = tf.conv2d(h, layer.gather!, 2, 'same'); // [n, H/2, W/2, k*k*C]
      const [n, oh, ow, p] = patches.shape;
      const out = tf.relu(tf.add(tf.matMul(patches.reshape([n * oh * ow, p]), layer.w), layer.b)); // [n*oh*ow, F]
      h = out.reshape([n, oh, ow, layer.w.shape[1]!]);
    }
    const flat = h.reshape<Tensor2D>([h.shape[0], -1]);
    return tf.add(tf.matMul(flat, dense.w), dense.b);
  }
}

function checkSet(set: LabelledImages): void {
  const k = set.names.length;
  if (k === 0) throw new UsageError('E_BAD_ARGUMENT', 'Expected labelled images (one or more attributes) but received images with no attribute names');
  if (set.data.length !== set.n * set.height * set.width * 3) {
    throw new UsageError('E_BAD_ARGUMENT', `Expected ${set.n} RGB images of ${set.width}x${set.height} but received ${set.data.length} bytes`);
  }
  if (set.labels.length !== set.n * k)
    throw new UsageError('E_BAD_ARGUMENT', `Expected ${set.n * k} labels (${k} per image) but received ${set.labels.length}`);
}

/** Glorot-uniform weights from `seed` (never tf.random: the same seed gives the same classifier everywhere). */
function glorot(rt: EvalRuntime, rows: number, cols: number, rng: Rng): Variable {
  const limit = Math.sqrt(6 / (rows + cols));
  const values = new Float32Array(rows * cols);
  rng.fillUniform(values, -limit, limit);
  return rt.tf.variable(rt.tf.tensor2d(values, [rows, cols]));
}

/** The two patch convolutions (kernels 5 and 3) and the dense layer, freshly initialised. */
function initialLayers(rt: EvalRuntime, set: LabelledImages, filters: number, seed: number): Layer[] {
  const tf = rt.tf;
  const rng = new Rng(seed, 'classifier-init');
  const layers: Layer[] = [];
  let channels = 3;
  let [h, w] = [set.height, set.width];
  for (const [kernel, out] of [
    [5, filters],
    [3, 2 * filters],
  ] as const) {
    const p = kernel * kernel * channels;
    const gather = tf.tidy(() => tf.eye(p).reshape<Tensor4D>([kernel, kernel, channels, p]));
    layers.push({ w: glorot(rt, p, out, rng), b: tf.variable(tf.zeros([out])), gather });
    channels = out;
    [h, w] = [Math.ceil(h / 2), Math.ceil(w / 2)];
  }
  layers.push({ w: glorot(rt, h * w * channels, set.names.length, rng), b: tf.variable(tf.zeros([set.names.length])), gather: null });
  return layers;
}

/** 0..n-1 in an order drawn from `rng` (Fisher-Yates). */
function shuffled(n: number, rng: Rng): Uint32Array {
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function gatherImages(set: LabelledImages, idx: Uint32Array): Uint8Array {
  const bytes = set.height * set.width * 3;
  const out = new Uint8Array(idx.length * bytes);
  idx.forEach((i, row) => out.set(set.data.subarray(i * bytes, (i + 1) * bytes), row * bytes));
  return out;
}

/** Images `first` .. `first + n - 1` of a labelled RGB data set with their labels. */
export function readLabelledImages(reader: DatasetReader, first: number, n: number): LabelledImages {
  const attributes = reader.attributes;
  if (!attributes) {
    throw new UsageError('E_NO_LABELS', `data set ${reader.path} has no attribute labels, so no attribute classifier can be trained on it`, {
      hint: 'Prepare it with labels: `celeba-gan prepare --synthetic N` or CelebA with list_attr_celeba.txt.',
    });
  }
  const { height, width, channels } = reader.header;
  if (channels !== 3) throw new UsageError('E_BAD_ARGUMENT', `Expected an RGB data set but ${reader.path} has ${channels} channels`);
  const idx = Uint32Array.from({ length: n }, (_, i) => first + i);
  return { data: reader.read(idx), labels: reader.readLabels(idx), n, height, width, names: attributes.names };
}
