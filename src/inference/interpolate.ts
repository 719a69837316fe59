import sharp from 'sharp';
import { UsageError, assertInteger, assertOneOf, expected } from '../errors.js';
import { floatNchwToUint8Hwc, gridPixels } from '../util/image.js';
import { encodeImage, RESIZE_KERNELS, type ResizeKernel } from './encode.js';
import { MAX_FACE_INDEX, MAX_SEED, checkTruncation, latentsFor, type LatentKind } from './latents.js';
import { itemAt } from '../util/at.js';
import { parseAttributeRequest, type AttributeDraw, type AttributeRequest, type ModelAttributes, type NamedAttribute } from './attributes.js';

/**
 * Latent walks between faces, shared by `celeba-gan interpolate` and the server's
 * `/v1/interpolate`: name keyframes as `seed:index` (the face `generate --seed S --index I`
 * makes), build the path between their latents (slerp or lerp), render the frames through any
 * `run(z, n)` (a GeneratorSession, or the server's batcher) and encode them as an animated
 * WebP or GIF, or a PNG strip.
 *
 * Frame 0 is keyframe 0's latent exactly (copied, not computed), so it is the same pixels, and
 * through encodeImage the same bytes, as `generate --seed S --index I` with the same options.
 */

export interface FaceRef {
  seed: number;
  index: number;
}

export const WALK_FORMATS = ['webp', 'gif', 'png'] as const;
/** webp / gif: animated; png: a strip of the frames side by side. */
export type WalkFormat = (typeof WALK_FORMATS)[number];

export { MAX_SEED };

/** `7:417` -> { seed: 7, index: 417 }. `name` is the flag or parameter named in errors. */
export function parseFaceRef(text: string, name: string): FaceRef {
  const m = /^(\d{1,10}):(\d{1,10})$/.exec(text);
  const seed = m ? Number(m[1]) : NaN;
  const index = m ? Number(m[2]) : NaN;
  if (!m || seed > MAX_SEED || index > MAX_FACE_INDEX) {
    throw new UsageError('E_BAD_ARGUMENT', expected(`a face as seed:index (integers 0 to ${MAX_SEED})`, name, text), {
      hint: 'Name a face the way `generate` makes it: `7:417` is `celeba-gan generate --seed 7 --index 417`.',
    });
  }
  return { seed, index };
}

export function formatFaceRef(f: FaceRef): string {
  return `${f.seed}:${f.index}`;
}

export interface WalkOptions {
  /** Frames from one keyframe to the next, both included (>= 2). */
  steps: number;
  /** Spherical interpolation (default for normal latents; uniform latents default to lerp). */
  slerp?: boolean;
  /** Walk back from the last keyframe to the first (a seamless animation). */
  loop?: boolean;
  truncation?: number;
}

/** Slerp is the default for N(0, 1) latents, whose mass lies on a shell a straight line cuts through. */
export function defaultSlerp(latent: LatentKind): boolean {
  return latent === 'normal';
}

/** Frames a walk through `keyframes` makes: (k-1)(steps-1)+1, or k(steps-1) with loop. */
export function walkFrameCount(keyframes: number, steps: number, loop: boolean): number {
  return loop ? keyframes * (steps - 1) : (keyframes - 1) * (steps - 1) + 1;
}

function mix(a: Float32Array, b: Float32Array, t: number, slerp: boolean, out: Float32Array): void {
  // Hot loop, so `]!`: a, b and out are latents of one length (zDim), and i < n = a.length.
  const n = a.length;
  if (slerp) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = 0; i < n; i++) {
      dot += a[i]! * b[i]!;
      na += a[i]! * a[i]!;
      nb += b[i]! * b[i]!;
    }
    const cos = Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb)));
    const theta = Math.acos(cos);
    // Nearly parallel latents: the sines vanish; a straight line is the same path there.
    if (Number.isFinite(theta) && Math.sin(theta) > 1e-6) {
      const s = Math.sin(theta);
      const wa = Math.sin((1 - t) * theta) / s;
      const wb = Math.sin(t * theta) / s;
      for (let i = 0; i < n; i++) out[i] = wa * a[i]! + wb * b[i]!;
      return;
    }
  }
  for (let i = 0; i < n; i++) out[i] = (1 - t) * a[i]! + t * b[i]!;
}

/**
 * The latents of a walk through `keyframes` ([frames, zDim] float32). Each keyframe's latent is
 * latentsFor(seed, index) with the given truncation; keyframe frames are exact copies of it.
 */
