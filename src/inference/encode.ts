import { PNG } from 'pngjs';
import sharp from 'sharp';

/**
 * One face image -> encoded file bytes. The one encoder of generated faces: `generate` writes
 * these bytes to files and `serve` answers with them, so a face is the same bytes either way.
 */

export const IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];
export const RESIZE_KERNELS = ['lanczos', 'nearest'] as const;
export type ResizeKernel = (typeof RESIZE_KERNELS)[number];

/** File extension of each format (`face-000001.jpg`, `/v1/faces/1/2.jpg`). */
export const EXTENSIONS: Readonly<Record<ImageFormat, string>> = Object.freeze({ png: 'png', jpeg: 'jpg', webp: 'webp' });
const SHARP_KERNELS: Readonly<Record<ResizeKernel, 'lanczos3' | 'nearest'>> = Object.freeze({ lanczos: 'lanczos3', nearest: 'nearest' });

export interface EncodeOptions {
  format: ImageFormat;
  /** Integer scale factor (1 = the model's size). */
  upscale: number;
  resize: ResizeKernel;
}

/** `raw`: one uint8 HWC image of h x w x c (c = 1, 3 or 4). */
export async function encodeImage(raw: Uint8Array, h: number, w: number, c: number, o: EncodeOptions): Promise<Buffer> {
  if (o.format === 'png' && o.upscale === 1 && c === 3) {
    // Plain PNG of a small face: pngjs (zlib) costs a fraction of a sharp pipeline's fixed
    // per-call CPU, which on the cpu provider is taken from onnxruntime (docs/benchmarks.md: bench:generate).
    return PNG.sync.write(Object.assign(new PNG({ width: w, height: h }), { data: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) }), {
      colorType: 2,
      inputColorType: 2,
      inputHasAlpha: false,
    });
  }
  let img = sharp(raw, { raw: { width: w, height: h, channels: c as 1 | 3 | 4 } });
  if (o.upscale > 1) img = img.resize(w * o.upscale, h * o.upscale, { kernel: SHARP_KERNELS[o.resize] });
  img = o.format === 'png' ? img.png() : o.format === 'jpeg' ? img.jpeg({ quality: 92 }) : img.webp({ quality: 92 });
  return img.toBuffer();
}
