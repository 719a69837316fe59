import sharp from 'sharp';
import { writeFileAtomic } from './atomic.js';

/** Generator output (float32 NCHW in [-1, 1]) -> uint8 HWC images, back to back. */
export function floatNchwToUint8Hwc(data: Float32Array, n: number, c: number, h: number, w: number, out = new Uint8Array(n * h * w * c)): Uint8Array {
  // A short input would read as NaN and quietly become black pixels.
  if (data.length < n * c * h * w)
    throw new RangeError(`floatNchwToUint8Hwc: [${n}, ${c}, ${h}, ${w}] needs ${n * c * h * w} values but received ${data.length}`);
  // `]!` in the pixel loop: s + p < n * c * h * w <= data.length (checked above).
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const src = i * c * plane;
    const dst = i * plane * c;
    for (let ch = 0; ch < c; ch++) {
      const s = src + ch * plane;
      for (let p = 0; p < plane; p++) {
        const v = Math.round((data[s + p]! + 1) * 127.5);
        out[dst + p * c + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

export interface GridOptions {
  /** Columns; default ceil(sqrt(n)). */
  cols?: number;
  /** Integer nearest-neighbour scale of each tile (small 28x28 faces are hard to see). */
  upscale?: number;
  /** Pixels between tiles (filled with `background`). */
  gap?: number;
  background?: number;
}

/** Lay out `n` uint8 HWC images of h x w x c into one grid image (uint8 HWC). */
export function gridPixels(
  images: Uint8Array,
  n: number,
  h: number,
  w: number,
  c: number,
  opts: GridOptions = {},
): { data: Uint8Array; width: number; height: number } {
  const cols = Math.max(1, opts.cols ?? Math.ceil(Math.sqrt(n)));
  const rows = Math.max(1, Math.ceil(n / cols));
  const s = Math.max(1, Math.floor(opts.upscale ?? 1));
  const gap = opts.gap ?? 2;
  const th = h * s;
  const tw = w * s;
  const width = cols * tw + (cols + 1) * gap;
  const height = rows * th + (rows + 1) * gap;
  const data = new Uint8Array(width * height * c).fill(opts.background ?? 24);
  if (images.length < n * h * w * c)
    throw new RangeError(`gridPixels: ${n} images of ${h}x${w}x${c} need ${n * h * w * c} bytes but received ${images.length}`);
  // `]!` in the pixel loop: sy < h, sx < w and i < n, so src + ch < n * h * w * c <= images.length.
  for (let i = 0; i < n; i++) {
    const x0 = gap + (i % cols) * (tw + gap);
    const y0 = gap + Math.floor(i / cols) * (th + gap);
    const base = i * h * w * c;
    for (let y = 0; y < th; y++) {
      const sy = Math.floor(y / s);
      for (let x = 0; x < tw; x++) {
        const sx = Math.floor(x / s);
        const src = base + (sy * w + sx) * c;
        const dst = ((y0 + y) * width + x0 + x) * c;
        for (let ch = 0; ch < c; ch++) data[dst + ch] = images[src + ch]!;
      }
    }
  }
  return { data, width, height };
}

/** Write a PNG grid of uint8 HWC images atomically. */
export async function writeGridPng(path: string, images: Uint8Array, n: number, h: number, w: number, c: number, opts: GridOptions = {}): Promise<void> {
  const g = gridPixels(images, n, h, w, c, opts);
  const png = await sharp(g.data, { raw: { width: g.width, height: g.height, channels: c as 1 | 2 | 3 | 4 } })
    .png()
    .toBuffer();
  await writeFileAtomic(path, png);
}
