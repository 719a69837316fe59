import { basename, extname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PROVIDER_NAMES, parseProvider, parseProviderDevice, type ProviderName } from '../bindings/onnxruntime.js';
import { UsageError, assertInteger, assertNumber, assertOneOf } from '../errors.js';
import {
  DEFAULT_BATCH_SIZE,
  IMAGE_FORMATS,
  RESIZE_KERNELS,
  generateImages,
  imageFileName,
  type GenerateResult,
  type ImageFormat,
  type ResizeKernel,
} from '../inference/generate.js';
import { SHARD_INDEX_ENV, parseShard, shardFromEnv, shardSlice, type Shard } from '../inference/shards.js';
import { openGenerator, type GeneratorSession } from '../inference/session.js';
import { attributeDraw, type AttributeDraw } from '../inference/attributes.js';
import { randomSeed } from '../util/rng.js';
import { assertFaceRange } from '../inference/latents.js';
import { pickModel } from './defaults.js';
import { Screen } from './output.js';
import { Progress } from '../util/progress.js';
import { catchStopSignals, type StopSignals } from './signals.js';

/** `celeba-gan generate`: an ONNX generator -> N face images, a manifest and a contact sheet. */

interface GenerateArgs {
  model?: string;
  n?: number;
  out?: string;
  provider: string;
  device: number;
  'batch-size': number;
  seed?: number;
  attr?: string;
  format: string;
  upscale: number;
  resize: string;
  grid?: string;
  truncation?: number;
  index?: number;
  threads?: number;
  shard?: string;
  shards?: number;
  force: boolean;
}

/** Faces written when neither --n nor --index is given. */
const DEFAULT_COUNT = 64;

/** Where faces go by default: out/<model file name without .onnx>/. */
export function defaultOutDir(modelPath: string): string {
  return join('out', basename(modelPath, extname(modelPath)));
}

function sayProvider(screen: Screen, session: GeneratorSession, asked: string): void {
  screen.say(`provider ${session.providerUsed}${asked === 'auto' ? ' (auto)' : ''}`);
  if (asked === 'auto') for (const note of session.providerNotes) screen.log(`  not used: ${note}`);
}

function summary(r: GenerateResult, session: GeneratorSession, seed: number, format: ImageFormat): string[] {
  const modelShare = r.seconds > 0 ? ` (model ${((100 * r.modelSeconds) / r.seconds).toFixed(0)}% of the time)` : '';
  const n = r.written;
  const range = n === 0 ? 'none' : `${imageFileName(r.firstIndex, format)}${n > 1 ? ` .. ${imageFileName(r.firstIndex + n - 1, format)}` : ''}`;
  const lines = [
    `wrote ${n} face${n === 1 ? '' : 's'} to ${r.outDir}/ (${range})`,
    `  ${r.seconds.toFixed(2)} s, ${r.imagesPerSecond.toFixed(1)} images/s on ${session.providerUsed}${modelShare}`,
    `  manifest ${r.manifestPath}; seed ${seed}: face i again with --seed ${seed} --index i`,
  ];
  if (r.gridPath) lines.push(`  grid ${r.gridPath}`);
  return lines;
}

/** The command that makes the faces this run did not: indices next .. end-1, the same options. */
function restCommand(f: Flags, paths: Paths, next: number, draw?: AttributeDraw): string {
  const same = [
    f.format === 'png' ? '' : ` --format ${f.format}`,
    f.upscale === 1 ? '' : ` --upscale ${f.upscale} --resize ${f.resize}`,
    f.truncation === undefined ? '' : ` --truncation ${f.truncation}`,
    f.batchSize === DEFAULT_BATCH_SIZE ? '' : ` --batch-size ${f.batchSize}`,
    draw && draw.request.text !== '' ? ` --attr=${draw.request.text}` : '',
  ].join('');
  return `celeba-gan generate --model ${paths.model} --out ${paths.out} --seed ${f.seed} --index ${next} --n ${f.end - next}${same}`;
}

