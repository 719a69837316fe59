import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, extname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PRESET_NAMES, buildSpec } from '../config/presets.js';
import { ENGINE_CHOICES, createEngine, type EngineChoice } from '../engines/create-engine.js';
import { parseTrainDevice } from '../engines/device.js';
import { DEFAULT_EMA_DECAY } from '../engines/ema.js';
import { UsageError, assertInteger, assertOneOf, escapeControl } from '../errors.js';
import { legacyNote } from '../data/dataset-file.js';
import { DEFAULT_TRAIN_EVAL_N, createTrainingEvalHook } from '../eval/training-eval.js';
import { Trainer, openRun, readRunConfig, type LogEntry } from '../train/index.js';
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
import { pickDataset, pickRun } from './defaults.js';
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
}

/** Set by `--nproc`'s launcher in its ranks' environment, so a rank knows --nproc is not for it. */
const LOCAL_RANK_MARKER = 'CELEBA_GAN_NPROC_RANK';

const RUNS_DIR = 'runs';

/** Set on data-parallel ranks other than 0: they train quietly (errors still reach stderr). */
let silent = false;

function say(line: string): void {
  if (silent) return;
  process.stderr.write(escapeControl(`celeba-gan: ${line}\n`));
}

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
 * `--nproc N`: start N ranks of this same command, each with the launcher environment and the
 * run's folder, data set and seed fixed here so every rank trains the same run. Ctrl-C/SIGTERM
 * are forwarded (rank 0 saves a checkpoint); returns 0, 130/143, or the failed rank's code.
 */
