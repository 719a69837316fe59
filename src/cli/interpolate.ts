import { existsSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PROVIDER_NAMES, parseProvider, type ProviderName } from '../bindings/onnxruntime.js';
import { UsageError, assertInteger, assertNumber, assertOneOf } from '../errors.js';
import { IMAGE_FORMATS, RESIZE_KERNELS, type ImageFormat, type ResizeKernel } from '../inference/encode.js';
import { imageFileName } from '../inference/generate.js';
import {
  MAX_SEED,
  WALK_FORMATS,
  defaultSlerp,
  encodeFrame,
  encodeWalk,
  formatFaceRef,
  parseFaceRef,
  attributeWalkRows,
  faceWalkRows,
  heldLatents,
  renderFrames,
  walkFrameCount,
  walkLatents,
  walkedAttribute,
  type FaceRef,
  type WalkFormat,
} from '../inference/interpolate.js';
import { openGenerator, type GeneratorInfo, type GeneratorSession } from '../inference/session.js';
import { attributeDraw } from '../inference/attributes.js';
import { itemAt } from '../util/at.js';
import { ensureFolder, writeFileAtomicSync } from '../util/atomic.js';
import { Progress } from '../util/progress.js';
import { Rng, randomSeed } from '../util/rng.js';
import { pickModel } from './defaults.js';
import { defaultOutDir } from './generate.js';
import { Screen } from './output.js';
import { catchStopSignals } from './signals.js';

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
  attr?: string;
  walk?: string;
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
      .positional('faces', {
        type: 'string',
        array: true,
        describe: 'Keyframes as seed:index (the face `generate --seed S --index I` makes); none: random ones',
      })
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
      .option('attr', {
        type: 'string',
        describe: 'Conditional models: attributes of every keyframe, e.g. Smiling,-Eyeglasses (as generate --attr; --attr=-Name when the first is negative)',
      })
      .option('walk', {
        type: 'string',
        describe: 'Conditional models: walk this attribute from -1 to +1 on one face (its latent held), instead of walking between faces',
      })
      .example('$0 interpolate 7:0 7:417', 'from face 0 to face 417 of seed 7 -> out/<model>/walk-7-0-7-417.webp')
      .example('$0 interpolate 7:0 7:1 7:2 --loop --steps 24 --out loop.gif', 'a looping GIF through three faces')
      .example('$0 interpolate --out strip.png --steps 8 --upscale 2', 'two random faces (printed as seed:index), as a PNG strip')
      .example('$0 interpolate 7:0 7:417 --frames frames/', 'also every frame as a file; frame 0 is `generate --seed 7 --index 0`')
      .example('$0 interpolate 7:3 --walk Smiling --out smile.webp', 'a conditional model: face 3 of seed 7 going from not smiling to smiling')
      .example('$0 interpolate --loop -- 7:0 7:1', 'faces after `--` are faces too (a value that starts with - is otherwise read as a flag)'),
  handler: async (argv) => {
    const flags = checkFlags(argv);
    const screen = new Screen();
    const keys = keyframes(argv, screen);
    const model = argv.model ?? pickedModel(screen);
    const out = argv.out ?? join(defaultOutDir(model), `walk-${keys.map((k) => `${k.seed}-${k.index}`).join('-')}${argv.walk ? `-${argv.walk}` : ''}.webp`);
    const format = walkFormatOf(out);
    refuseOverwrite(out, argv.frames, flags.frameFormat, argv.force);

    const session = await openGenerator(model, { provider: flags.provider, device: flags.device, threads: argv.threads });
    try {
      const { info } = session;
      const walk = planWalk(argv, flags, keys, info, basename(model));
      screen.say(`provider ${session.providerUsed}${flags.provider === 'auto' ? ' (auto)' : ''}; ${walk.description}`);
      for (const note of walk.notes) screen.say(`note: ${note}`);
      const frames = await renderWithProgress(session, walk, screen);
      if (frames === null) return; // stopped by a signal: process.exitCode is set
      const bytes = await encodeWalk(frames, info.image, {
        format,
        upscale: flags.upscale,
        resize: flags.resize,
        delayMs: Math.max(1, Math.round(1000 / flags.fps)),
      });
      writeOutput(out, bytes);
      if (argv.frames !== undefined) await writeFrames(argv.frames, frames, walk.total, info.image, flags);
      screen.result(
        `wrote ${out} (${walk.total} frames, ${format === 'png' ? 'a strip' : `${format}, ${flags.fps} fps`}, ${info.image.width * flags.upscale}x${info.image.height * flags.upscale})` +
          `${argv.frames === undefined ? '' : `; frames in ${argv.frames}/`}`,
        ...(walk.firstFrame ? [`  frame 0 is ${basename(model)}'s face: ${walk.firstFrame}`] : []),
      );
    } finally {
      await session.close();
    }
  },
};

/** What to render: latents and (conditional models) label rows per frame, said in words. */
interface WalkPlan {
  z: Float32Array;
  labels: Float32Array | undefined;
  total: number;
  description: string;
  notes: readonly string[];
  /** The generate command whose face is frame 0 (none for an attribute walk: its frame 0 sets the attribute off). */
  firstFrame: string | null;
}

