import { writeGridPng } from '../util/image.js';
import { DatasetReader, type DatasetHeader } from './dataset-file.js';

/** `prepare --inspect`: read a data set's header, verify its checksum, draw a contact sheet. */

export interface InspectOptions {
  /** Where to write the contact sheet; default `defaultSheetPath(path)`; false for none. */
  sheet?: string | false;
  /** Images on the sheet (the first ones in the file); default 64. */
  count?: number;
}

export interface InspectResult {
  path: string;
  header: DatasetHeader;
  /** Bytes of pixels (excluding the header). */
  pixelBytes: number;
  /** True once the pixel checksum matched (a mismatch throws E_DATASET_CORRUPT instead). */
  verified: true;
  sheet: { path: string; images: number; upscale: number } | null;
}

/** `data/celeba-28.cgds` -> `data/celeba-28.sheet.png` */
export function defaultSheetPath(path: string): string {
  return `${path.replace(/\.cgds$/i, '')}.sheet.png`;
}

export async function inspectDataset(path: string, opts: InspectOptions = {}): Promise<InspectResult> {
  const reader = new DatasetReader(path);
  try {
    reader.verify();
    const { header } = reader;
    let sheet: InspectResult['sheet'] = null;
    if (opts.sheet !== false && header.count > 0) {
      const n = Math.min(opts.count ?? 64, header.count);
      // Small faces are upscaled (nearest neighbour) so the sheet is readable: 28 px -> 140 px tiles.
      const upscale = Math.max(1, Math.round(128 / Math.max(header.height, header.width)));
      const sheetPath = opts.sheet ?? defaultSheetPath(path);
      const images = reader.read(Uint32Array.from({ length: n }, (_, i) => i));
      await writeGridPng(sheetPath, images, n, header.height, header.width, header.channels, { cols: Math.min(8, n), upscale });
      sheet = { path: sheetPath, images: n, upscale };
    }
    return { path, header, pixelBytes: header.count * reader.imageBytes, verified: true, sheet };
  } finally {
    reader.close();
  }
}
