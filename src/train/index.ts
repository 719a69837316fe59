/** Training: the engine-agnostic loop, run folders and checkpoints, step randomness, loss plots. */
export {
  Trainer, openRun, train, METRICS_FILE, LOSS_PLOT_FILE, SAMPLES_DIR, SAMPLE_COUNT,
  type LogEntry, type OpenedRun, type StepEndContext, type StepHook, type TrainCallbacks, type TrainConfig, type TrainResult, type TrainStart,
} from './loop.js';
export {
  listCheckpoints, loadCheckpoint, saveCheckpoint, pruneCheckpoints, readManifest, readRunConfig, writeRunConfig, assertSameArchitecture,
  checkpointDirName, CHECKPOINT_FORMAT_VERSION, RUN_FORMAT_VERSION,
  type CheckpointManifest, type CheckpointRef, type LoadedCheckpoint, type RunConfig, type SaveCheckpointOptions,
} from './checkpoint.js';
export { stepRandomness, stepLatents, dropoutMasks, sampleLatents } from './randomness.js';
export { renderLossSvg, type CurvePoint } from './loss-plot.js';
