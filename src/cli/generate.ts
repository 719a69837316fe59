import { basename, extname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PROVIDER_NAMES, parseProvider } from '../bindings/onnxruntime.js';
import { UsageError, assertInteger, assertNumber, assertOneOf } from '../errors.js';
import {
  DEFAULT_BATCH_SIZE,
  IMAGE_FORMATS,
  RESIZE_KERNELS,
  generateImages,
  imageFileName,
  type GenerateResult,
  type ImageFormat,
} from '../inference/generate.js';
import { SHARD_INDEX_ENV, parseShard, shardFromEnv, shardSlice, type Shard } from '../inference/shards.js';
import { openGenerator, type GeneratorSession } from '../inference/session.js';
import { randomSeed } from '../util/rng.js';
import { pickModel } from './defaults.js';
import { Progress } from './progress.js';
import { catchStopSignals } from './signals.js';

/** `celeba-gan generate`: an ONNX generator -> N face images, a manifest and a contact sheet. */

interface GenerateArgs {
  model?: string;
  n?: number;
  out?: string;
  provider: string;
  device: number;
  'batch-size': number;
  seed?: number;
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
export const DEFAULT_COUNT = 64;

/** Where faces go by default: out/<model file name without .onnx>/. */
export function defaultOutDir(modelPath: string): string {
  return join('out', basename(modelPath, extname(modelPath)));
}

function providerLine(session: GeneratorSession, asked: string): string {
  if (asked !== 'auto') return `provider ${session.providerUsed}`;
  return [`provider ${session.providerUsed} (auto)`, ...session.providerNotes.map((note) => `  not used: ${note}`)].join('\n');
}

function summary(r: GenerateResult, session: GeneratorSession, seed: number, format: ImageFormat): string {
  const modelShare = r.seconds > 0 ? ` (model ${((100 * r.modelSeconds) / r.seconds).toFixed(0)}% of the time)` : '';
  const n = r.written;
  const range = n === 0 ? 'none' : `${imageFileName(r.firstIndex, format)}${n > 1 ? ` .. ${imageFileName(r.firstIndex + n - 1, format)}` : ''}`;
  const lines = [
    `wrote ${n} face${n === 1 ? '' : 's'} to ${r.outDir}/ (${range})`,
    `  ${r.seconds.toFixed(2)} s, ${r.imagesPerSecond.toFixed(1)} images/s on ${session.providerUsed}${modelShare}`,
    `  manifest ${r.manifestPath}; seed ${seed}: face i again with --seed ${seed} --index i`,
  ];
  if (r.gridPath) lines.push(`  grid ${r.gridPath}`);
  return lines.join('\n');
}

/** The command that makes the faces this run did not: indices next .. end-1, the same options. */
function restCommand(run: { model: string; out: string; seed: number; format: string; upscale: number; resize: string; truncation?: number; batchSize: number }, next: number, end: number): string {
  const same = [
    run.format === 'png' ? '' : ` --format ${run.format}`,
    run.upscale === 1 ? '' : ` --upscale ${run.upscale} --resize ${run.resize}`,
    run.truncation === undefined ? '' : ` --truncation ${run.truncation}`,
    run.batchSize === DEFAULT_BATCH_SIZE ? '' : ` --batch-size ${run.batchSize}`,
  ].join('');
  return `celeba-gan generate --model ${run.model} --out ${run.out} --seed ${run.seed} --index ${next} --n ${end - next}${same}`;
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
      .example('$0 generate --n 1000', '1000 faces with the newest model in models/ into out/<model>/')
      .example('$0 generate --n 1000 --provider cuda', 'on an NVIDIA GPU (needs the CUDA build of onnxruntime-node)')
      .example('$0 generate --model models/celeba28.onnx --n 64 --upscale 4 --grid out/grid.png --seed 7', '64 faces at 112x112 and a contact sheet')
      .example('$0 generate --seed 7 --index 417', 'regenerate face 417 of seed 7')
      .example('$0 generate --n 1000000 --seed 7 --out faces --shard 2/8', 'the third of 8 slices of a million faces (faces 250000..374999)')
      .example(`${SHARD_INDEX_ENV}=2 $0 generate --n 1000000 --seed 7 --out faces --shards 8`, 'the same in a Kubernetes Indexed Job (deploy/generate-indexed-job.yaml)') as unknown as Argv<GenerateArgs>,
  handler: async (argv) => {
    // 1. Flags first, before loading anything, so a typo fails fast.
    const n = assertInteger('n', argv.n ?? (argv.index === undefined ? DEFAULT_COUNT : 1), 1);
    const startIndex = assertInteger('index', argv.index ?? 0, 0);
    const provider = parseProvider(argv.provider);
    const format = assertOneOf('format', argv.format, IMAGE_FORMATS);
    const resize = assertOneOf('resize', argv.resize, RESIZE_KERNELS);
    const batchSize = assertInteger('batch-size', argv['batch-size'], 1, 65536);
    const upscale = assertInteger('upscale', argv.upscale, 1, 16);
    const device = assertInteger('device', argv.device, 0, 255);
    const seed = argv.seed === undefined ? randomSeed() : assertInteger('seed', argv.seed, 0, 2 ** 32 - 1);
    if (argv.truncation !== undefined) assertNumber('truncation', argv.truncation, 0, 10, { exclusiveMin: true });
    const shard = pickShard(argv);
    const { first, end } = shard ? shardSlice(startIndex, n, shard) : { first: startIndex, end: startIndex + n };

    // 2. Model and output folder (defaults said out loud).
    let model = argv.model;
    if (!model) {
      const pick = pickModel();
      model = pick.path;
      process.stderr.write(`celeba-gan: model ${model} (${pick.why})\n`);
    }
    let out = argv.out;
    if (!out) {
      out = defaultOutDir(model);
      process.stderr.write(`celeba-gan: writing to ${out}/ (default for model ${basename(model)})\n`);
    }
    const gridPath = argv.grid === undefined ? undefined : argv.grid === '' ? join(out, 'grid.png') : argv.grid;
    const run = { model, out, seed, format, upscale, resize, truncation: argv.truncation, batchSize };

    // 3. The session, and what will be made.
    const session = await openGenerator(model, { provider, device, threads: argv.threads });
    try {
      const { info } = session;
      process.stderr.write(`celeba-gan: ${providerLine(session, provider)}\n`);
      process.stderr.write(
        `celeba-gan: ${info.preset} width ${info.width}${info.step === null ? '' : ` step ${info.step}`}, ` +
          `z ${info.zDim} ~ ${info.latent}${argv.truncation === undefined ? '' : ` truncated at ${argv.truncation}`}, ` +
          `${info.image.channels}x${info.image.height}x${info.image.width}; seed ${seed}; ` +
          (first === end
            ? `shard ${shard!.index}/${shard!.count} of ${n} faces is empty`
            : `${shard ? `shard ${shard.index}/${shard.count}: ` : ''}faces ${imageFileName(first, format)}${end - first > 1 ? ` .. ${imageFileName(end - 1, format)}` : ''}`) +
          '\n',
      );

      // 4. Generate, with a progress bar; the first signal finishes the batches already computed.
      const progress = new Progress({ label: 'generate', total: end - first, unit: 'images' });
      const stop = catchStopSignals({ finishing: () => 'writing the batches already computed, then stopping', print: (line) => progress.log(line) });
      let written = 0;
      let result: GenerateResult;
      try {
        result = await generateImages(session, {
          outDir: out,
          n,
          startIndex,
          seed,
          batchSize,
          format,
          upscale,
          resize,
          truncation: argv.truncation,
          force: argv.force,
          shard,
          grid: gridPath === undefined ? undefined : { path: gridPath },
          onProgress: (done) => {
            written = done;
            progress.update(done);
          },
          signal: stop.signal,
        });
      } catch (err) {
        progress.finish();
        // Files land in index order, so the first `written` are complete and listed.
        if (written > 0) {
          process.stderr.write(`celeba-gan: wrote ${written} face${written === 1 ? '' : 's'} (each listed in the manifest) before this error; the rest, once it is fixed:\n`);
          process.stderr.write(`  ${restCommand(run, first + written, end)}\n`);
        }
        throw err;
      } finally {
        stop.dispose();
      }
      progress.finish();

      // 5. Report.
      for (const note of result.notes) process.stderr.write(`celeba-gan: ${note}\n`);
      process.stdout.write(`${summary(result, session, seed, format)}\n`);
      if (result.stopped) {
        process.stderr.write(`celeba-gan: stopped early; the rest: ${restCommand(run, first + result.written, end)}\n`);
        process.exitCode = stop.exitCode ?? 130;
      }
    } finally {
      await session.close();
    }
  },
};

/** --shard K/N, or --shards N with K from JOB_COMPLETION_INDEX; neither: unsharded. */
function pickShard(argv: GenerateArgs): Shard | undefined {
  if (argv.shard !== undefined && argv.shards !== undefined) {
    throw new UsageError('E_BAD_SHARD', '--shard and --shards cannot be used together', { hint: `Use --shard K/N, or --shards N with K in ${SHARD_INDEX_ENV}.` });
  }
  if (argv.shard !== undefined) return parseShard(String(argv.shard));
  if (argv.shards !== undefined) return shardFromEnv(argv.shards);
  return undefined;
}