export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Generate face images from an exported ONNX generator (onnxruntime: CUDA, DirectML or CPU)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', describe: 'ONNX generator; default: the newest .onnx in models/' })
      .option('n', { type: 'number', describe: `Number of faces (default ${DEFAULT_COUNT}, or 1 with --index); with --shard, of all shards together` })
      .option('out', { type: 'string', describe: 'Output folder; default out/<model name>/' })
      .option('provider', { type: 'string', default: 'auto', describe: `Execution provider: ${PROVIDER_NAMES.join(', ')} (auto: the best available here)` })
      .option('device', { type: 'number', default: 0, describe: 'GPU index for cuda / dml' })
      .option('batch-size', { type: 'number', default: DEFAULT_BATCH_SIZE, describe: 'Faces per model call' })
      .option('seed', { type: 'number', describe: 'Latent seed (default: random, printed and saved in the manifest)' })
      .option('format', { type: 'string', default: 'png', describe: `Image format: ${IMAGE_FORMATS.join(', ')}` })
      .option('upscale', { type: 'number', default: 1, describe: 'Integer scale of each saved face (28x28 is small: try 4)' })
      .option('resize', { type: 'string', default: 'lanczos', describe: `Upscaling filter: ${RESIZE_KERNELS.join(', ')}` })
      .option('grid', { type: 'string', describe: 'Also write a contact sheet of the first 64 faces (bare --grid: <out>/grid.png)' })
      .option('truncation', { type: 'number', describe: 'Truncation: uniform latents U(-t, t); normal latents redrawn beyond +-t' })
      .option('index', { type: 'number', describe: 'Index of the first face (regenerate face 417 with --seed S --index 417)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: the physical cores)' })
      .option('shard', { type: 'string', describe: 'Make only shard K of N (K/N, K from 0): a contiguous slice of the --n faces, with its own manifest part' })
      .option('shards', { type: 'number', describe: `Like --shard K/N with N given here and K from ${SHARD_INDEX_ENV} (a Kubernetes Indexed Job)` })
      .option('force', { type: 'boolean', default: false, describe: 'Overwrite existing files' })
      .option('attr', {
        type: 'string',
        describe:
          'Conditional models: attributes asked for, e.g. Smiling,Eyeglasses,-Male (write --attr=-Male when the first is negative); the others are drawn from the training label rows',
      })
      .example('$0 generate --n 1000', '1000 faces with the newest model in models/ into out/<model>/')
      .example('$0 generate --n 1000 --provider cuda', 'on an NVIDIA GPU (needs the CUDA build of onnxruntime-node)')
      .example('$0 generate --model models/celeba28.onnx --n 64 --upscale 4 --grid out/grid.png --seed 7', '64 faces at 112x112 and a contact sheet')
      .example('$0 generate --seed 7 --index 417', 'regenerate face 417 of seed 7')
      .example(
        '$0 generate --model models/cond.onnx --attr Smiling,Eyeglasses,-Blond_Hair --n 64',
        'a conditional model: smiling faces with glasses, not blond',
      )
      .example('$0 generate --n 1000000 --seed 7 --out faces --shard 2/8', 'the third of 8 slices of a million faces (faces 250000..374999)')
      .example(
        `${SHARD_INDEX_ENV}=2 $0 generate --n 1000000 --seed 7 --out faces --shards 8`,
        'the same in a Kubernetes Indexed Job (deploy/generate-indexed-job.yaml)',
      ),
  handler: async (argv) => {
    const flags = checkFlags(argv); // typos fail before anything loads
    const screen = new Screen();
    // From here on the first Ctrl-C / SIGTERM stops cleanly, whatever phase we are in.
    const stop = catchStopSignals({ finishing: () => 'writing the batches already computed, then stopping', print: (line) => screen.log(line) });
    try {
      const paths = resolvePaths(argv, screen);
      const session = await openGenerator(paths.model, { provider: flags.provider, device: flags.device, threads: argv.threads });
      try {
        sayProvider(screen, session, flags.provider);
        const draw = attributeDraw(session.info.attributes, argv.attr, basename(paths.model));
        screen.say(describeRun(session, flags, draw));
        for (const note of draw?.notes ?? []) screen.say(`note: ${note}`);
        const result = await generateWithProgress(session, flags, paths, stop, screen, draw);
        screen.result(...summary(result, session, flags.seed, flags.format));
        if (result.stopped) {
          screen.say(`stopped early; the rest: ${restCommand(flags, paths, flags.first + result.written, draw)}`);
          process.exitCode = stop.exitCode ?? 130;
        }
      } finally {
        await session.close();
      }
    } finally {
      stop.dispose();
    }
  },
};

/** Validated flags, and the slice of indices [first, end) this run makes. */
interface Flags {
  n: number;
  startIndex: number;
  first: number;
  end: number;
  shard: Shard | undefined;
  provider: ProviderName;
  format: ImageFormat;
  resize: ResizeKernel;
  batchSize: number;
  upscale: number;
  device: number;
  seed: number;
  truncation: number | undefined;
  force: boolean;
}

