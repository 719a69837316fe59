/** Inference: onnxruntime sessions over exported generators, latents, batched generation to files. */
export {
  openGenerator,
  openOnnxSession,
  parseGeneratorMetadata,
  latentsFor,
  checkTruncation,
  METADATA_KEYS,
  INPUT_NAME,
  ATTRIBUTES_INPUT_NAME,
  OUTPUT_NAME,
  SUPPORTED_OUTPUT_RANGE,
  type GeneratorInfo,
  type GeneratorSession,
  type OpenGeneratorOptions,
  type OnnxSession,
  type LatentKind,
} from './session.js';
export {
  generateImages,
  imageFileName,
  IMAGE_FORMATS,
  RESIZE_KERNELS,
  MANIFEST_NAME,
  DEFAULT_BATCH_SIZE,
  type GenerateOptions,
  type GenerateResult,
  type ImageFormat,
  type ResizeKernel,
} from './generate.js';
export { encodeImage, EXTENSIONS, type EncodeOptions } from './encode.js';
export { manifestFileName } from './manifest.js';
export { parseShard, shardFromEnv, shardSlice, SHARD_INDEX_ENV, type Shard } from './shards.js';
export { readModelSummary, type ModelFileSummary } from './model-file.js';
export {
  attributeDraw,
  parseAttributeRequest,
  parseModelAttributes,
  rowText,
  AttributeDraw,
  type AttributeRequest,
  type ModelAttributes,
  type NamedAttribute,
} from './attributes.js';
