/**
 * What `prepare` accepts once a file's extension has picked it as an image: its content (magic
 * bytes) decides, JPEG, PNG and WebP. Anything else (SVG, whose rasteriser may fetch fonts and
 * write the system font cache; GIF, TIFF, HEIF, PDF...) is refused before sharp sees it.
 */

export type ImageType = 'jpeg' | 'png' | 'webp';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The image type of `bytes` by its magic bytes, or null for anything else. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  return null;
}

/** A short description of what the content looks like instead, for skip reasons. */
export function describeContent(bytes: Uint8Array): string {
  const head = ascii(bytes, 0, Math.min(bytes.length, 256)).trimStart().toLowerCase();
  if (head.startsWith('<?xml') || head.startsWith('<svg') || head.includes('<svg')) return 'SVG/XML text';
  if (head.startsWith('gif8')) return 'a GIF';
  if (head.startsWith('%pdf')) return 'a PDF';
  if (ascii(bytes, 0, 4) === 'II*\u0000' || ascii(bytes, 0, 4) === 'MM\u0000*') return 'a TIFF';
  if (ascii(bytes, 4, 8) === 'ftyp') return 'an ISO media file (HEIF/AVIF/MP4)';
  if (bytes.length === 0) return 'an empty file';
  const hex = Buffer.from(bytes.subarray(0, 4)).toString('hex');
  return `unknown content (first bytes ${hex})`;
}

function ascii(bytes: Uint8Array, from: number, to: number): string {
  return Buffer.from(bytes.subarray(from, to)).toString('latin1');
}