export function walkLatents(keyframes: readonly FaceRef[], zDim: number, latent: LatentKind, opts: WalkOptions): Float32Array {
  const loop = opts.loop ?? false;
  if (keyframes.length < 2) {
    throw new UsageError('E_BAD_ARGUMENT', expected('at least 2 faces', 'keyframes', keyframes.length), {
      hint: 'Name two faces, e.g. `7:0 7:1`, or none for two random ones.',
    });
  }
  const steps = assertInteger('steps', opts.steps, 2, 1000);
  const truncation = checkTruncation(latent, opts.truncation);
  const slerp = opts.slerp ?? defaultSlerp(latent);
  const keys = keyframes.map((f) => latentsFor(f.seed, f.index, 1, zDim, latent, truncation));
  const frames = walkFrameCount(keys.length, steps, loop);
  const out = new Float32Array(frames * zDim);
  const segments = loop ? keys.length : keys.length - 1;
  let frame = 0;
  for (let s = 0; s < segments; s++) {
    const a = itemAt(keys, s, 'keyframe');
    const b = itemAt(keys, (s + 1) % keys.length, 'keyframe');
    for (let k = 0; k < steps - 1; k++) {
      const row = out.subarray(frame * zDim, (frame + 1) * zDim);
      if (k === 0) row.set(a);
      else mix(a, b, k / (steps - 1), slerp, row);
      frame++;
    }
  }
  if (!loop) out.set(itemAt(keys, keys.length - 1, 'keyframe'), frame * zDim);
  return out;
}

/**
 * Anything that turns z [n, zDim] (and a conditional model's label rows [n, K]) into images
 * [n, C, H, W] in [-1, 1]: a session, a batcher.
 */
export type RunModel = (z: Float32Array, n: number, labels?: Float32Array) => Promise<Float32Array>;

export interface ImageShape {
  channels: number;
  height: number;
  width: number;
}

/**
 * Run the walk's latents (and `labels`, a conditional model's rows per frame) through the model
 * in batches of at most `batchSize` and return the frames as uint8 HWC, back to back. `onFrames(done)` reports progress.
 */
export async function renderFrames(
  run: RunModel,
  z: Float32Array,
  zDim: number,
  image: ImageShape,
  opts: { batchSize?: number; onFrames?: (done: number, total: number) => void; signal?: AbortSignal; labels?: Float32Array } = {},
): Promise<Uint8Array> {
  const frames = z.length / zDim;
  const batch = assertInteger('batch-size', opts.batchSize ?? 64, 1, 65536);
  const { channels: c, height: h, width: w } = image;
  const size = c * h * w;
  const out = new Uint8Array(frames * size);
  for (let first = 0; first < frames; first += batch) {
    opts.signal?.throwIfAborted();
    const m = Math.min(batch, frames - first);
    const k = opts.labels ? opts.labels.length / frames : 0;
    const labels = opts.labels?.subarray(first * k, (first + m) * k);
    const images = await run(z.subarray(first * zDim, (first + m) * zDim), m, labels);
    floatNchwToUint8Hwc(images, m, c, h, w, out.subarray(first * size, (first + m) * size));
    opts.onFrames?.(first + m, frames);
  }
  return out;
}

export interface WalkEncodeOptions {
  format: WalkFormat;
  upscale: number;
  resize: ResizeKernel;
  /** Milliseconds per frame of an animation. */
  delayMs: number;
}

const SHARP_KERNELS: Readonly<Record<ResizeKernel, 'lanczos3' | 'nearest'>> = Object.freeze({ lanczos: 'lanczos3', nearest: 'nearest' });

/** Frame i of `frames` encoded as generate would write it (format png, jpeg or webp). */
export function encodeFrame(frames: Uint8Array, i: number, image: ImageShape, o: Parameters<typeof encodeImage>[4]): Promise<Buffer> {
  const { channels: c, height: h, width: w } = image;
  const size = c * h * w;
  return encodeImage(frames.subarray(i * size, (i + 1) * size), h, w, c, o);
}

/** Frames (uint8 HWC, back to back) -> one animated WebP/GIF, or a PNG strip. */
export async function encodeWalk(frames: Uint8Array, image: ImageShape, o: WalkEncodeOptions): Promise<Buffer> {
  const format = assertOneOf('format', o.format, WALK_FORMATS);
  const upscale = assertInteger('upscale', o.upscale, 1, 16);
  const resize = assertOneOf('resize', o.resize, RESIZE_KERNELS);
  const delay = assertInteger('delay', o.delayMs, 1, 65535);
  const { channels: c, height: h, width: w } = image;
  const n = frames.length / (c * h * w);
  let data = frames;
  let fh = h;
  let fw = w;
  if (upscale > 1) {
    // Each frame on its own, with the kernel generate uses, so frames match generate's faces.
    fh = h * upscale;
    fw = w * upscale;
    data = new Uint8Array(n * fh * fw * c);
    const size = c * h * w;
    for (let i = 0; i < n; i++) {
      const up = await sharp(frames.subarray(i * size, (i + 1) * size), { raw: { width: w, height: h, channels: c as 1 | 3 | 4 } })
        .resize(fw, fh, { kernel: SHARP_KERNELS[resize] })
        .raw()
        .toBuffer();
      data.set(up, i * fh * fw * c);
    }
  }
  if (format === 'png') {
    const strip = gridPixels(data, n, fh, fw, c, { cols: n, gap: 0 });
    return sharp(strip.data, { raw: { width: strip.width, height: strip.height, channels: c as 1 | 3 | 4 } })
      .png()
      .toBuffer();
  }
  const img = sharp(data, { raw: { width: fw, height: fh * n, channels: c as 1 | 3 | 4, pageHeight: fh } });
  const anim = { loop: 0, delay: Array.from({ length: n }, () => delay) };
  return format === 'gif' ? img.gif(anim).toBuffer() : img.webp({ ...anim, lossless: true }).toBuffer();
}

