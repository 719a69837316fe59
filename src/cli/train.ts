import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, extname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PRESET_NAMES, buildSpec } from '../config/presets.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { ENGINE_CHOICES, createEngine, type EngineChoice } from '../engines/create-engine.js';
import { parseTrainDevice } from '../engines/device.js';
import { DEFAULT_EMA_DECAY } from '../engines/ema.js';
import { UsageError, assertInteger, assertOneOf } from '../errors.js';
import { legacyNote } from '../data/dataset-file.js';
import { DEFAULT_TRAIN_EVAL_N, createTrainingEvalHook } from '../eval/training-eval.js';
import {
  Trainer,
  conditionalSpec,
  openRun,
  readRunConfig,
  type LogEntry,
  type OpenedRun,
  type RunConfig,
  type TrainCallbacks,
  type TrainResult,
  type TrainStart,
} from '../train/index.js';
import { randomSeed } from '../util/rng.js';
import { loadDistAddon } from '../bindings/torch.js';
import {
  DIST_BACKENDS,
  chooseBackend,
  createProcessGroup,
  distError,
  groupOptionsFromEnv,
  readLaunchEnv,
  resolveDistOptions,
  spawnLocalRanks,
  type DistOptions,
  type LaunchEnv,
  type ProcessGroup,
} from '../distributed/index.js';
import { TorchEngine } from '../engines/torch/torch-engine.js';
import type { TrainingEngine } from '../engines/engine.js';
import { pickDataset, pickRun } from './defaults.js';
import { Screen } from './output.js';
import { Progress } from '../util/progress.js';
import { StepTimer, catchStopSignals } from './signals.js';

/** `celeba-gan train`: resolve defaults, open (check) the run, train with a progress bar, save on signals. */

interface TrainArgs {
  data?: string;
  out?: string;
  preset?: string;
  width?: number;
  epochs?: number;
  steps?: number;
  'batch-size'?: number;
  engine: string;
  backend?: string;
  device?: string;
  threads?: number;
  amp: boolean;
  seed?: number;
  'sample-every': number;
  'checkpoint-every': number;
  keep: number;
  'log-every': number;
  resume: boolean;
  'dry-run': boolean;
  'verify-data': boolean;
  'eval-every': number;
  'eval-n': number;
  ema?: number;
  nproc?: number;
  'dist-timeout'?: number;
  'dist-backend'?: string;
  'sync-bn': boolean;
  conditional?: boolean;
}

/** Set by `--nproc`'s launcher in its ranks' environment, so a rank knows --nproc is not for it. */
const LOCAL_RANK_MARKER = 'CELEBA_GAN_NPROC_RANK';

const RUNS_DIR = 'runs';

