import { deflateSync } from 'node:zlib';
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
  if (isPlainPng(c, o)) return pngOfRgb(uint8Rows(raw), h, w);
  let img = sharp(raw, { raw: { width: w, height: h, channels: c as 1 | 3 | 4 } });
  if (o.upscale > 1) img = img.resize(w * o.upscale, h * o.upscale, { kernel: SHARP_KERNELS[o.resize] });
  img = o.format === 'png' ? img.png() : o.format === 'jpeg' ? img.jpeg({ quality: 92 }) : img.webp({ quality: 92 });
  return img.toBuffer();
}

/**
 * True when a face is a plain PNG at the model's size: the case pngOfRgb (below) encodes on the
 * calling thread in one pass, a fraction of a sharp pipeline's fixed per-call CPU (which on the
 * cpu provider is taken from onnxruntime; docs/benchmarks.md: bench:generate, bench:serve).
 */
export function isPlainPng(c: number, o: Pick<EncodeOptions, 'format' | 'upscale'>): boolean {
  return o.format === 'png' && o.upscale === 1 && c === 3;
}

/**
 * Face `i` of a model's output (float NCHW in [-1, 1], 3 channels) as the PNG `encodeImage`
 * writes for its pixels, without the uint8 copy in between: the same bytes, synchronously.
 * For serve's per-face and batch routes, where this is most of the work per face.
 */
export function pngOfFace(images: Float32Array, i: number, h: number, w: number): Buffer {
  const plane = h * w;
  if (images.length < (i + 1) * 3 * plane)
    throw new RangeError(`pngOfFace: face ${i} of [3, ${h}, ${w}] needs ${(i + 1) * 3 * plane} values but received ${images.length}`);
  return pngOfRgb(floatRows(images, i * 3 * plane, h, w), h, w);
}

/*
 * The PNG encoder of small faces. Its bytes are those pngjs 7 (`PNG.sync.write` with colorType 2)
 * writes, which `generate` wrote before it (test/inference/encode.test.ts compares them for many
 * sizes and images): signature, IHDR, one IDAT, IEND; every row filtered by the first of None,
 * Sub, Up, Average, Paeth with the least sum of |signed difference| (None: of the bytes); the
 * filtered rows through zlib at level 9 with strategy Z_RLE (3). Made in one pass: each row's
 * five sums in one loop over the row, then the chosen filter written. zlib's output does not
 * depend on its chunkSize (it only sizes the output pieces); a small one keeps the output buffer
 * in Node's pool (32 KiB, pngjs's, cost 3x the whole encode of a 28x28 face in allocation).
 */

/** Fills `row` (3 zero bytes, then w x 3 bytes of row y) with row y's pixels. */
type RowSource = (row: Uint8Array, y: number) => void;

function uint8Rows(raw: Uint8Array): RowSource {
  return (row, y) => {
    const bw = row.length - 3;
    row.set(raw.subarray(y * bw, (y + 1) * bw), 3);
  };
}

/** Rows of one float NCHW image at `offset`, converted as floatNchwToUint8Hwc does (NaN -> 0). */
function floatRows(data: Float32Array, offset: number, h: number, w: number): RowSource {
  const plane = h * w;
  return (row, y) => {
    for (let ch = 0; ch < 3; ch++) {
      const s = offset + ch * plane + y * w;
      for (let x = 0; x < w; x++) {
        // floor(v + 0.5) is Math.round(v) here: (x + 1) * 127.5 of a float32 x is exact in a double.
        const v = (data[s + x]! + 1) * 127.5 + 0.5;
        row[3 + x * 3 + ch] = v >= 255 ? 255 : v > 0 ? v | 0 : 0;
      }
    }
  };
}

const BPP = 3;
const ZLIB = Object.freeze({ level: 9, strategy: 3, chunkSize: 4032 });
const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** PNG's CRC-32 of bytes[start .. end] (zlib.crc32 is Node 20.15+; the project runs on any 20). */
function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** `type`'s chunk: length, type, data, CRC of type and data. */
function chunk(type: string, data: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(12 + data.length);
  b.writeUInt32BE(data.length, 0);
  b.write(type, 4, 'latin1');
  b.set(data, 8);
  b.writeUInt32BE(crc32(b, 4, 8 + data.length), 8 + data.length);
  return b;
}

const IEND = chunk('IEND', Buffer.alloc(0));