/**
 * A walk between faces (their latents, and with --attr or a conditional model each face's label
 * row for the request), or with --walk NAME one face's latent held while NAME goes from -1 to +1
 * (src/inference/interpolate.ts: the same frames as serve's /v1/interpolate).
 */
function planWalk(argv: InterpolateArgs, f: Flags, keys: FaceRef[], info: GeneratorInfo, modelName: string): WalkPlan {
  const draw = attributeDraw(info.attributes, argv.attr, modelName);
  const request = draw && draw.request.text !== '' ? `, attributes ${draw.request.text}` : '';
  const truncated = `z ${info.zDim} ~ ${info.latent}${argv.truncation === undefined ? '' : `, truncated at ${argv.truncation}`}`;
  const notes = draw?.notes ?? [];
  if (argv.walk !== undefined) {
    const walked = walkedAttribute(argv.walk, draw?.request, info.attributes, { walk: '--walk ', attr: '--attr' }, modelName);
    if (argv.slerp !== undefined) {
      throw new UsageError('E_BAD_ARGUMENT', '--slerp shapes a walk between faces; an attribute walk (--walk) holds one latent', {
        hint: 'Leave --slerp out of an attribute walk.',
      });
    }
    const face = itemAt(keys, 0, 'keyframe');
    const total = walkFrameCount(2, f.steps, argv.loop);
    return {
      z: heldLatents(face, total, info.zDim, info.latent, argv.truncation),
      labels: attributeWalkRows(draw!, face, walked.index, f.steps, argv.loop),
      total,
      description: `${formatFaceRef(face)} with ${walked.name} from -1 to +1${argv.loop ? ' and back' : ''}${request}, ${total} frames (${truncated})`,
      notes,
      firstFrame: null,
    };
  }
  const slerp = argv.slerp ?? defaultSlerp(info.latent);
  const total = walkFrameCount(keys.length, f.steps, argv.loop);
  const first = itemAt(keys, 0, 'keyframe');
  return {
    z: walkLatents(keys, info.zDim, info.latent, { steps: f.steps, slerp, loop: argv.loop, truncation: argv.truncation }),
    labels: draw && faceWalkRows(draw, keys, f.steps, argv.loop),
    total,
    description: `${keys.map(formatFaceRef).join(' -> ')}${argv.loop ? ' -> back' : ''}${request}, ${total} frames, ${slerp ? 'slerp' : 'lerp'} (${truncated})`,
    notes,
    firstFrame:
      `celeba-gan generate --seed ${first.seed} --index ${first.index}${f.upscale === 1 ? '' : ` --upscale ${f.upscale}`}` +
      `${argv.truncation === undefined ? '' : ` --truncation ${argv.truncation}`}${request ? ` --attr=${draw!.request.text}` : ''}`,
  };
}

interface Flags {
  provider: ProviderName;
  device: number;
  steps: number;
  upscale: number;
  resize: ResizeKernel;
  fps: number;
  frameFormat: ImageFormat;
}

/** Every flag checked before anything loads. */
function checkFlags(argv: InterpolateArgs): Flags {
  if (argv.truncation !== undefined) assertNumber('truncation', argv.truncation, 0, 10, { exclusiveMin: true });
  return {
    provider: parseProvider(argv.provider),
    device: assertInteger('device', argv.device, 0, 255),
    steps: assertInteger('steps', argv.steps, 2, 1000),
    upscale: assertInteger('upscale', argv.upscale, 1, 16),
    resize: assertOneOf('resize', argv.resize, RESIZE_KERNELS),
    fps: assertNumber('fps', argv.fps, 0.1, 100),
    frameFormat: assertOneOf('frame-format', argv['frame-format'], IMAGE_FORMATS),
  };
}

/**
 * The faces named (before or after `--`: yargs leaves the ones after it in `_`), or `--random`
 * ones, said out loud so the walk can be made again.
 */
function keyframes(argv: InterpolateArgs & { _?: (string | number)[] }, screen: Screen): FaceRef[] {
  const afterDashes = (argv._ ?? []).slice(1).map(String);
  const named = [...(argv.faces ?? []).map(String), ...afterDashes].map((f, i) => parseFaceRef(f, `face ${i + 1}`));
  if (argv.walk !== undefined) return walkedFace(named, argv, screen);
  if (named.length === 1) {
    throw new UsageError('E_BAD_ARGUMENT', `interpolate needs at least 2 faces but received 1 (${named.map(formatFaceRef).join(' ')})`, {
      hint: 'Name a second face, e.g. `celeba-gan interpolate 7:0 7:1`, or none for random ones.',
    });
  }
  if (named.length > 0) return named;
  const count = assertInteger('random', argv.random, 2, 64);
  const seed = argv.seed === undefined ? randomSeed() : assertInteger('seed', argv.seed, 0, MAX_SEED);
  const keys = randomFaces(count, seed);
  screen.say(`random faces ${keys.map(formatFaceRef).join(' ')} (the same walk again: celeba-gan interpolate ${keys.map(formatFaceRef).join(' ')})`);
  return keys;
}