/** runs/<data>-<preset>, then -2, -3, ... for a new run; for --resume the newest existing one. */
export function defaultRunDir(dataPath: string, preset: string | undefined, resume: boolean, runsDir = RUNS_DIR): { path: string; why: string } {
  const base = basename(dataPath, extname(dataPath));
  if (resume) {
    const presets = preset ? [preset] : [...PRESET_NAMES];
    const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(${presets.join('|')})(-\\d+)?$`);
    const found = existsSync(runsDir)
      ? readdirSync(runsDir)
          .filter((n) => pattern.test(n) && existsSync(join(runsDir, n, 'run.json')))
          .map((n) => ({ path: join(runsDir, n), mtime: statSync(join(runsDir, n)).mtimeMs }))
          .sort((a, b) => b.mtime - a.mtime)
      : [];
    if (found.length === 0) {
      throw new UsageError('E_NO_RUN', `--resume without --out: no run for data set ${base} in ${runsDir}/`, {
        hint: 'Pass the run folder with --out, or leave out --resume to start a new run.',
      });
    }
    return { path: found[0]!.path, why: `newest run of ${base} in ${runsDir}/` };
  }
  const stem = join(runsDir, `${base}-${preset ?? 'seed28'}`);
  let path = stem;
  for (let i = 2; existsSync(path); i++) path = `${stem}-${i}`;
  return { path, why: path === stem ? `default for ${basename(dataPath)}` : `default for ${basename(dataPath)}; ${stem} exists` };
}

function fmt(v: number, digits = 4): string {
  return Number.isFinite(v) ? v.toFixed(digits) : String(v);
}

export function formatLogLine(e: LogEntry, totalSteps: number): string {
  const allReduce = e.allReduceMs === undefined ? '' : `, all-reduce ${e.allReduceMs.toFixed(1)} ms`;
  return `step ${e.step}/${totalSteps} epoch ${e.epoch} | loss_D ${fmt(e.lossD)} loss_G ${fmt(e.lossG)} | D(x) ${fmt(e.dReal, 3)} D(G(z)) ${fmt(e.dFake, 3)} | ${e.imagesPerSec.toFixed(1)} img/s${allReduce}`;
}

/** libtorch threads per rank under a launcher: the machine's cores shared by its local ranks. */
function ranksThreads(): number {
  const local = Number(process.env.LOCAL_WORLD_SIZE);
  return Math.max(1, Math.floor(availableParallelism() / (Number.isInteger(local) && local > 0 ? local : 1)));
}

/** Rendezvous with the other ranks (a rank started by --nproc, torchrun, a PyTorchJob or SLURM). */
async function joinGroup(launch: LaunchEnv, dist: DistOptions, device: string | undefined): Promise<ProcessGroup> {
  let available: readonly string[];
  try {
    available = loadDistAddon().backends;
  } catch (err) {
    throw distError(err);
  }
  const { backend } = chooseBackend(dist.backend, device ?? 'cpu', available);
  return createProcessGroup(groupOptionsFromEnv(launch, { timeoutS: dist.timeoutS, backend }));
}

/**
 * The data set, run folder and seed of this run: the one place their defaults are chosen, each
 * said out loud. A resume reads its data set from run.json; a new run picks the newest data set.
 */
interface RunChoice {
  dataPath: string;
  outDir: string;
  /** undefined on a resume: the run's own seed. */
  seed: number | undefined;
  /** run.json of the run resumed, or null. */
  existing: RunConfig | null;
}

function chooseRun(argv: TrainArgs, screen: Screen): RunChoice {
  let outDir = argv.out;
  if (argv.resume && outDir === undefined) {
    const pick = argv.data !== undefined ? defaultRunDir(argv.data, argv.preset, true) : pickRun();
    outDir = pick.path;
    screen.say(`resuming ${outDir} (${pick.why})`);
  }
  const existing = argv.resume && outDir !== undefined ? readRunConfig(outDir) : null;
  let dataPath = argv.data;
  if (dataPath === undefined && existing) {
    dataPath = existing.data.path;
    screen.say(`data ${dataPath} (from ${outDir}/run.json)`);
  }
  if (dataPath === undefined) {
    const pick = pickDataset();
    dataPath = pick.path;
    screen.say(`data ${dataPath} (${pick.why})`);
  }
  if (outDir === undefined) {
    const pick = defaultRunDir(dataPath, argv.preset, false);
    outDir = pick.path;
    screen.say(`run folder ${outDir} (${pick.why})`);
  }
  return { dataPath, outDir, seed: argv.seed ?? (existing ? undefined : randomSeed()), existing };
}

/** The flags a rank needs so that every rank trains the run chosen here (--nproc's launcher). */
function chosenFlags(argv: TrainArgs, run: RunChoice): string[] {
  return [
    ...(argv.data === undefined && !run.existing ? ['--data', run.dataPath] : []),
    ...(argv.out === undefined ? ['--out', run.outDir] : []),
    ...(argv.seed === undefined && !argv.resume && run.seed !== undefined ? ['--seed', String(run.seed)] : []),
    ...(argv.threads === undefined ? ['--threads', '1'] : []),
  ];
}

/**
 * `--nproc N`: start N ranks of this same command, each with the launcher environment and the
 * run's folder, data set and seed fixed here so every rank trains the same run. Ctrl-C/SIGTERM
 * are forwarded (rank 0 saves a checkpoint); returns 0, 130/143, or the failed rank's code.
 */
async function launchLocalRanks(argv: TrainArgs, dist: DistOptions, screen: Screen): Promise<number> {
  const nproc = dist.nproc!;
  const extra = chosenFlags(argv, chooseRun(argv, screen));
  const threads = argv.threads ?? 1;
  screen.say(
    `starting ${nproc} rank${nproc === 1 ? '' : 's'} on 127.0.0.1 (torch engine, ${threads} thread${threads === 1 ? '' : 's'} each${argv.threads === undefined ? '; --threads to change' : ''})`,
  );
  const ranks = await spawnLocalRanks({
    nproc,
    command: process.execPath,
    args: [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), ...extra],
    env: { ...process.env, [LOCAL_RANK_MARKER]: '1' },
    killGraceMs: Math.max(10_000, dist.timeoutS * 1000),
  });
  const stop = catchStopSignals({
    finishing: () => `asking the ${nproc} ranks to finish the current step; rank 0 saves a checkpoint`,
    quitting: () => 'killing every rank; the last checkpoint stays',
    onStop: (signal) => ranks.stop(signal),
    exit: () => ranks.stop('SIGINT'),
  });
  try {
    const result = await ranks.done;
    if (result.exitCode !== 0) screen.say(result.summary);
    return result.exitCode;
  } finally {
    stop.dispose();
  }
}

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'Train a GAN on a prepared data set (TensorFlow.js or the native libtorch engine)',
  builder: (y: Argv) =>
    y
      .option('data', { type: 'string', describe: 'Data set (.cgds from `prepare`); default: the newest in data/' })
      .option('out', { type: 'string', describe: 'Run folder; default: runs/<data set>-<preset> (-2, -3... if taken)' })
      .option('preset', { type: 'string', choices: [...PRESET_NAMES], describe: "Architecture preset (default seed28; on --resume the run's)" })
      .option('width', { type: 'number', describe: "Channel width multiplier, e.g. 0.0625 for a tiny model (default 1; on --resume the run's)" })
      .option('epochs', { type: 'number', describe: 'Passes over the data set in all (default 20)' })
      .option('steps', { type: 'number', describe: 'Training steps in all (instead of --epochs)' })
      .option('batch-size', { type: 'number', describe: "Images per step (default: the preset's, 64 for seed28)" })
      .option('engine', { type: 'string', default: 'auto', choices: [...ENGINE_CHOICES], describe: 'auto = torch when its addon loads, else tfjs' })
      .option('backend', { type: 'string', describe: 'tfjs: tfjs-node-gpu | tfjs-node | cpu (default: the best that loads)' })
      .option('device', { type: 'string', describe: 'torch engine: cpu | cuda | cuda:N' })
      .option('threads', { type: 'number', describe: 'CPU threads (torch engine)' })
      .option('amp', { type: 'boolean', default: false, describe: 'torch engine on CUDA: mixed precision (bfloat16 autocast)' })
      .option('seed', { type: 'number', describe: 'Seed for weights, data order, noise, dropout (default: random, printed and saved)' })
      .option('sample-every', { type: 'number', default: 100, describe: 'Save a 5x5 fixed-noise grid every N steps (0: never)' })
      .option('checkpoint-every', { type: 'number', default: 1000, describe: 'Checkpoint every N steps (also at the end and on Ctrl-C)' })
      .option('keep', { type: 'number', default: 3, describe: 'Keep the newest K checkpoints' })
      .option('log-every', { type: 'number', default: 50, describe: 'Log a line (and a metrics.jsonl entry) every N steps' })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue the run in --out from its newest checkpoint, exactly' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Train one step only (checks the whole setup quickly)' })
      .option('verify-data', { type: 'boolean', default: true, describe: "Check the data set's pixel checksum before training" })
      .option('eval-every', {
        type: 'number',
        default: 0,
        describe:
          'Every N steps: SWD and colour distance vs a fixed slice of the data, beside the real-halves baseline, to metrics.jsonl and loss.svg (0: off)',
      })
      .option('eval-n', { type: 'number', default: DEFAULT_TRAIN_EVAL_N, describe: 'Images per set for --eval-every (the data set needs 2n)' })
      .option('conditional', {
        type: 'boolean',
        describe: "Attribute-conditional: the data set's labels are appended to z and projected in D (needs a labelled data set; on --resume the run's)",
      })
      .option('ema', {
        type: 'number',
        describe: `Keep an EMA generator with this decay (warmed up: min(decay, (1+t)/(10+t))); 0: none. Default ${DEFAULT_EMA_DECAY}, on --resume the run's`,
      })
      .example('$0 train', 'train seed28 on the newest data set in data/')
      .example('$0 train --data data/celeba-28.cgds --out runs/celeba28 --epochs 20', 'the original 28x28 setup')
      .example('$0 train --preset dcgan64 --data data/celeba-64.cgds --engine tfjs', 'the 64x64 PyTorch DCGAN reference on TensorFlow.js')
      .example('$0 train --width 0.0625 --steps 200 --sample-every 20', 'a tiny model, quickly')
      .example('$0 train --out runs/celeba28 --resume --epochs 30', 'continue a run exactly where it stopped')
      .example('$0 train --conditional --data data/synthetic-28.cgds', "faces on request: train on the data set's attributes (then generate --attr)")
      .example('$0 train --eval-every 2000 --eval-n 300', 'log SWD every 2000 steps (a collapsing run shows in loss.svg)')
      .option('nproc', { type: 'number', describe: 'Data-parallel: start N local ranks (torch engine; Gloo on the CPU, 1 thread each unless --threads)' })
      .option('dist-timeout', {
        type: 'number',
        describe: 'Data-parallel: seconds before a lost rank fails the others (rendezvous and each all-reduce; default 60)',
      })
      .option('sync-bn', {
        type: 'boolean',
        default: false,
        describe: 'Data-parallel: batch norm over the global batch (statistics all-reduced, like PyTorch SyncBatchNorm); default: per rank, as DDP',
      })
      .option('dist-backend', {
        type: 'string',
        choices: [...DIST_BACKENDS],
        describe: 'Data-parallel: auto (NCCL on CUDA when built in, else Gloo) | gloo | nccl',
      })
      .example('$0 train --ema 0', 'keep no EMA generator (samples and export use the raw weights)')
      .example('$0 train --engine torch --nproc 2 --batch-size 32', 'data-parallel on 2 local ranks: global batch 64')
      .example(
        'python3 -m torch.distributed.run --nproc_per_node 2 --no_python celeba-gan train --engine torch --out runs/ddp --seed 1',
        'the same under torchrun (also PyTorchJob, SLURM: docs/distributed.md)',
      ),
  handler: async (argv) => {
    const flags = checkFlags(argv);
    const screen = new Screen();
    if (flags.dist.nproc !== undefined && !flags.launch) {
      process.exitCode = await launchLocalRanks(argv, flags.dist, screen);
      return;
    }
    const run = chooseRun(argv, screen);
    const spec = runSpec(argv, run.existing, run.dataPath);
    // Data-parallel: rendezvous first; rank 0 opens (and, after a crash, repairs) the run before
    // the others read it, and writes nothing until every rank has opened it (Trainer.run).
    const group = flags.launch ? await joinGroup(flags.launch, flags.dist, argv.device) : null;
    try {
      // Ranks other than 0 train quietly; their errors still reach stderr through main.
      const rankScreen = group && group.rank !== 0 ? new Screen({ quiet: true }) : screen;
      if (group && group.rank !== 0) await group.barrier();
      const opened = await openRun({
        spec,
        dataPath: run.dataPath,
        outDir: run.outDir,
        seed: run.seed,
        batchSize: argv['batch-size'],
        steps: argv['dry-run'] ? 1 : argv.steps,
        epochs: argv['dry-run'] ? undefined : argv.epochs,
        resume: argv.resume,
        verifyData: argv['verify-data'],
        sampleEvery: argv['sample-every'],
        checkpointEvery: argv['checkpoint-every'],
        keep: argv.keep,
        logEvery: argv['dry-run'] ? 1 : argv['log-every'],
        ...(argv.ema === undefined ? {} : { ema: argv.ema }),
        ...(group ? { dist: { rank: group.rank, worldSize: group.worldSize } } : {}),
      });
      if (group?.rank === 0) await group.barrier();
      if (argv['dry-run']) rankScreen.say('--dry-run: training one step only');
      const dataNote = legacyNote(opened.reader.header);
      if (dataNote) rankScreen.say(`note: ${run.dataPath}: ${dataNote}`);
      const engine = await openEngine(argv, flags, spec, opened, group);
      try {
        rankScreen.say(`engine ${engine.info.engine} on ${engine.info.backend} (${engine.info.device})`);
        for (const note of engine.info.notes) rankScreen.say(`  ${note}`);
        await trainWithProgress(argv, flags, opened, engine, group, rankScreen);
      } finally {
        engine.dispose();
      }
    } finally {
      group?.close();
    }
  },
};

