import type { Tensor, Tensor4D, Tf } from '../bindings/tfjs.js';
import { CelebaGanError } from '../errors.js';
import { checkImages } from './extractor.js';
import { FACE_API_PACKAGE, findPackage, readJson, readWeights, type WeightsGroup } from './model-files.js';
import { loadEvalRuntime, withBackend, type EvalBackendName, type EvalRuntime } from './tfjs-runtime.js';

/**
 * Face-detection rate with face-api's Tiny Face Detector (a Tiny-YOLOv2 with depthwise-separable
 * convolutions, 193 KB of weights shipped in @vladmandic/face-api). The network is rebuilt here
 * from tfjs ops, layer for layer as face-api's TinyFaceDetector/TinyYolov2Base run it, because
 * face-api's own bundles want tfjs-node or a browser.
 *
 * Small images are upscaled (bilinear) to `inputSize` first: at 28 px a face is far below the
 * detector's smallest anchor. An image counts as "has a face" when the best of its boxes scores
 * above `scoreThreshold` (face-api's default is 0.5). No NMS is needed for that question.
 */

const DETECTOR_INPUT_SIZE = 128;
const DETECTOR_THRESHOLD = 0.5;
const MANIFEST = 'model/tiny_face_detector_model-weights_manifest.json';
// face-api src/tinyFaceDetector/const.ts
const MEAN_RGB = [117.001, 114.697, 97.404] as const;
const ANCHORS = 5;
const BOX_ENCODING = 5; // x, y, w, h, score (one class: no class scores)

export interface DetectorOptions {
  backend?: EvalBackendName;
  /** Side the images are resized to; a multiple of 32 (default 128). */
  inputSize?: number;
  scoreThreshold?: number;
  batchSize?: number;
}

export interface DetectionResult {
  /** Best face score per image (sigmoid of the box confidence), in image order. */
  scores: Float32Array;
  /** Share of images whose best score is above the threshold. */
  rate: number;
  threshold: number;
}

export interface FaceDetector {
  readonly info: { description: string; source: string; runtime: string; inputSize: number; threshold: number };
  /** Best face score per image: uint8 HWC images [n, h, w, 3]. */
  scores(images: Uint8Array, n: number, height: number, width: number): Promise<Float32Array>;
  detect(images: Uint8Array, n: number, height: number, width: number): Promise<DetectionResult>;
  dispose(): void;
}

type Params = Record<string, Tensor>;

export async function loadTinyFaceDetector(opts: DetectorOptions = {}): Promise<FaceDetector> {
  const inputSize = opts.inputSize ?? DETECTOR_INPUT_SIZE;
  if (!Number.isInteger(inputSize) || inputSize < 32 || inputSize % 32 !== 0) {
    throw new RangeError(`detector inputSize must be a positive multiple of 32, got ${inputSize}`);
  }
  const threshold = opts.scoreThreshold ?? DETECTOR_THRESHOLD;
  const batchSize = opts.batchSize ?? 32;
  const rt: EvalRuntime = await loadEvalRuntime(opts.backend ?? 'auto');
  const { tf } = rt;
  const { version } = findPackage(FACE_API_PACKAGE);
  const manifest = readJson<WeightsGroup[]>(FACE_API_PACKAGE, MANIFEST);
  const weights = readWeights(FACE_API_PACKAGE, 'model', manifest);
  // decodeWeights also de-quantises the uint8 weights.
  const params: Params = await withBackend(rt, async () => tf.io.decodeWeights(weights.data, weights.specs as never));
  try {
    checkDetectorParams(params, `${FACE_API_PACKAGE.name}@${version}/${MANIFEST}`);
  } catch (err) {
    for (const t of Object.values(params)) t.dispose();
    throw err;
  }

  const forward = (x: Tensor4D): Tensor4D => run(tf, params, x);

  const scores = async (images: Uint8Array, n: number, height: number, width: number): Promise<Float32Array> => {
    checkImages(images, n, height, width);
    const out = new Float32Array(n);
    await withBackend(rt, async () => {
      const imageBytes = height * width * 3;
      for (let start = 0; start < n; start += batchSize) {
        const count = Math.min(batchSize, n - start);
        const best = tf.tidy(() => {
          const pixels = tf.tensor4d(images.subarray(start * imageBytes, (start + count) * imageBytes), [count, height, width, 3], 'int32');
          let x = tf.image.resizeBilinear(tf.cast<Tensor4D>(pixels, 'float32'), [inputSize, inputSize], false, true);
          x = tf.div(tf.sub(x, tf.tensor1d([...MEAN_RGB])), 255);
          const y = forward(x); // [count, cells, cells, anchors * 5]
          const cells = y.shape[1];
          const conf = tf.slice(tf.reshape(y, [count, cells * cells * ANCHORS, BOX_ENCODING]), [0, 0, 4], [count, cells * cells * ANCHORS, 1]);
          return tf.sigmoid(tf.max(tf.reshape(conf, [count, -1]), 1));
        });
        try {
          out.set(await best.data<'float32'>(), start);
        } finally {
          best.dispose();
        }
      }
    });
    return out;
  };

  return {
    info: {
      description: `tiny face detector (face-api Tiny-YOLOv2, ${inputSize}x${inputSize} input, score > ${threshold}) from ${FACE_API_PACKAGE.name} ${version}`,
      source: `${FACE_API_PACKAGE.name}@${version}/${MANIFEST}`,
      runtime: rt.description,
      inputSize,
      threshold,
    },
    scores,
    async detect(images, n, height, width) {
      const s = await scores(images, n, height, width);
      let hits = 0;
      for (const v of s) if (v > threshold) hits++;
      return { scores: s, rate: n === 0 ? 0 : hits / n, threshold };
    },
    dispose() {
      for (const t of Object.values(params)) t.dispose();
    },
  };
}