function ihdr(h: number, w: number): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(w, 0);
  d.writeUInt32BE(h, 4);
  d[8] = 8; // bit depth
  d[9] = 2; // RGB; compression, filter and interlace methods 0
  return chunk('IHDR', d);
}

/** Scratch rows, reused: the encoder is synchronous, so one set per thread is enough. */
let scratch = { bw: -1, cur: new Uint8Array(0), prev: new Uint8Array(0), filtered: Buffer.alloc(0) };

function pngOfRgb(source: RowSource, h: number, w: number): Buffer {
  const bw = w * BPP;
  if (scratch.bw !== bw || scratch.filtered.length < h * (bw + 1)) {
    scratch = { bw, cur: new Uint8Array(bw + BPP), prev: new Uint8Array(bw + BPP), filtered: Buffer.allocUnsafe(h * (bw + 1)) };
  }
  let { cur, prev } = scratch;
  const { filtered } = scratch;
  prev.fill(0); // above the first row: zeros, as pngjs's filters take it
  for (let y = 0; y < h; y++) {
    source(cur, y);
    filterRow(cur, prev, filtered, y * (bw + 1));
    [cur, prev] = [prev, cur];
  }
  const idat = deflateSync(filtered.subarray(0, h * (bw + 1)), ZLIB);
  const head = ihdr(h, w);
  const out = Buffer.allocUnsafe(SIGNATURE.length + head.length + 12 + idat.length + IEND.length);
  let at = SIGNATURE.copy(out, 0);
  at += head.copy(out, at);
  out.writeUInt32BE(idat.length, at);
  out.write('IDAT', at + 4, 'latin1');
  idat.copy(out, at + 8);
  out.writeUInt32BE(crc32(out, at + 4, at + 8 + idat.length), at + 8 + idat.length);
  at += 12 + idat.length;
  IEND.copy(out, at);
  return out;
}

/**
 * One row (`cur`, `prev`: 3 zero bytes then the row's bytes) -> its filter type and filtered
 * bytes at filtered[at ..]. pngjs's rule: the least sum of |difference| before it wraps to a
 * byte, first in the order None, Sub, Up, Average, Paeth on ties.
 */
function filterRow(cur: Uint8Array, prev: Uint8Array, filtered: Buffer, at: number): void {
  const end = cur.length;
  let none = 0;
  let sub = 0;
  let up = 0;
  let avg = 0;
  let paeth = 0;
  for (let x = BPP; x < end; x++) {
    const v = cur[x]!;
    const a = cur[x - BPP]!;
    const b = prev[x]!;
    const c = prev[x - BPP]!;
    none += v;
    sub += Math.abs(v - a);
    up += Math.abs(v - b);
    avg += Math.abs(v - ((a + b) >> 1));
    paeth += Math.abs(v - paethPredictor(a, b, c));
  }
  let type = 0;
  let min = none;
  if (sub < min) {
    type = 1;
    min = sub;
  }
  if (up < min) {
    type = 2;
    min = up;
  }
  if (avg < min) {
    type = 3;
    min = avg;
  }
  if (paeth < min) type = 4;
  filtered[at] = type;
  const o = at + 1 - BPP;
  switch (type) {
    case 0:
      filtered.set(cur.subarray(BPP), at + 1);
      break;
    case 1:
      for (let x = BPP; x < end; x++) filtered[o + x] = cur[x]! - cur[x - BPP]!;
      break;
    case 2:
      for (let x = BPP; x < end; x++) filtered[o + x] = cur[x]! - prev[x]!;
      break;
    case 3:
      for (let x = BPP; x < end; x++) filtered[o + x] = cur[x]! - ((cur[x - BPP]! + prev[x]!) >> 1);
      break;
    default:
      for (let x = BPP; x < end; x++) filtered[o + x] = cur[x]! - paethPredictor(cur[x - BPP]!, prev[x]!, prev[x - BPP]!);
  }
}

function paethPredictor(left: number, above: number, upLeft: number): number {
  const p = left + above - upLeft;
  const pLeft = Math.abs(p - left);
  const pAbove = Math.abs(p - above);
  const pUpLeft = Math.abs(p - upLeft);
  if (pLeft <= pAbove && pLeft <= pUpLeft) return left;
  return pAbove <= pUpLeft ? above : upLeft;
}