interface Flags {
  engine: EngineChoice;
  evalEvery: number;
  evalN: number;
  dist: DistOptions;
  /** The launcher's environment when this process is one rank of several (RANK, WORLD_SIZE...). */
  launch: LaunchEnv | null;
}

/** Every flag and combination checked before anything loads. */
function checkFlags(argv: TrainArgs): Flags {
  const engine = assertOneOf<EngineChoice>('engine', argv.engine, ENGINE_CHOICES);
  if (argv.device !== undefined) parseTrainDevice(argv.device);
  const evalEvery = assertInteger('eval-every', argv['eval-every'], 0);
  const evalN = assertInteger('eval-n', argv['eval-n'], 2);
  // Both are checked even when only one is used (--dry-run trains one step whatever they say).
  if (argv.steps !== undefined) assertInteger('--steps', argv.steps, 1);
  if (argv.epochs !== undefined) assertInteger('--epochs', argv.epochs, 1);
  const dist = resolveDistOptions({ nproc: argv.nproc, distTimeout: argv['dist-timeout'], distBackend: argv['dist-backend'] });
  const launch = readLaunchEnv();
  if ((dist.nproc !== undefined || launch) && engine === 'tfjs') {
    throw new UsageError('E_BAD_ARGUMENT', "Data-parallel training (--nproc, or a launcher's RANK/WORLD_SIZE) needs the torch engine, not tfjs", {
      hint: 'Use --engine torch (build the addon with npm run build:native).',
    });
  }
  if (argv['sync-bn'] && dist.nproc === undefined && !launch) {
    throw new UsageError('E_BAD_ARGUMENT', '--sync-bn synchronises batch norm across data-parallel ranks; this is a single-process run', {
      hint: 'Add --nproc N (or run under torchrun), or leave --sync-bn out.',
    });
  }
  if (dist.nproc !== undefined && launch && process.env[LOCAL_RANK_MARKER] !== '1') {
    throw new UsageError(
      'E_BAD_ARGUMENT',
      `--nproc ${dist.nproc} starts its own ranks, but this process is already rank ${launch.rank} of ${launch.worldSize} (RANK and WORLD_SIZE are set)`,
      {
        hint: 'Leave --nproc out under torchrun, a PyTorchJob or SLURM: the launcher starts the ranks.',
      },
    );
  }
  if (launch && !argv.resume && (argv.seed === undefined || argv.out === undefined)) {
    throw new UsageError(
      'E_BAD_ARGUMENT',
      `rank ${launch.rank} of ${launch.worldSize}: a new data-parallel run needs --seed and --out given, so that every rank trains the same run`,
      {
        hint: 'Add --seed N --out runs/NAME to the command every rank runs (--nproc fills them in itself).',
      },
    );
  }
  return { engine, evalEvery, evalN, dist, launch };
}