/**
 * The label rows of a walk's frames ([frames, K]), in walkLatents' frame order: each keyframe's
 * row, and between two keyframes the straight line from one row to the next, as the latents go
 * from one face to the next (a conditional network takes any values in [-1, 1]).
 */
export function walkRows(keys: readonly Float32Array[], steps: number, loop: boolean): Float32Array {
  const k = keys[0]!.length;
  const out = new Float32Array(walkFrameCount(keys.length, steps, loop) * k);
  const segments = loop ? keys.length : keys.length - 1;
  let frame = 0;
  for (let s = 0; s < segments; s++) {
    const a = keys[s]!;
    const b = keys[(s + 1) % keys.length]!;
    for (let step = 0; step < steps - 1; step++, frame++) {
      const t = step / (steps - 1);
      for (let i = 0; i < k; i++) out[frame * k + i] = step === 0 ? a[i]! : (1 - t) * a[i]! + t * b[i]!;
    }
  }
  if (!loop) out.set(keys[keys.length - 1]!, frame * k);
  return out;
}

/**
 * A walk between faces: each keyframe face carries its own row for the request, so attributes
 * the request names stay put and the others change from one face's to the next's.
 */
export function faceWalkRows(draw: AttributeDraw, keyframes: readonly FaceRef[], steps: number, loop: boolean): Float32Array {
  return walkRows(
    keyframes.map((f) => draw.rowsFor(f.seed, f.index, 1)),
    steps,
    loop,
  );
}

/**
 * An attribute walk: one face (its row for the request) with attribute `index` going from -1 to
 * +1 over `steps` frames (and back with loop), every other attribute as drawn.
 */
export function attributeWalkRows(draw: AttributeDraw, face: FaceRef, index: number, steps: number, loop: boolean): Float32Array {
  const row = draw.rowsFor(face.seed, face.index, 1);
  const without = row.slice();
  without[index] = -1;
  const withIt = row.slice();
  withIt[index] = 1;
  return walkRows([without, withIt], steps, loop);
}

/**
 * The attribute an attribute walk moves (`--walk NAME`, walk=NAME): one of the model's
 * attributes, named without a sign (E_ATTR_REQUEST), that the request beside it (`--attr`, attr=)
 * leaves to the walk (E_ATTR_CONFLICT); E_ATTR_UNKNOWN lists the model's attributes and an
 * unconditional model is E_NOT_CONDITIONAL, as for any request. `flags` name the two options
 * in the messages.
 */
export function walkedAttribute(
  name: string,
  request: AttributeRequest | undefined,
  model: ModelAttributes | null,
  flags: { walk: string; attr: string },
  what?: string,
): NamedAttribute {
  const [named, ...more] = parseAttributeRequest(name, model, what).named;
  if (named === undefined || more.length > 0 || /^\s*[+-]/.test(name)) {
    throw new UsageError('E_ATTR_REQUEST', `${flags.walk.trimEnd()} names one attribute, without a sign, but received "${name}"`, {
      hint: `Name the attribute to walk from -1 to +1, e.g. ${flags.walk}${model!.names[0]}.`,
    });
  }
  if (request?.named.some((a) => a.index === named.index)) {
    throw new UsageError('E_ATTR_CONFLICT', `${flags.walk}${named.name} walks ${named.name} from -1 to +1, but ${flags.attr} "${request.text}" also sets it`, {
      hint: `Leave ${named.name} out of ${flags.attr}.`,
    });
  }
  return named;
}

/** An attribute walk's latents: face `face`'s latent, copied into each of `frames` frames (only the attribute moves). */
export function heldLatents(face: FaceRef, frames: number, zDim: number, latent: LatentKind, truncation?: number): Float32Array {
  const z = latentsFor(face.seed, face.index, 1, zDim, latent, truncation);
  const out = new Float32Array(frames * zDim);
  for (let i = 0; i < frames; i++) out.set(z, i * zDim);
  return out;
}