async function launchLocalRanks(argv: TrainArgs, dist: DistOptions): Promise<number> {
  const nproc = dist.nproc!;
  const extra: string[] = [];
  let outDir = argv.out;
  let dataPath = argv.data;
  if (argv.resume && !outDir) {
    const pick = dataPath ? defaultRunDir(dataPath, argv.preset, true) : pickRun();
    outDir = pick.path;
    say(`resuming ${outDir} (${pick.why})`);
  }
  if (!dataPath && !(argv.resume && outDir && existsSync(join(outDir, 'run.json')))) {
    const pick = pickDataset();
    dataPath = pick.path;
    say(`data ${dataPath} (${pick.why})`);
    extra.push('--data', dataPath);
  }
  if (!outDir) {
    const pick = defaultRunDir(dataPath!, argv.preset, false);
    outDir = pick.path;
    say(`run folder ${outDir} (${pick.why})`);
  }
  if (argv.out === undefined) extra.push('--out', outDir);
  if (argv.seed === undefined && !argv.resume) extra.push('--seed', String(randomSeed()));
  if (argv.threads === undefined) extra.push('--threads', '1');
  say(`starting ${nproc} rank${nproc === 1 ? '' : 's'} on 127.0.0.1 (torch engine, ${argv.threads ?? 1} thread${(argv.threads ?? 1) === 1 ? '' : 's'} each${argv.threads === undefined ? '; --threads to change' : ''})`);
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
    if (result.exitCode !== 0) say(result.summary);
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
      .option('preset', { type: 'string', choices: [...PRESET_NAMES], describe: 'Architecture preset (default seed28; on --resume the run\'s)' })
      .option('width', { type: 'number', describe: 'Channel width multiplier, e.g. 0.0625 for a tiny model (default 1; on --resume the run\'s)' })
      .option('epochs', { type: 'number', describe: 'Passes over the data set in all (default 20)' })
      .option('steps', { type: 'number', describe: 'Training steps in all (instead of --epochs)' })
      .option('batch-size', { type: 'number', describe: 'Images per step (default: the preset\'s, 64 for seed28)' })
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
      .option('verify-data', { type: 'boolean', default: true, describe: 'Check the data set\'s pixel checksum before training' })
      .option('eval-every', { type: 'number', default: 0, describe: 'Every N steps: SWD and colour distance vs a fixed slice of the data, beside the real-halves baseline, to metrics.jsonl and loss.svg (0: off)' })
      .option('eval-n', { type: 'number', default: DEFAULT_TRAIN_EVAL_N, describe: 'Images per set for --eval-every (the data set needs 2n)' })
      .option('ema', {
        type: 'number',
        describe: `Keep an EMA generator with this decay (warmed up: min(decay, (1+t)/(10+t))); 0: none. Default ${DEFAULT_EMA_DECAY}, on --resume the run's`,
      })
      .example('$0 train', 'train seed28 on the newest data set in data/')
      .example('$0 train --data data/celeba-28.cgds --out runs/celeba28 --epochs 20', 'the original 28x28 setup')
      .example('$0 train --preset dcgan64 --data data/celeba-64.cgds --engine tfjs', 'the 64x64 PyTorch DCGAN reference on TensorFlow.js')
      .example('$0 train --width 0.0625 --steps 200 --sample-every 20', 'a tiny model, quickly')
      .example('$0 train --out runs/celeba28 --resume --epochs 30', 'continue a run exactly where it stopped')
      .example('$0 train --eval-every 2000 --eval-n 300', 'log SWD every 2000 steps (a collapsing run shows in loss.svg)')
      .option('nproc', { type: 'number', describe: 'Data-parallel: start N local ranks (torch engine; Gloo on the CPU, 1 thread each unless --threads)' })
      .option('dist-timeout', { type: 'number', describe: 'Data-parallel: seconds before a lost rank fails the others (rendezvous and each all-reduce; default 60)' })
      .option('sync-bn', { type: 'boolean', default: false, describe: 'Data-parallel: batch norm over the global batch (statistics all-reduced, like PyTorch SyncBatchNorm); default: per rank, as DDP' })
      .option('dist-backend', { type: 'string', choices: [...DIST_BACKENDS], describe: 'Data-parallel: auto (NCCL on CUDA when built in, else Gloo) | gloo | nccl' })
      .example('$0 train --ema 0', 'keep no EMA generator (samples and export use the raw weights)')
      .example('$0 train --engine torch --nproc 2 --batch-size 32', 'data-parallel on 2 local ranks: global batch 64')
      .example('python3 -m torch.distributed.run --nproc_per_node 2 --no_python celeba-gan train --engine torch --out runs/ddp --seed 1', 'the same under torchrun (also PyTorchJob, SLURM: README)'),
  handler: async (argv) => {
    const engineChoice = assertOneOf<EngineChoice>('engine', argv.engine, ENGINE_CHOICES);
    if (argv.device !== undefined) parseTrainDevice(argv.device);
    const evalEvery = assertInteger('eval-every', argv['eval-every'], 0);
    const evalN = assertInteger('eval-n', argv['eval-n'], 2);
    const distOpts = resolveDistOptions({ nproc: argv.nproc, distTimeout: argv['dist-timeout'], distBackend: argv['dist-backend'] });
    const launch = readLaunchEnv();
    const fromNproc = process.env[LOCAL_RANK_MARKER] === '1';
    if ((distOpts.nproc !== undefined || launch) && engineChoice === 'tfjs') {
      throw new UsageError('E_BAD_ARGUMENT', 'Data-parallel training (--nproc, or a launcher\'s RANK/WORLD_SIZE) needs the torch engine, not tfjs', { hint: 'Use --engine torch (build the addon with npm run build:native).' });
    }
    if (argv['sync-bn'] && distOpts.nproc === undefined && !launch) {
      throw new UsageError('E_BAD_ARGUMENT', '--sync-bn synchronises batch norm across data-parallel ranks; this is a single-process run', {
        hint: 'Add --nproc N (or run under torchrun), or leave --sync-bn out.',
      });
    }
    if (distOpts.nproc !== undefined && launch && !fromNproc) {
      throw new UsageError('E_BAD_ARGUMENT', `--nproc ${distOpts.nproc} starts its own ranks, but this process is already rank ${launch.rank} of ${launch.worldSize} (RANK and WORLD_SIZE are set)`, {
        hint: 'Leave --nproc out under torchrun, a PyTorchJob or SLURM: the launcher starts the ranks.',
      });
    }
    if (distOpts.nproc !== undefined && !launch) {
      process.exitCode = await launchLocalRanks(argv, distOpts);
      return;
    }
    if (launch && !argv.resume && (argv.seed === undefined || argv.out === undefined)) {
      throw new UsageError('E_BAD_ARGUMENT', `rank ${launch.rank} of ${launch.worldSize}: a new data-parallel run needs --seed and --out given, so that every rank trains the same run`, {
        hint: 'Add --seed N --out runs/NAME to the command every rank runs (--nproc fills them in itself).',
      });
    }
    // A resume reads its data set from run.json; a new run picks the newest data set.
    let dataPath = argv.data;
    let outDir = argv.out;
    if (argv.resume && !outDir) {
      const pick = dataPath ? defaultRunDir(dataPath, argv.preset, true) : pickRun();
      outDir = pick.path;
      say(`resuming ${outDir} (${pick.why})`);
    }
    const existing = argv.resume && outDir ? readRunConfig(outDir) : null;
    if (!dataPath && existing) {
      dataPath = existing.data.path;
      say(`data ${dataPath} (from ${outDir}/run.json)`);
    }
    if (!dataPath) {
      const pick = pickDataset();
      dataPath = pick.path;
      say(`data ${dataPath} (${pick.why})`);
    }
    if (!outDir) {
      const pick = defaultRunDir(dataPath, argv.preset, false);
      outDir = pick.path;
      say(`run folder ${outDir} (${pick.why})`);
    }
    const preset = argv.preset ?? existing?.preset ?? 'seed28';
    const width = argv.width ?? existing?.width ?? 1;
    const spec = buildSpec(preset, width);
    const seed = argv.seed ?? (existing ? undefined : randomSeed());
    // Both are checked even when only one is used (--dry-run trains one step whatever they say).
    if (argv.steps !== undefined) assertInteger('--steps', argv.steps, 1);
    if (argv.epochs !== undefined) assertInteger('--epochs', argv.epochs, 1);
    const steps = argv['dry-run'] ? 1 : argv.steps;

    // Data-parallel: rendezvous first; rank 0 opens (and, after a crash, repairs) the run before
    // the others read it, and writes nothing until every rank has opened it (Trainer.run).
    const group = launch ? await joinGroup(launch, distOpts, argv.device) : null;
    if (group && group.rank !== 0) {
      silent = true;
      await group.barrier();
    }
    try {
      const opened = await openRun({
        spec,
        dataPath,
        outDir,
        seed,
        batchSize: argv['batch-size'],
        steps,
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
      if (argv['dry-run']) say('--dry-run: training one step only');
      const dataNote = legacyNote(opened.reader.header);
      if (dataNote) say(`note: ${dataPath}: ${dataNote}`);

      let engine;
      try {
        engine = await createEngine(spec, { engine: engineChoice, backend: argv.backend, device: argv.device, threads: argv.threads ?? (launch ? ranksThreads() : undefined), amp: argv.amp || undefined });
      } catch (err) {
        opened.reader.close();
        throw err;
      }
      if (group) {
        if (!(engine instanceof TorchEngine)) {
          opened.reader.close();
          engine.dispose();
          throw new UsageError('E_BAD_ARGUMENT', `Data-parallel training needs the torch engine; --engine ${engineChoice} chose ${engine.info.engine}`, { hint: 'Use --engine torch (build the addon with npm run build:native).' });
        }
        await engine.setGroup(group, { syncBn: argv['sync-bn'] });
      }
      say(`engine ${engine.info.engine} on ${engine.info.backend} (${engine.info.device})`);
      for (const note of engine.info.notes) say(`  ${note}`);

      const evalHook = evalEvery > 0 ? createTrainingEvalHook({ every: evalEvery, n: evalN }) : null;
      if (evalHook) say(`eval every ${evalEvery} steps: SWD and colour distance, ${evalN} generated vs ${evalN} fixed data images, beside 2 x ${evalN} real halves`);

      let progress: Progress | null = null;
      let totalSteps = opened.totalSteps;
      let startStep = 0;
      const clock = new StepTimer();
      const trainer = new Trainer(opened, engine, {
        onStart: (s) => {
          totalSteps = s.totalSteps;
          say(
            `${s.resumedFrom !== null ? `resuming ${s.runDir} at step ${s.resumedFrom}` : `new run ${s.runDir}`}: ${s.run.preset} width ${s.run.width}, seed ${s.run.seed}, ` +
              `batch ${s.run.batchSize}, ${s.stepsPerEpoch} steps/epoch (${s.droppedPerEpoch} images dropped per epoch), target step ${s.totalSteps}`,
          );
          for (const line of s.recovered) say(`after an interrupted run: ${line}`);
          if (s.ema.decay > 0) say(`EMA generator, decay ${s.ema.decay}: samples/step-N.png (raw) and step-N-ema.png; export writes the EMA generator`);
          if (s.ema.note) say(`note: ${s.ema.note}`);
          if (s.checkpointEngine && s.checkpointEngine !== engine.info.engine) {
            say(`note: the checkpoint was written by the ${s.checkpointEngine} engine; ${engine.info.engine} continues it, but not bit-identically (each engine draws its own noise)`);
          }
          if (s.dist.worldSize > 1) {
          say(`data-parallel: ${s.dist.worldSize} ranks, global batch ${s.dist.worldSize} x ${s.run.batchSize}, batch norm ${argv['sync-bn'] ? 'over the global batch (--sync-bn)' : 'per rank'}; identical initial weights checked (SHA-256 ${s.dist.weightsDigest?.slice(0, 16)}…); rank 0 writes the run`);
        }
        if (s.dist.note) say(`note: ${s.dist.note}`);
        if (s.startStep >= s.totalSteps) say(`already at step ${s.startStep}; nothing to train (raise --steps or --epochs)`);
          else if (!silent) progress = new Progress({ label: 'train', total: s.totalSteps - s.startStep, unit: 'steps' });
          startStep = s.startStep;
          clock.start();
        },
        onStep: (step, total, m) => {
          clock.step();
          progress?.update(step - startStep, `step ${step}/${total} D ${fmt(m.lossD, 3)} G ${fmt(m.lossG, 3)}`);
        },
        onLog: (e) => (progress ? progress.log(formatLogLine(e, totalSteps)) : say(formatLogLine(e, totalSteps))),
        onSample: (path) => progress?.log(escapeControl(`  samples ${path}`)),
        onCheckpoint: (dir) => (progress ? progress.log(escapeControl(`  checkpoint ${dir}`)) : say(`checkpoint ${dir}`)),
        onCheckpointFailed: (err, step) => {
          const line = `warning: the checkpoint at step ${step} was not saved [${err.code}]: ${err.message}; training goes on and the next checkpoint tries again (the earlier ones are intact)`;
          if (progress) progress.log(escapeControl(`  ${line}`));
          else say(line);
        },
        onEval: (name, step, values) =>
          progress?.log(`  ${name} at step ${step}: ${Object.entries(values).map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : v}`).join(', ')}`),
      }, evalHook ? [evalHook] : [], group ? { group } : undefined);

      // The first signal finishes the current step and saves a checkpoint; its message says how
      // long that step took last time, since a step can take minutes on a slow engine.
      const stop = catchStopSignals({
        finishing: () =>
          `finishing the current step (${clock.lastStepText()}) and saving a checkpoint`,
        quitting: () => 'the last checkpoint stays; the current step is lost',
        print: (line) => {
          const bar = progress;
          if (bar) bar.log(line);
          else process.stderr.write(`${line}\n`);
        },
        onStop: (signal) => trainer.stop(signal),
      });
      try {
        const result = await trainer.run();
        (progress as Progress | null)?.finish();
        const where = result.checkpoint ? `; checkpoint ${result.checkpoint}` : '';
        if (result.status === 'stopped') {
          say(`stopped by ${result.stopReason} at step ${result.step}${where}. Continue with: celeba-gan train --out ${outDir} --resume`);
          if (stop.exitCode !== null) process.exitCode = stop.exitCode;
        } else {
          if (!silent) process.stdout.write(
            escapeControl(
              `trained ${outDir} to step ${result.step} in ${result.seconds.toFixed(1)} s${where}\n` +
                `  samples ${join(outDir, 'samples')}/, curves ${join(outDir, 'loss.svg')}, metrics ${join(outDir, 'metrics.jsonl')}\n` +
                `  next: celeba-gan export --onnx --run ${outDir}\n`,
            ),
          );
        }
      } catch (err) {
        (progress as Progress | null)?.finish();
        throw err;
      } finally {
        stop.dispose();
        await evalHook?.dispose();
        engine.dispose();
      }
    } finally {
      group?.close();
    }
  },
};