/**
 * What this run trains. A resumed run trains the spec its run.json records (the demo's recipe, a
 * conditional spec: more than a preset and a width), unless --preset or --width asks for another
 * architecture, which openRun then refuses with E_CHECKPOINT_MISMATCH; a new run, the preset's.
 */
function runSpec(argv: TrainArgs, existing: RunConfig | null, dataPath: string): ArchitectureSpec {
  const preset = argv.preset ?? existing?.preset ?? 'seed28';
  const width = argv.width ?? existing?.width ?? 1;
  const wasConditional = existing?.spec.conditioning !== undefined;
  const conditional = argv.conditional ?? wasConditional;
  if (existing && existing.preset === preset && existing.width === width && conditional === wasConditional) return existing.spec;
  // --conditional: the data set's attributes, in its order, with their training frequencies.
  return conditional ? conditionalSpec(preset, width, dataPath) : buildSpec(preset, width);
}

/** The engine asked for, joined to the process group when there is one; the data reader is closed if it fails. */
async function openEngine(argv: TrainArgs, flags: Flags, spec: ArchitectureSpec, opened: OpenedRun, group: ProcessGroup | null): Promise<TrainingEngine> {
  let engine: TrainingEngine;
  try {
    engine = await createEngine(spec, {
      engine: flags.engine,
      backend: argv.backend,
      device: argv.device,
      threads: argv.threads ?? (flags.launch ? ranksThreads() : undefined),
      amp: argv.amp || undefined,
    });
  } catch (err) {
    opened.reader.close();
    throw err;
  }
  if (!group) return engine;
  if (!(engine instanceof TorchEngine)) {
    opened.reader.close();
    engine.dispose();
    throw new UsageError('E_BAD_ARGUMENT', `Data-parallel training needs the torch engine; --engine ${flags.engine} chose ${engine.info.engine}`, {
      hint: 'Use --engine torch (build the addon with npm run build:native).',
    });
  }
  await engine.setGroup(group, { syncBn: argv['sync-bn'] });
  return engine;
}

