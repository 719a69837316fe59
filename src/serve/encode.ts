import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { encodeWalk, type ImageShape, type WalkEncodeOptions } from '../inference/interpolate.js';
import { gridPixels } from '../util/image.js';

/**
 * The server's big encodes, kept off the event loop. Choice: sharp's threaded pipeline (libvips
 * on libuv's thread pool), not a worker pool of our own: every big image is already a sharp
 * pipeline (resize + PNG/WebP/GIF), sharp runs it off the JS thread with no copy into a worker
 * and no second encoder to keep byte-identical with `generate`, so the JS thread keeps only
 * layout work proportional to the model's output (before upscaling).
 *
 * Big encodes run one fewer at a time than there are cores (at least one): libvips would
 * otherwise start one pipeline per libuv thread, each as wide as the machine, and on a small
 * machine the event loop then waits for a core behind them (measured: /healthz p90 ~60 ms
 * with 8 grids in flight on 2 cores, against a few ms with this limit; docs serve.md).
 */
const bigEncodes = pLimit(Math.max(1, availableParallelism() - 1));

/** A contact sheet laid out at the model's size (2 px gaps), then nearest-upscaled and encoded by sharp. */
export function encodeGridPng(
  images: Uint8Array,
  n: number,
  image: ImageShape,
  upscale: number,
  cols: number | undefined,
  signal: AbortSignal,
): Promise<Buffer> {
  return bigEncodes(() => {
    signal.throwIfAborted();
    const { channels: c, height: h, width: w } = image;
    const g = gridPixels(images, n, h, w, c, { cols });
    let img = sharp(g.data, { raw: { width: g.width, height: g.height, channels: c as 1 | 3 | 4 } });
    if (upscale > 1) img = img.resize(g.width * upscale, g.height * upscale, { kernel: 'nearest' });
    return img.png().toBuffer();
  });
}

const SHARP_KERNELS = Object.freeze({ lanczos: 'lanczos3', nearest: 'nearest' } as const);

/**
 * A walk's frames (uint8 HWC, back to back) as encodeWalk makes them, with the per-frame upscale
 * done here so that `signal` stops it between frames (encodeWalk upscales the same way, frame by
 * frame with the same kernel, so the bytes are the CLI's).
 */
export async function encodeWalkAbortable(frames: Uint8Array, image: ImageShape, o: WalkEncodeOptions, signal: AbortSignal): Promise<Buffer> {
  const { channels: c, height: h, width: w } = image;
  const size = c * h * w;
  const n = frames.length / size;
  if (o.upscale === 1) return bigEncodes(() => (signal.throwIfAborted(), encodeWalk(frames, image, o)));
  const fh = h * o.upscale;
  const fw = w * o.upscale;
  const data = new Uint8Array(n * fh * fw * c);
  for (let i = 0; i < n; i++) {
    signal.throwIfAborted();
    const up = await sharp(frames.subarray(i * size, (i + 1) * size), { raw: { width: w, height: h, channels: c as 1 | 3 | 4 } })
      .resize(fw, fh, { kernel: SHARP_KERNELS[o.resize] })
      .raw()
      .toBuffer();
    data.set(up, i * fh * fw * c);
  }
  return bigEncodes(() => {
    signal.throwIfAborted();
    return encodeWalk(data, { channels: c, height: fh, width: fw }, { ...o, upscale: 1 });
  });
}
