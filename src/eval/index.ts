/**
 * celeba-gan's own measurement of generated faces, offline: KID/FID on faceres face features
 * (or on a user-supplied Inception for the standard FID) and a face-detection rate.
 * The folder's public entry (re-exports only).
 */

export { evaluate, checkSources, detectionRate, type EvalReport, type EvalProgress, type EvaluateOptions, type DetectionSummary } from './evaluate.js';
export { swd, pyramidSizes, imageSubset, SWD_DEFAULTS, type ImageSet, type SwdOptions, type SwdResult, type SwdLevel } from './swd.js';
export { colourDistance, colourStatistics, type ColourDistance } from './colour.js';
export { yardstick, realHalves, realHalvesBaseline, type YardstickResult, type YardstickOptions, type MetricPair } from './yardstick.js';
export { gaussianBlur, checkerboard, uniformNoise, flatGrey, colourShift } from './degrade.js';
export { kid, fid, featureSet, gaussianStats, frechetDistance, type FeatureSet, type KidOptions, type KidResult } from './metrics.js';
export { datasetSource, onnxSource, engineSource, sampleIndices, type ImageSource } from './sources.js';
export type { FeatureExtractor, FeatureSpace, ExtractorInfo } from './extractor.js';
export type { FaceDetector } from './face-detector.js';
export { EVAL_BACKENDS, type EvalBackendName } from './tfjs-runtime.js';
export { INCEPTION_RANGES, type InceptionRange } from './inception.js';
export { createTrainingEvalHook, DEFAULT_TRAIN_EVAL_N, TRAIN_EVAL_HOOK, type TrainingEvalHook, type TrainingEvalOptions } from './training-eval.js';
export { FEATURE_SPACES, DETECTORS, loadExtractor, loadDetector, type DetectorName, type ExtractorChoice } from './extractors.js';