function checkFlags(argv: GenerateArgs): Flags {
  const n = assertInteger('n', argv.n ?? (argv.index === undefined ? DEFAULT_COUNT : 1), 1);
  const startIndex = assertInteger('index', argv.index ?? 0, 0);
  assertFaceRange(startIndex, n);
  const shard = pickShard(argv);
  const { first, end } = shard ? shardSlice(startIndex, n, shard) : { first: startIndex, end: startIndex + n };
  return {
    n,
    startIndex,
    first,
    end,
    shard,
    provider: parseProvider(argv.provider),
    format: assertOneOf('format', argv.format, IMAGE_FORMATS),
    resize: assertOneOf('resize', argv.resize, RESIZE_KERNELS),
    batchSize: assertInteger('batch-size', argv['batch-size'], 1, 65536),
    upscale: assertInteger('upscale', argv.upscale, 1, 16),
    device: parseProviderDevice(argv.device),
    seed: argv.seed === undefined ? randomSeed() : assertInteger('seed', argv.seed, 0, 2 ** 32 - 1),
    truncation: argv.truncation === undefined ? undefined : assertNumber('truncation', argv.truncation, 0, 10, { exclusiveMin: true }),
    force: argv.force,
  };
}

interface Paths {
  model: string;
  out: string;
  grid: string | undefined;
}

/** The model and the output folder, with their defaults said out loud. */
function resolvePaths(argv: GenerateArgs, screen: Screen): Paths {
  let model = argv.model;
  if (model === undefined) {
    const pick = pickModel();
    model = pick.path;
    screen.say(`model ${model} (${pick.why})`);
  }
  let out = argv.out;
  if (out === undefined) {
    out = defaultOutDir(model);
    screen.say(`writing to ${out}/ (default for model ${basename(model)})`);
  }
  const grid = argv.grid === undefined ? undefined : argv.grid === '' ? join(out, 'grid.png') : argv.grid;
  return { model, out, grid };
}

/** `seed28 width 1 step 5000, z 100 ~ uniform, 3x28x28; seed 7; faces face-000000.png .. face-000999.png` */
function describeRun(session: GeneratorSession, f: Flags, draw: AttributeDraw | undefined): string {
  const { info } = session;
  const faces =
    f.first === f.end
      ? `shard ${f.shard!.index}/${f.shard!.count} of ${f.n} faces is empty`
      : `${f.shard ? `shard ${f.shard.index}/${f.shard.count}: ` : ''}faces ${imageFileName(f.first, f.format)}${f.end - f.first > 1 ? ` .. ${imageFileName(f.end - 1, f.format)}` : ''}`;
  return (
    `${info.preset} width ${info.width}${info.step === null ? '' : ` step ${info.step}`}, ` +
    `z ${info.zDim} ~ ${info.latent}${f.truncation === undefined ? '' : ` truncated at ${f.truncation}`}, ` +
    `${info.image.channels}x${info.image.height}x${info.image.width}; seed ${f.seed}; ${faces}` +
    (draw
      ? `; attributes ${draw.request.text === '' ? 'all drawn from the training rows' : `${draw.request.text} (the others drawn from the training rows)`}`
      : '')
  );
}

/** generateImages with a progress bar; on an error after some files landed, prints the command for the rest. */
async function generateWithProgress(
  session: GeneratorSession,
  f: Flags,
  paths: Paths,
  stop: StopSignals,
  screen: Screen,
  draw: AttributeDraw | undefined,
): Promise<GenerateResult> {
  const progress = screen.startBar(new Progress({ label: 'generate', total: f.end - f.first, unit: 'images' }));
  try {
    return await generateImages(session, {
      outDir: paths.out,
      n: f.n,
      startIndex: f.startIndex,
      seed: f.seed,
      batchSize: f.batchSize,
      format: f.format,
      upscale: f.upscale,
      resize: f.resize,
      truncation: f.truncation,
      force: f.force,
      shard: f.shard,
      grid: paths.grid === undefined ? undefined : { path: paths.grid },
      attributes: draw,
      onProgress: (done) => progress.update(done),
      onNote: (note) => screen.say(note),
      signal: stop.signal,
    });
  } catch (err) {
    // Files land in index order, so the first `done` are complete and listed in the manifest.
    const done = progress.done;
    screen.endBar();
    if (done > 0) {
      screen.say(`wrote ${done} face${done === 1 ? '' : 's'} (each listed in the manifest) before this error; the rest, once it is fixed:`);
      screen.log(`  ${restCommand(f, paths, f.first + done, draw)}`);
    }
    throw err;
  } finally {
    screen.endBar();
  }
}

/** --shard K/N, or --shards N with K from JOB_COMPLETION_INDEX; neither: unsharded. */
function pickShard(argv: GenerateArgs): Shard | undefined {
  if (argv.shard !== undefined && argv.shards !== undefined) {
    throw new UsageError('E_BAD_SHARD', '--shard and --shards cannot be used together', {
      hint: `Use --shard K/N, or --shards N with K in ${SHARD_INDEX_ENV}.`,
    });
  }
  if (argv.shard !== undefined) return parseShard(String(argv.shard));
  if (argv.shards !== undefined) return shardFromEnv(argv.shards);
  return undefined;
}
