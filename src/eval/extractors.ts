import { UsageError } from '../errors.js';
import type { FeatureExtractor, FeatureSpace } from './extractor.js';
import { loadTinyFaceDetector, type FaceDetector } from './face-detector.js';
import { loadFaceres } from './faceres.js';
import { loadInception, type InceptionRange } from './inception.js';
import type { EvalBackendName } from './tfjs-runtime.js';

/** Which feature extractor and face detector an evaluation uses, by name, and loading them. */

export const FEATURE_SPACES: readonly FeatureSpace[] = Object.freeze(['faceres', 'inception'] as const);
export const DETECTORS = Object.freeze(['tiny', 'none'] as const);
export type DetectorName = (typeof DETECTORS)[number];

export interface ExtractorChoice {
  features: FeatureSpace;
  /** Required for `inception`. */
  inception?: string;
  inceptionRange?: InceptionRange;
  backend?: EvalBackendName;
}

export async function loadExtractor(choice: ExtractorChoice): Promise<FeatureExtractor> {
  if (choice.features === 'inception') {
    if (!choice.inception) {
      throw new UsageError('E_INCEPTION_MISSING', '--features inception needs --inception <file.onnx>', {
        hint: 'celeba-gan does not download Inception weights: pass an Inception-v3 ONNX file (2048-d pool features), or use --features faceres.',
      });
    }
    return loadInception(choice.inception, { range: choice.inceptionRange });
  }
  return loadFaceres({ backend: choice.backend });
}

export async function loadDetector(name: DetectorName, backend?: EvalBackendName): Promise<FaceDetector | null> {
  return name === 'none' ? null : loadTinyFaceDetector({ backend });
}