/** Train with a progress bar; the first Ctrl-C/SIGTERM finishes the step and saves a checkpoint. */
async function trainWithProgress(
  argv: TrainArgs,
  flags: Flags,
  opened: OpenedRun,
  engine: TrainingEngine,
  group: ProcessGroup | null,
  screen: Screen,
): Promise<void> {
  const evalHook = flags.evalEvery > 0 ? createTrainingEvalHook({ every: flags.evalEvery, n: flags.evalN }) : null;
  if (evalHook)
    screen.say(
      `eval every ${flags.evalEvery} steps: SWD and colour distance, ${flags.evalN} generated vs ${flags.evalN} fixed data images, beside 2 x ${flags.evalN} real halves`,
    );
  const clock = new StepTimer();
  const trainer = new Trainer(opened, engine, trainEvents(argv, engine, clock, screen), evalHook ? [evalHook] : [], group ? { group } : undefined);
  // The first signal's message says how long the current step took last time, since a step
  // can take minutes on a slow engine.
  const stop = catchStopSignals({
    finishing: () => `finishing the current step (${clock.lastStepText()}) and saving a checkpoint`,
    quitting: () => 'the last checkpoint stays; the current step is lost',
    print: (line) => screen.log(line),
    onStop: (signal) => trainer.stop(signal),
  });
  try {
    const result = await trainer.run();
    screen.endBar();
    report(result, opened.config.outDir, screen);
    if (result.status === 'stopped' && stop.exitCode !== null) process.exitCode = stop.exitCode;
  } finally {
    screen.endBar();
    stop.dispose();
    await evalHook?.dispose();
  }
}

