import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PROVIDER_NAMES, parseProvider } from '../bindings/onnxruntime.js';
import { CelebaGanError, UsageError, assertInteger, assertNumber, assertOneOf } from '../errors.js';
import { IMAGE_FORMATS, RESIZE_KERNELS, type ImageFormat } from '../inference/encode.js';
import { imageFileName } from '../inference/generate.js';
import {
  WALK_FORMATS,
  defaultSlerp,
  encodeFrame,
  encodeWalk,
  formatFaceRef,
  parseFaceRef,
  renderFrames,
  walkFrameCount,
  walkLatents,
  type FaceRef,
  type WalkFormat,
} from '../inference/interpolate.js';
import { openGenerator } from '../inference/session.js';
import { writeFileAtomic } from '../util/atomic.js';
import { Rng, randomSeed } from '../util/rng.js';
import { defaultOutDir } from './generate.js';
import { pickModel } from './defaults.js';
import { Progress } from './progress.js';
import { catchStopSignals } from './signals.js';
import { itemAt } from '../util/at.js';

/** `celeba-gan interpolate`: a latent walk between faces named `seed:index`, as an animation or a strip. */

interface InterpolateArgs {
  faces?: string[];
  model?: string;
  out?: string;
  steps: number;
  slerp?: boolean;
  loop: boolean;
  random: number;
  seed?: number;
  truncation?: number;
  upscale: number;
  resize: string;
  fps: number;
  frames?: string;
  'frame-format': string;
  provider: string;
  device: number;
  threads?: number;
  force: boolean;
}

const FORMAT_OF_EXT: Readonly<Record<string, WalkFormat>> = Object.freeze({ '.webp': 'webp', '.gif': 'gif', '.png': 'png' });

/** `--random K` faces from one seed, reproducible: the printed `seed:index` names give the same walk. */
function randomFaces(count: number, seed: number): FaceRef[] {
  const rng = new Rng(seed, 'interpolate-faces');
  return Array.from({ length: count }, () => ({ seed, index: rng.int(100_000) }));
}

