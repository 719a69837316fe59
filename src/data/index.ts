/** The data layer: image folders/zips and synthetic faces -> `.cgds` data sets -> training batches. */
export { DatasetReader, DatasetWriter, type DatasetAttributes, type DatasetHeader } from './dataset-file.js';
export { ATTRIBUTE_FILE_NAME, CELEBA_ATTRIBUTES, formatAttributeFile, parseAttributeFile, parseAttributeList, type AttributeTable } from './attributes.js';
export { BatchLoader, type Batch, type BatchLoaderOptions, type BatchPosition } from './batches.js';
export { prepareFromImages, skippedReportPath, type LabelsInfo, type PrepareOptions, type PrepareProgress, type PrepareResult } from './prepare.js';
export {
  SYNTHETIC_ATTRIBUTES,
  exportSyntheticFolder,
  prepareSynthetic,
  renderLabelledFace,
  renderSyntheticFace,
  type SyntheticFolderResult,
  type SyntheticOptions,
  type SyntheticResult,
} from './synthetic.js';
export { inspectDataset, defaultSheetPath, type InspectOptions, type InspectResult } from './inspect.js';
export { cropBox, cropResize, type CropResizeOptions } from './preprocess.js';
export { openImageSource, IMAGE_EXTENSIONS, type ImageSource, type Skipped } from './sources.js';
