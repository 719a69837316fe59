/**
 * celeba-gan's own measurement of generated faces, offline: ProGAN's sliced Wasserstein distance
 * and a colour-statistics check from 23 px, each beside its real-halves baseline and with what
 * the validation ladder says it ranks at that size (validity.ts); KID/FID on faceres face
 * features and a face-detection rate from 64 px; standard FID on a user-supplied Inception.
 */

export {
  evaluate,
  checkSources,
  checkSizes,
  MIN_EVAL_N,
  FACE_METRICS_MIN_SIZE,
  NOT_MEANINGFUL,
  NOT_VALIDATED,
  type EvalReport,
  type EvalProgress,
  type EvaluateOptions,
  type DetectionSummary,
  type FeatureReport,
  type DetectorReport,
  type KidSummary,
} from './evaluate.js';
export {
  swd,
  swdAgainst,
  pyramidSizes,
  smallestImageSide,
  imageSubset,
  SWD_DEFAULTS,
  type ImageSet,
  type SwdOptions,
  type SwdResult,
  type SwdLevel,
  type SwdRun,
} from './swd.js';
export { openSwdKernel, sharedSwdKernel, parseSwdKernel, SWD_KERNELS, type SwdKernel, type SwdKernelChoice, type SwdKernelName } from './swd-kernel.js';
export { colourDistance, colourStatistics, type ColourDistance } from './colour.js';
export {
  swdValidity,
  swdRankedRungs,
  smallestSideWithLevels,
  SWD_MIN_LEVELS,
  SWD_FULL_LADDER_LEVELS,
  COLOUR_CHECK_NOTE,
  type SwdValidity,
  type LadderRung,
} from './validity.js';
export {
  yardstick,
  realHalves,
  realHalvesBaseline,
  realHalvesScores,
  scoreAgainst,
  type YardstickResult,
  type YardstickOptions,
  type MetricPair,
  type SetScore,
} from './yardstick.js';
export { gaussianBlur, checkerboard, uniformNoise, flatGrey, colourShift } from './degrade.js';
export { kid, fid, featureSet, gaussianStats, frechetDistance, type FeatureSet, type KidOptions, type KidResult } from './metrics.js';
export {
  datasetSource,
  onnxSource,
  type LabelRows,
  engineSource,
  sampleIndices,
  openEvalSource,
  type ImageSource,
  type OpenedEvalSource,
  type OpenEvalSourceOptions,
  type EvalSourceKind,
} from './sources.js';
export type { FeatureExtractor, FeatureSpace, ExtractorInfo } from './extractor.js';
export type { FaceDetector } from './face-detector.js';
export { EVAL_BACKENDS, type EvalBackendName } from './tfjs-runtime.js';
export { INCEPTION_RANGES, type InceptionRange } from './inception.js';
export { createTrainingEvalHook, DEFAULT_TRAIN_EVAL_N, TRAIN_EVAL_HOOK, type TrainingEvalHook, type TrainingEvalOptions } from './training-eval.js';
export { FEATURE_SPACES, DETECTORS, loadExtractor, loadDetector, type DetectorName, type ExtractorChoice } from './extractors.js';
export {
  evaluateAttributes,
  attributeEvalUnavailable,
  attributeRealSample,
  imagesWith,
  onnxConditional,
  engineConditional,
  ATTRIBUTE_SIDES,
  type AttributeSide,
  type AttributeScore,
  type AttributeEvalOptions,
  type AttributeEvalReport,
  type ConditionalGenerator,
} from './attribute-eval.js';