/** What the run says as it goes: the start, steps on the bar, log lines, samples and checkpoints above it. */
function trainEvents(argv: TrainArgs, engine: TrainingEngine, clock: StepTimer, screen: Screen): TrainCallbacks {
  let totalSteps = 0;
  let startStep = 0;
  let bar: Progress | null = null;
  return {
    onStart: (s) => {
      totalSteps = s.totalSteps;
      startStep = s.startStep;
      sayStart(s, argv, engine, screen);
      if (s.startStep >= s.totalSteps) screen.say(`already at step ${s.startStep}; nothing to train (raise --steps or --epochs)`);
      else if (!screen.quiet) bar = screen.startBar(new Progress({ label: 'train', total: s.totalSteps - s.startStep, unit: 'steps' }));
      clock.start();
    },
    onStep: (step, total, m) => {
      clock.step();
      bar?.update(step - startStep, `step ${step}/${total} D ${fmt(m.lossD, 3)} G ${fmt(m.lossG, 3)}`);
    },
    // Above the bar as they are; without one (a quiet rank, nothing to train) as notes.
    onLog: (e) => (bar ? screen.log(formatLogLine(e, totalSteps)) : screen.say(formatLogLine(e, totalSteps))),
    onSample: (path) => screen.log(`  samples ${path}`),
    onCheckpoint: (dir) => screen.log(`  checkpoint ${dir}`),
    onCheckpointFailed: (err, step) =>
      screen.log(
        `  warning: the checkpoint at step ${step} was not saved [${err.code}]: ${err.message}; training goes on and the next checkpoint tries again (the earlier ones are intact)`,
      ),
    onEval: (name, step, values) =>
      screen.log(
        `  ${name} at step ${step}: ${Object.entries(values)
          .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : v}`)
          .join(', ')}`,
      ),
  };
}

function sayStart(s: TrainStart, argv: TrainArgs, engine: TrainingEngine, screen: Screen): void {
  screen.say(
    `${s.resumedFrom !== null ? `resuming ${s.runDir} at step ${s.resumedFrom}` : `new run ${s.runDir}`}: ${s.run.preset} width ${s.run.width}, seed ${s.run.seed}, ` +
      `batch ${s.run.batchSize}, ${s.stepsPerEpoch} steps/epoch (${s.droppedPerEpoch} images dropped per epoch), target step ${s.totalSteps}`,
  );
  for (const line of s.recovered) screen.say(`after an interrupted run: ${line}`);
  const attributes = s.run.spec.conditioning?.attributes;
  if (attributes) {
    screen.say(
      `conditional on ${attributes.length} attribute${attributes.length === 1 ? '' : 's'} (${attributes.join(', ')}): samples have a row per attribute setting; generate with --attr`,
    );
  }
  if (s.ema.decay > 0) screen.say(`EMA generator, decay ${s.ema.decay}: samples/step-N.png (raw) and step-N-ema.png; export writes the EMA generator`);
  if (s.ema.note) screen.say(`note: ${s.ema.note}`);
  if (s.checkpointEngine && s.checkpointEngine !== engine.info.engine) {
    screen.say(
      `note: the checkpoint was written by the ${s.checkpointEngine} engine; ${engine.info.engine} continues it, but not bit-identically (each engine draws its own noise)`,
    );
  }
  if (s.dist.worldSize > 1) {
    screen.say(
      `data-parallel: ${s.dist.worldSize} ranks, global batch ${s.dist.worldSize} x ${s.run.batchSize}, batch norm ${argv['sync-bn'] ? 'over the global batch (--sync-bn)' : 'per rank'}; ` +
        `identical initial weights checked (SHA-256 ${s.dist.weightsDigest?.slice(0, 16)}…); rank 0 writes the run`,
    );
  }
  if (s.dist.note) screen.say(`note: ${s.dist.note}`);
}

function report(result: TrainResult, outDir: string, screen: Screen): void {
  const where = result.checkpoint ? `; checkpoint ${result.checkpoint}` : '';
  if (result.status === 'stopped') {
    screen.say(`stopped by ${result.stopReason} at step ${result.step}${where}. Continue with: celeba-gan train --out ${outDir} --resume`);
    return;
  }
  screen.result(
    `trained ${outDir} to step ${result.step} in ${result.seconds.toFixed(1)} s${where}`,
    `  samples ${join(outDir, 'samples')}/, curves ${join(outDir, 'loss.svg')}, metrics ${join(outDir, 'metrics.jsonl')}`,
    `  next: celeba-gan export --onnx --run ${outDir}`,
  );
}
