import sharp from 'sharp';
import { describeContent, sniffImageType } from './image-type.js';

/**
 * One image file -> one square training image (uint8 HWC RGB), as the original notebook did:
 * a centred crop (108x108 for CelebA's 178x218 aligned faces), then a bilinear resize.
 *
 * - The crop offsets round down like the original's `(w - 108) // 2` (35, 55 for CelebA).
 * - An image smaller than the crop in either direction gets the largest centred square that
 *   fits instead (so a 100x90 image gives its centred 90x90); `crop = 0` always takes the
 *   largest centred square (for photos much bigger than CelebA's).
 * - Colour: EXIF orientation applied first; alpha flattened onto white; greyscale, CMYK
 *   (through its ICC profile or libvips' default) and 16-bit inputs all become 8-bit sRGB.
 */

export interface CropResizeOptions {
  /** Output side in pixels. */
  size: number;
  /** Centre-crop side before resizing; 0 = the largest centred square. */
  crop: number;
}

export interface CropBox {
  left: number;
  top: number;
  side: number;
}

/** The centred square taken from a width x height image (after EXIF rotation). */
export function cropBox(width: number, height: number, crop: number): CropBox {
  const side = crop > 0 ? Math.min(crop, width, height) : Math.min(width, height);
  return { left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), side };
}

const FLATTEN_BACKGROUND = '#ffffff';

export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF orientation 1..8 (1 when there is none). */
  orientation: number;
}

/**
 * Size and EXIF orientation of a JPEG from its header bytes, or null when this is not a JPEG or
 * anything about the header is unusual (the caller then asks libvips). Worth having because the
 * crop needs the size before decoding, and a second libvips call per image would cost a
 * measurable share of `prepare`'s throughput on CelebA-sized files.
 */
export function readJpegHeader(b: Uint8Array): JpegHeader | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  // Every read below is inside a length checked first; DataView throws a RangeError otherwise.
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (o: number) => view.getUint16(o);
  let orientation = 1;
  let pos = 2;
  while (pos + 4 <= b.length) {
    if (b[pos] !== 0xff) return null;
    const marker = view.getUint8(pos + 1);
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2; // standalone markers carry no length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return null; // end or scan data before any frame header
    const len = u16(pos + 2);
    const seg = pos + 4;
    if (len < 2 || pos + 2 + len > b.length) return null;
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (len < 7) return null;
      const height = u16(seg + 1);
      const width = u16(seg + 3);
      if (width === 0 || height === 0) return null;
      return { width, height, orientation };
    }
    if (marker === 0xe1 && len >= 8 && String.fromCharCode(...b.subarray(seg, seg + 6)) === 'Exif\0\0') {
      const o = exifOrientation(b.subarray(seg + 6, pos + 2 + len));
      if (o === null) return null;
      orientation = o;
    }
    pos += 2 + len;
  }
  return null;
}

/** Orientation (tag 0x0112 of IFD0) from a TIFF-structured EXIF block; 1 if absent, null if malformed. */
function exifOrientation(t: Uint8Array): number | null {
  if (t.length < 8) return null;
  const le = t[0] === 0x49 && t[1] === 0x49;
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return null;
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const u16 = (o: number) => view.getUint16(o, le);
  const u32 = (o: number) => view.getUint32(o, le);
  if (u16(2) !== 42) return null;
  const ifd = u32(4);
  if (ifd + 2 > t.length) return null;
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > t.length) return null;
    if (u16(e) === 0x0112) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : 1; // libvips ignores out-of-range values too
    }
  }
  return 1;
}

/** The upright (EXIF-rotated) size: from the JPEG header when possible, else from libvips. */
async function uprightSize(input: Buffer): Promise<{ width: number; height: number }> {
  const jpeg = readJpegHeader(input);
  if (jpeg) return jpeg.orientation >= 5 ? { width: jpeg.height, height: jpeg.width } : { width: jpeg.width, height: jpeg.height };
  const meta = await sharp(input).metadata();
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new Error(`image has no dimensions (${meta.format ?? 'unknown format'})`);
  return { width, height };
}

/**
 * Decode, orient, crop, resize. Only JPEG, PNG and WebP by content reach sharp (image-type.ts);
 * throws for anything else, and sharp's error for an unreadable image.
 */
export async function cropResize(input: Buffer, opts: CropResizeOptions): Promise<Buffer> {
  if (sniffImageType(input) === null) throw new Error(`unsupported image format: ${describeContent(input)}; only JPEG, PNG and WebP are accepted (decided by content, not by the name)`);
  const { width, height } = await uprightSize(input);
  const box = cropBox(width, height, opts.crop);
  const { data, info } = await sharp(input)
    .rotate()
    .flatten({ background: FLATTEN_BACKGROUND })
    .extract({ left: box.left, top: box.top, width: box.side, height: box.side })
    .resize(opts.size, opts.size, { kernel: 'linear', fit: 'fill' })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== opts.size || info.height !== opts.size || data.length !== opts.size * opts.size * 3) {
    throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, not ${opts.size}x${opts.size}x3`);
  }
  return data;
}
