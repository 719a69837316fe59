/** Training: the folder's public entry (re-exports only). */
export { Trainer, train, type StepEndContext, type StepHook, type TrainCallbacks, type TrainResult, type TrainStart } from './loop.js';
export { openRun, type OpenedRun, type TrainConfig } from './open-run.js';
export {
  listCheckpoints,
  loadCheckpoint,
  lastGoodCheckpoint,
  saveCheckpoint,
  pruneCheckpoints,
  recoverCheckpoints,
  readManifest,
  assertSameArchitecture,
  checkpointDirName,
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointManifest,
  type CheckpointRef,
  type LoadedCheckpoint,
  type SaveCheckpointOptions,
} from './checkpoint.js';
export { newRunConfig, readRunConfig, writeRunConfig, RUN_FORMAT_VERSION, type NewRun, type RunConfig, type DataRef } from './run-config.js';
export { exportRun, assertRunFolder, EXPORT_WEIGHTS, type ExportRunOptions, type ExportRunResult } from './export-run.js';
export { MetricsLog, METRICS_FILE, type LogEntry } from './metrics-log.js';
export { SampleGrid, SAMPLES_DIR, SAMPLE_COUNT } from './samples.js';
export { renderLossSvg, LossPlot, LOSS_PLOT_FILE, type CurvePoint } from './loss-plot.js';
export { ATTRIBUTE_ROWS_FILE, conditionalSpec, countRunLabelRows, hasAttributeRows, readAttributeRows, writeAttributeRows } from './label-rows.js';
