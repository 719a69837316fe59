/**
 * Data-parallel training across processes and machines: the launcher environment (env.ts), the
 * run's options (options.ts), the c10d process group (group.ts, over native/src/dist.cc) and the
 * local `--nproc` spawner (spawn.ts).
 */
export { LAUNCH_VARIABLES, readLaunchEnv, type LaunchEnv } from './env.js';
export {
  DEFAULT_DIST_TIMEOUT_S,
  DIST_BACKENDS,
  MAX_NPROC,
  chooseBackend,
  resolveDistOptions,
  type DistBackend,
  type DistBackendChoice,
  type DistOptions,
} from './options.js';
export {
  DistributedError,
  ProcessGroup,
  checkIdenticalWeights,
  createProcessGroup,
  distError,
  groupOptionsFromEnv,
  weightsDigest,
  type ProcessGroupOptions,
} from './group.js';
export { freePort, spawnLocalRanks, type LocalRanks, type RankExit, type SpawnRanksOptions, type SpawnResult, type StopSignal } from './spawn.js';