/** --walk: the one face named, or one random face (printed). */
function walkedFace(named: FaceRef[], argv: InterpolateArgs, screen: Screen): FaceRef[] {
  if (named.length > 1) {
    throw new UsageError(
      'E_BAD_ARGUMENT',
      `--walk ${argv.walk} walks an attribute on one face, but ${named.length} faces were named (${named.map(formatFaceRef).join(' ')})`,
      {
        hint: `Name one face, e.g. \`celeba-gan interpolate ${formatFaceRef(named[0]!)} --walk ${argv.walk}\`, or leave --walk out to walk between faces.`,
      },
    );
  }
  if (named.length === 1) return named;
  const seed = argv.seed === undefined ? randomSeed() : assertInteger('seed', argv.seed, 0, MAX_SEED);
  const keys = randomFaces(1, seed);
  screen.say(`random face ${formatFaceRef(keys[0]!)} (the same walk again: celeba-gan interpolate ${formatFaceRef(keys[0]!)} --walk ${argv.walk})`);
  return keys;
}

function pickedModel(screen: Screen): string {
  const pick = pickModel();
  screen.say(`model ${pick.path} (${pick.why})`);
  return pick.path;
}

function walkFormatOf(out: string): WalkFormat {
  const format = FORMAT_OF_EXT[extname(out).toLowerCase()];
  if (!format) {
    throw new UsageError('E_BAD_ARGUMENT', `cannot tell the format of --out ${out}: expected a name ending in ${WALK_FORMATS.map((f) => `.${f}`).join(', ')}`, {
      hint: '.webp or .gif for an animation, .png for a strip of frames.',
    });
  }
  return format;
}

function frameName(i: number, format: ImageFormat): string {
  return imageFileName(i, format).replace(/^face-/, 'frame-');
}

/** Before any work: an existing --out (or first frame) is refused without --force. */
function refuseOverwrite(out: string, frames: string | undefined, frameFormat: ImageFormat, force: boolean): void {
  if (force) return;
  if (existsSync(out))
    throw new UsageError('E_OUTPUT_EXISTS', `${out} already exists; not overwriting it`, { hint: 'Pass --force to overwrite, or choose another --out.' });
  const first = frames === undefined ? null : join(frames, frameName(0, frameFormat));
  if (first !== null && existsSync(first)) {
    throw new UsageError('E_OUTPUT_EXISTS', `${first} already exists; not overwriting it`, {
      hint: 'Pass --force to overwrite, or choose another --frames folder.',
    });
  }
}

/** All frames, with a progress bar; null when a signal stopped it (nothing is written then). */
async function renderWithProgress(session: GeneratorSession, walk: WalkPlan, screen: Screen): Promise<Uint8Array | null> {
  const { info } = session;
  const progress = screen.startBar(new Progress({ label: 'interpolate', total: walk.total, unit: 'frames' }));
  const stop = catchStopSignals({ finishing: () => 'stopping after this batch of frames; nothing is written', print: (line) => screen.log(line) });
  try {
    return await renderFrames((z, n, labels) => session.run(z, n, labels), walk.z, info.zDim, info.image, {
      labels: walk.labels,
      onFrames: (done) => progress.update(done),
      signal: stop.signal,
    });
  } catch (err) {
    if (!stop.received) throw err;
    screen.endBar();
    screen.say('stopped; nothing written');
    process.exitCode = stop.exitCode!;
    return null;
  } finally {
    stop.dispose();
    screen.endBar();
  }
}

/** Hints for interpolate's outputs, where fileError's generic ones would not name the flags. */
const OUTPUT_HINTS: Partial<Record<string, string>> = {
  EROFS: 'Pass --out (and --frames) on a writable disk.',
  EACCES: 'Pass --out (and --frames) somewhere you can write.',
  EPERM: 'Pass --out (and --frames) somewhere you can write.',
  E_OUTPUT_EXISTS: 'Pass --force to overwrite, or choose another --out.',
};

/** The walk, atomically; OS failures as E_NO_SPACE, E_READ_ONLY, ... like every command's. */
function writeOutput(out: string, bytes: Uint8Array): void {
  ensureFolder(dirname(out), 'create the folder of', OUTPUT_HINTS);
  writeFileAtomicSync(out, bytes, { hints: OUTPUT_HINTS });
}

/** Each frame as a file, encoded and written one at a time. */
async function writeFrames(dir: string, frames: Uint8Array, total: number, image: GeneratorSession['info']['image'], f: Flags): Promise<void> {
  ensureFolder(dir, 'create the frames folder', OUTPUT_HINTS);
  for (let i = 0; i < total; i++) {
    const bytes = await encodeFrame(frames, i, image, { format: f.frameFormat, upscale: f.upscale, resize: f.resize });
    writeFileAtomicSync(join(dir, frameName(i, f.frameFormat)), bytes, { hints: OUTPUT_HINTS });
  }
}
