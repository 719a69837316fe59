import sharp from 'sharp';

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

export const FLATTEN_BACKGROUND = '#ffffff';

/** Decode, orient, crop, resize. Throws (sharp's error) for anything that is not a readable image. */
export async function cropResize(input: Buffer, opts: CropResizeOptions): Promise<Buffer> {
  // Reading the header first is cheap (no pixel decode) and gives the upright size the crop needs.
  const meta = await sharp(input).metadata();
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new Error(`image has no dimensions (${meta.format ?? 'unknown format'})`);
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
