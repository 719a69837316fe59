import { basename, extname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PROVIDER_NAMES, parseProvider } from '../bindings/onnxruntime.js';
import { assertInteger, assertNumber, assertOneOf } from '../errors.js';
import {
  DEFAULT_BATCH_SIZE,
  IMAGE_FORMATS,
  RESIZE_KERNELS,
  generateImages,
  imageFileName,
  type GenerateResult,
} from '../inference/generate.js';
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

function summary(r: GenerateResult, session: GeneratorSession, seed: number): string {
  const modelShare = r.seconds > 0 ? ` (model ${((100 * r.modelSeconds) / r.seconds).toFixed(0)}% of the time)` : '';
  const n = r.files.length;
  const range = n === 0 ? 'none' : `${basename(r.files[0]!)}${n > 1 ? ` .. ${basename(r.files[n - 1]!)}` : ''}`;
  const lines = [
    `wrote ${n} face${n === 1 ? '' : 's'} to ${r.outDir}/ (${range})`,
    `  ${r.seconds.toFixed(2)} s, ${r.imagesPerSecond.toFixed(1)} images/s on ${session.providerUsed}${modelShare}`,
    `  manifest ${r.manifestPath}; seed ${seed}: face i again with --seed ${seed} --index i`,
  ];
  if (r.gridPath) lines.push(`  grid ${r.gridPath}`);
  return lines.join('\n');
}

export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Generate face images from an exported ONNX generator (onnxruntime: CUDA, DirectML or CPU)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', describe: 'ONNX generator; default: the newest .onnx in models/' })
      .option('n', { type: 'number', describe: `Number of faces (default ${DEFAULT_COUNT}, or 1 with --index)` })
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
      .option('force', { type: 'boolean', default: false, describe: 'Overwrite existing files' })
      .example('$0 generate --n 1000', '1000 faces with the newest model in models/ into out/<model>/')
      .example('$0 generate --n 1000 --provider cuda', 'on an NVIDIA GPU (needs the CUDA build of onnxruntime-node)')
      .example('$0 generate --model models/celeba28.onnx --n 64 --upscale 4 --grid out/grid.png --seed 7', '64 faces at 112x112 and a contact sheet')
      .example('$0 generate --seed 7 --index 417', 'regenerate face 417 of seed 7') as unknown as Argv<GenerateArgs>,
  handler: async (argv) => {
    // Check flags before loading anything, so a typo fails fast.
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

    const session = await openGenerator(model, { provider, device, threads: argv.threads });
    try {
      const { info } = session;
      process.stderr.write(`celeba-gan: ${providerLine(session, provider)}\n`);
      process.stderr.write(
        `celeba-gan: ${info.preset} width ${info.width}${info.step === null ? '' : ` step ${info.step}`}, ` +
          `z ${info.zDim} ~ ${info.latent}${argv.truncation === undefined ? '' : ` truncated at ${argv.truncation}`}, ` +
          `${info.image.channels}x${info.image.height}x${info.image.width}; seed ${seed}; ` +
          `faces ${imageFileName(startIndex, format)}${n > 1 ? ` .. ${imageFileName(startIndex + n - 1, format)}` : ''}\n`,
      );
      const progress = new Progress({ label: 'generate', total: n, unit: 'images' });
      // The first signal: finish the batches already computed (whole files, manifest lines), then stop.
      const stop = catchStopSignals({ finishing: () => 'writing the batches already computed, then stopping', print: (line) => progress.log(line) });
      const result = await generateImages(session, {
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
        grid: gridPath === undefined ? undefined : { path: gridPath },
        onProgress: (done) => progress.update(done),
        signal: stop.signal,
      }).finally(() => stop.dispose());
      progress.finish();
      process.stdout.write(`${summary(result, session, seed)}\n`);
      if (result.stopped) {
        const nextIndex = startIndex + result.files.length;
        const same = [
          format === 'png' ? '' : ` --format ${format}`,
          upscale === 1 ? '' : ` --upscale ${upscale} --resize ${resize}`,
          argv.truncation === undefined ? '' : ` --truncation ${argv.truncation}`,
        ].join('');
        process.stderr.write(
          `celeba-gan: stopped early; the rest: celeba-gan generate --model ${model} --out ${out} --seed ${seed} --index ${nextIndex} --n ${n - result.files.length}${same}\n`,
        );
        process.exitCode = stop.exitCode ?? 130;
      }
    } finally {
      await session.close();
    }
  },
};