/** face-api's leaky ReLU with slope 0.1, written as it writes it (same rounding). */
function leaky(tf: Tf, x: Tensor4D): Tensor4D {
  const min = tf.mul(x, tf.scalar(0.10000000149011612));
  return tf.add(tf.relu(tf.sub(x, min)), min);
}

/** Every tensor run() reads, in the order it reads them. */
const DETECTOR_PARAMS: readonly string[] = Object.freeze([
  'conv0/filters',
  'conv0/bias',
  ...['conv1', 'conv2', 'conv3', 'conv4', 'conv5'].flatMap((c) => [`${c}/depthwise_filter`, `${c}/pointwise_filter`, `${c}/bias`]),
  'conv8/filters',
  'conv8/bias',
]);

/**
 * Throws E_EXTRACTOR_CORRUPT naming what `source` (the installed face-api manifest) lacks, so a
 * damaged or different package version fails at load, not as an `undefined` inside tf.add.
 */
export function checkDetectorParams(params: Readonly<Record<string, unknown>>, source: string): void {
  const missing = DETECTOR_PARAMS.filter((name) => params[name] === undefined);
  if (missing.length > 0) {
    throw new CelebaGanError('E_EXTRACTOR_CORRUPT', `${source} lacks the tensors ${missing.join(', ')} that the tiny face detector needs`, {
      hint: `Reinstall it: \`npm install ${FACE_API_PACKAGE.name}@${FACE_API_PACKAGE.version}\`.`,
    });
  }
}

/** A tensor checkDetectorParams has already vouched for. */
function param(p: Params, name: string): Tensor4D {
  const t = p[name];
  if (t === undefined) throw new Error(`tiny face detector tensor ${name} is missing although checkDetectorParams passed`);
  return t as Tensor4D;
}

function separable(tf: Tf, x: Tensor4D, p: Params, name: string): Tensor4D {
  const padded = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const y = tf.separableConv2d(padded, param(p, `${name}/depthwise_filter`), param(p, `${name}/pointwise_filter`), [1, 1], 'valid');
  return leaky(tf, tf.add(y, param(p, `${name}/bias`)));
}

/** TinyYolov2Base.runMobilenet with isFirstLayerConv2d and filterSizes [3, 16, 32, 64, 128, 256, 512]. */
function run(tf: Tf, p: Params, x: Tensor4D): Tensor4D {
  let out = leaky(tf, tf.add(tf.conv2d(x, param(p, 'conv0/filters'), [1, 1], 'valid'), param(p, 'conv0/bias'))); // 16 x (s-2)
  out = tf.maxPool(out, [2, 2], [2, 2], 'same');
  out = separable(tf, out, p, 'conv1'); // 32
  out = tf.maxPool(out, [2, 2], [2, 2], 'same');
  out = separable(tf, out, p, 'conv2'); // 64
  out = tf.maxPool(out, [2, 2], [2, 2], 'same');
  out = separable(tf, out, p, 'conv3'); // 128
  out = tf.maxPool(out, [2, 2], [2, 2], 'same');
  out = separable(tf, out, p, 'conv4'); // 256
  out = tf.maxPool(out, [2, 2], [2, 2], 'same');
  out = separable(tf, out, p, 'conv5'); // 512 x s/32
  out = tf.maxPool(out, [2, 2], [1, 1], 'same');
  return tf.add(tf.conv2d(out, param(p, 'conv8/filters'), [1, 1], 'valid'), param(p, 'conv8/bias')); // 25 x s/32
}
