import type { Tensor, Tf } from '../bindings/tfjs.js';
import { checkImages, type FeatureExtractor } from './extractor.js';
import { HUMAN_PACKAGE, findPackage, readJson, readWeights, type WeightsGroup } from './model-files.js';
import { loadEvalRuntime, withBackend, type EvalBackendName, type EvalRuntime } from './tfjs-runtime.js';

/**
 * Face features: HSE FaceRes (a MobileNet-style face recognition network trained on faces, as
 * shipped by @vladmandic/human). The 1024-d output of `global_pooling/Mean` describes a face the
 * way Inception's pool3 describes an ImageNet photo, so distances between sets of these vectors
 * measure how face-like and how varied generated faces are, with no download.
 *
 * Input: 224x224 RGB with values 0-255. (Fed 0-1, as the same package feeds some other models,
 * it gives near-zero distances for everything.) Images of any size are resized bilinearly to
 * 224 exactly as human's `faceres.enhance` does: `resizeBilinear(x, size, false)`, i.e. without
 * half-pixel centres; real and generated images go through the same resize.
 */

export const FACERES_SIZE = 224;
export const FACERES_DIM = 1024;
const FACERES_OUTPUT = 'global_pooling/Mean';
const MODEL_JSON = 'models/faceres.json';

interface GraphModelJson {
  format: string;
  modelTopology: unknown;
  signature?: unknown;
  weightsManifest: WeightsGroup[];
}

export interface FaceresOptions {
  backend?: EvalBackendName;
  /** Images per forward pass (memory vs. overhead; default 16). */
  batchSize?: number;
}

/**
 * uint8 pixels [n, h, w, 3] -> faceres' input: 0-255 float resized to 224x224 with
 * halfPixelCenters false (human 3.3.6 src/face/faceres.ts `enhance`; it resizes 0-1 values and
 * multiplies by 255 afterwards, which bilinear interpolation makes the same thing).
 */
export function faceresInput(tf: Tf, pixels: Tensor): Tensor {
  return tf.image.resizeBilinear(tf.cast(pixels, 'float32') as Parameters<Tf['image']['resizeBilinear']>[0], [FACERES_SIZE, FACERES_SIZE], false, false);
}

export async function loadFaceres(opts: FaceresOptions = {}): Promise<FeatureExtractor> {
  const rt: EvalRuntime = await loadEvalRuntime(opts.backend ?? 'auto');
  const { tf } = rt;
  const batchSize = opts.batchSize ?? 16;
  const { version } = findPackage(HUMAN_PACKAGE);
  const json = readJson<GraphModelJson>(HUMAN_PACKAGE, MODEL_JSON);
  const weights = readWeights(HUMAN_PACKAGE, 'models', json.weightsManifest);
  // tfjs loads graph models from any object with load(); file:// is built into tfjs-node only.
  const handler = {
    load: async () => ({
      modelTopology: json.modelTopology as object,
      format: json.format,
      signature: json.signature as object,
      weightSpecs: weights.specs as never,
      weightData: weights.data,
    }),
  };
  const model: Awaited<ReturnType<Tf['loadGraphModel']>> = await withBackend(rt, () => tf.loadGraphModel(handler));

  return {
    info: {
      features: 'faceres',
      dim: FACERES_DIM,
      description: `faceres ${FACERES_DIM}-d (${FACERES_OUTPUT}, 224x224 input) from ${HUMAN_PACKAGE.name} ${version} ${MODEL_JSON}`,
      source: `${HUMAN_PACKAGE.name}@${version}/${MODEL_JSON}`,
      runtime: rt.description,
      inputSize: FACERES_SIZE,
    },
    async extract(images, n, height, width) {
      checkImages(images, n, height, width);
      const out = new Float32Array(n * FACERES_DIM);
      await withBackend(rt, async () => {
        const imageBytes = height * width * 3;
        for (let start = 0; start < n; start += batchSize) {
          const count = Math.min(batchSize, n - start);
          const features = tf.tidy(() => {
            const pixels = tf.tensor4d(images.subarray(start * imageBytes, (start + count) * imageBytes), [count, height, width, 3], 'int32');
            return model.execute(faceresInput(tf, pixels), FACERES_OUTPUT) as Tensor;
          });
          try {
            out.set(await features.data<'float32'>(), start * FACERES_DIM);
          } finally {
            features.dispose();
          }
        }
      });
      return out;
    },
    dispose() {
      model.dispose();
    },
  };
}