export const interpolateCommand: CommandModule<object, InterpolateArgs> = {
  command: 'interpolate [faces..]',
  describe: 'Walk the latent space between faces (seed:index) into an animated WebP/GIF or a PNG strip',
  builder: (y: Argv) =>
    y
      .positional('faces', { type: 'string', array: true, describe: 'Keyframes as seed:index (the face `generate --seed S --index I` makes); none: random ones' })
      .option('model', { type: 'string', describe: 'ONNX generator; default: the newest .onnx in models/' })
      .option('out', { type: 'string', describe: 'Output file: .webp or .gif (animated) or .png (a strip); default out/<model>/walk-<from>-<to>.webp' })
      .option('steps', { type: 'number', default: 16, describe: 'Frames from one face to the next, both included' })
      .option('slerp', { type: 'boolean', describe: 'Spherical interpolation (default for normal latents; --no-slerp for a straight line)' })
      .option('loop', { type: 'boolean', default: false, describe: 'Walk back to the first face (a seamless animation)' })
      .option('random', { type: 'number', default: 2, describe: 'With no faces named: how many random keyframes' })
      .option('seed', { type: 'number', describe: 'Seed of the random keyframes (default: random, printed)' })
      .option('truncation', { type: 'number', describe: 'Truncation, as in generate' })
      .option('upscale', { type: 'number', default: 4, describe: 'Integer scale of each frame' })
      .option('resize', { type: 'string', default: 'lanczos', describe: `Upscaling filter: ${RESIZE_KERNELS.join(', ')}` })
      .option('fps', { type: 'number', default: 12, describe: 'Frames per second of the animation' })
      .option('frames', { type: 'string', describe: 'Also write every frame to this folder (frame-000000.png ...), encoded as generate encodes faces' })
      .option('frame-format', { type: 'string', default: 'png', describe: `Format of --frames files: ${IMAGE_FORMATS.join(', ')}` })
      .option('provider', { type: 'string', default: 'auto', describe: `Execution provider: ${PROVIDER_NAMES.join(', ')}` })
      .option('device', { type: 'number', default: 0, describe: 'GPU index for cuda / dml' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads' })
      .option('force', { type: 'boolean', default: false, describe: 'Overwrite an existing output file' })
      .example('$0 interpolate 7:0 7:417', 'from face 0 to face 417 of seed 7 -> out/<model>/walk-7-0-7-417.webp')
      .example('$0 interpolate 7:0 7:1 7:2 --loop --steps 24 --out loop.gif', 'a looping GIF through three faces')
      .example('$0 interpolate --out strip.png --steps 8 --upscale 2', 'two random faces (printed as seed:index), as a PNG strip')
      .example('$0 interpolate 7:0 7:417 --frames frames/', 'also every frame as a file; frame 0 is `generate --seed 7 --index 0`'),
  handler: async (argv) => {
    const provider = parseProvider(argv.provider);
    const steps = assertInteger('steps', argv.steps, 2, 1000);
    const upscale = assertInteger('upscale', argv.upscale, 1, 16);
    const resize = assertOneOf('resize', argv.resize, RESIZE_KERNELS);
    const fps = assertNumber('fps', argv.fps, 0.1, 100);
    const frameFormat: ImageFormat = assertOneOf('frame-format', argv['frame-format'], IMAGE_FORMATS);
    const device = assertInteger('device', argv.device, 0, 255);
    if (argv.truncation !== undefined) assertNumber('truncation', argv.truncation, 0, 10, { exclusiveMin: true });
    const named = (argv.faces ?? []).map((f, i) => parseFaceRef(String(f), `face ${i + 1}`));
    let keys = named;
    if (named.length === 1) {
      throw new UsageError('E_BAD_ARGUMENT', `interpolate needs at least 2 faces but received 1 (${named.map(formatFaceRef).join(' ')})`, { hint: 'Name a second face, e.g. `celeba-gan interpolate 7:0 7:1`, or none for random ones.' });
    }
    if (named.length === 0) {
      const count = assertInteger('random', argv.random, 2, 64);
      const seed = argv.seed === undefined ? randomSeed() : assertInteger('seed', argv.seed, 0, 2 ** 32 - 1);
      keys = randomFaces(count, seed);
      process.stderr.write(`celeba-gan: random faces ${keys.map(formatFaceRef).join(' ')} (the same walk again: celeba-gan interpolate ${keys.map(formatFaceRef).join(' ')})\n`);
    }

    let model = argv.model;
    if (!model) {
      const pick = pickModel();
      model = pick.path;
      process.stderr.write(`celeba-gan: model ${model} (${pick.why})\n`);
    }
    const out = argv.out ?? join(defaultOutDir(model), `walk-${keys.map((k) => `${k.seed}-${k.index}`).join('-')}.webp`);
    const format = FORMAT_OF_EXT[extname(out).toLowerCase()];
    if (!format) {
      throw new UsageError('E_BAD_ARGUMENT', `cannot tell the format of --out ${out}: expected a name ending in ${WALK_FORMATS.map((f) => `.${f}`).join(', ')}`, {
        hint: '.webp or .gif for an animation, .png for a strip of frames.',
      });
    }

    if (existsSync(out) && !argv.force) {
      throw new UsageError('E_OUTPUT_EXISTS', `${out} already exists; not overwriting it`, { hint: 'Pass --force to overwrite, or choose another --out.' });
    }
    const frameName = (i: number): string => imageFileName(i, frameFormat).replace(/^face-/, 'frame-');
    if (argv.frames !== undefined && existsSync(join(argv.frames, frameName(0))) && !argv.force) {
      throw new UsageError('E_OUTPUT_EXISTS', `${join(argv.frames, frameName(0))} already exists; not overwriting it`, { hint: 'Pass --force to overwrite, or choose another --frames folder.' });
    }

    const session = await openGenerator(model, { provider, device, threads: argv.threads });
    try {
      const { info } = session;
      const slerp = argv.slerp ?? defaultSlerp(info.latent);
      const walk = { steps, slerp, loop: argv.loop, truncation: argv.truncation };
      const z = walkLatents(keys, info.zDim, info.latent, walk);
      const total = walkFrameCount(keys.length, steps, argv.loop);
      process.stderr.write(
        `celeba-gan: provider ${session.providerUsed}${provider === 'auto' ? ' (auto)' : ''}; ${keys.map(formatFaceRef).join(' -> ')}${argv.loop ? ' -> back' : ''}, ` +
          `${total} frames, ${slerp ? 'slerp' : 'lerp'} (z ${info.zDim} ~ ${info.latent}${argv.truncation === undefined ? '' : `, truncated at ${argv.truncation}`})\n`,
      );
      const progress = new Progress({ label: 'interpolate', total, unit: 'frames' });
      const stop = catchStopSignals({ finishing: () => 'stopping after this batch of frames; nothing is written', print: (line) => progress.log(line) });
      let frames: Uint8Array;
      try {
        frames = await renderFrames((zz, n) => session.run(zz, n), z, info.zDim, info.image, { onFrames: (done) => progress.update(done), signal: stop.signal });
      } catch (err) {
        if (stop.received) {
          process.stderr.write('celeba-gan: stopped; nothing written\n');
          process.exitCode = stop.exitCode!;
          return;
        }
        throw err;
      } finally {
        stop.dispose();
      }
      progress.finish();

      const bytes = await encodeWalk(frames, info.image, { format, upscale, resize, delayMs: Math.max(1, Math.round(1000 / fps)) });
      try {
        await mkdir(dirname(out), { recursive: true });
        await writeFileAtomic(out, bytes);
        if (argv.frames !== undefined) {
          await mkdir(argv.frames, { recursive: true });
          for (let i = 0; i < total; i++) {
            await writeFileAtomic(join(argv.frames, frameName(i)), await encodeFrame(frames, i, info.image, { format: frameFormat, upscale, resize }));
          }
        }
      } catch (err) {
        throw new CelebaGanError('E_OUTPUT_WRITE', `could not write ${(err as { path?: string }).path ?? out}: ${(err as Error).message}`, {
          hint: 'Pass --out (and --frames) somewhere you can write.',
          cause: err,
        });
      }
      process.stdout.write(
        `wrote ${out} (${total} frames, ${format === 'png' ? 'a strip' : `${format}, ${fps} fps`}, ${info.image.width * upscale}x${info.image.height * upscale})` +
          `${argv.frames === undefined ? '' : `; frames in ${argv.frames}/`}\n` +
          `  frame 0 is ${basename(model)}'s face: celeba-gan generate --seed ${itemAt(keys, 0, 'keyframe').seed} --index ${itemAt(keys, 0, 'keyframe').index}${upscale === 1 ? '' : ` --upscale ${upscale}`}${argv.truncation === undefined ? '' : ` --truncation ${argv.truncation}`}\n`,
      );
    } finally {
      await session.close();
    }
  },
};
