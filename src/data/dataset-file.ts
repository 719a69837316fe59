import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CelebaGanError, fileError } from '../errors.js';
import { openAtomicSync, writeAllSync, type AtomicFile } from '../util/atomic.js';

/**
 * The celeba-gan dataset file (`.cgds`): a 64-byte header, then `count` images as uint8 HWC
 * (RGB) pixels, back to back. Training reads images by index without decoding anything.
 *
 * Header (little-endian):
 *   0  4  magic "CGDS"
 *   4  2  format version (1)
 *   6  2  header size in bytes (64)
 *   8  4  image count
 *  12  2  height
 *  14  2  width
 *  16  2  channels (3)
 *  18  2  flags (bit 0: synthetic data set, made by `prepare --synthetic`;
 *                 bit 1: bytes 52..55 hold the seed it was drawn with)
 *  20 32  SHA-256 of the pixel bytes
 *  52  4  seed of a synthetic data set (when flag bit 1 is set)
 *  56  8  reserved (zero)
 * Readers of files written before the seed field see flag bit 1 clear and no seed.
 */

export const DATASET_MAGIC = 'CGDS';
export const DATASET_VERSION = 1;
export const DATASET_HEADER_SIZE = 64;
export const FLAG_SYNTHETIC = 1;
export const FLAG_SEED = 2;

export interface DatasetHeader {
  version: number;
  count: number;
  height: number;
  width: number;
  channels: number;
  synthetic: boolean;
  /** Hex SHA-256 of the pixel bytes. */
  checksum: string;
  /** The seed a synthetic data set was drawn with (absent for real images). */
  seed?: number;
}

export function encodeHeader(h: DatasetHeader): Buffer {
  const b = Buffer.alloc(DATASET_HEADER_SIZE);
  b.write(DATASET_MAGIC, 0, 'latin1');
  b.writeUInt16LE(h.version, 4);
  b.writeUInt16LE(DATASET_HEADER_SIZE, 6);
  b.writeUInt32LE(h.count, 8);
  b.writeUInt16LE(h.height, 12);
  b.writeUInt16LE(h.width, 14);
  b.writeUInt16LE(h.channels, 16);
  b.writeUInt16LE((h.synthetic ? FLAG_SYNTHETIC : 0) | (h.seed !== undefined ? FLAG_SEED : 0), 18);
  Buffer.from(h.checksum, 'hex').copy(b, 20);
  if (h.seed !== undefined) b.writeUInt32LE(h.seed >>> 0, 52);
  return b;
}

function corrupt(path: string, why: string): CelebaGanError {
  return new CelebaGanError('E_DATASET_CORRUPT', `${path} is not a valid celeba-gan dataset: ${why}`, {
    hint: 'Recreate it with `celeba-gan prepare --input <images> --out <file>.cgds` (or `--synthetic N`).',
  });
}

export function decodeHeader(b: Buffer, path: string, fileSize: number): DatasetHeader {
  if (b.length < DATASET_HEADER_SIZE) throw corrupt(path, `shorter than the ${DATASET_HEADER_SIZE}-byte header`);
  if (b.toString('latin1', 0, 4) !== DATASET_MAGIC) throw corrupt(path, 'wrong magic bytes (expected "CGDS")');
  const version = b.readUInt16LE(4);
  if (version !== DATASET_VERSION) {
    throw new CelebaGanError('E_DATASET_VERSION', `${path} has dataset format version ${version}; this celeba-gan reads version ${DATASET_VERSION}`, {
      hint: 'Re-run `celeba-gan prepare` with this version to rebuild the data set.',
    });
  }
  if (b.readUInt16LE(6) !== DATASET_HEADER_SIZE) throw corrupt(path, `header size ${b.readUInt16LE(6)} is not ${DATASET_HEADER_SIZE}`);
  const h: DatasetHeader = {
    version,
    count: b.readUInt32LE(8),
    height: b.readUInt16LE(12),
    width: b.readUInt16LE(14),
    channels: b.readUInt16LE(16),
    synthetic: (b.readUInt16LE(18) & FLAG_SYNTHETIC) !== 0,
    checksum: b.toString('hex', 20, 52),
  };
  if ((b.readUInt16LE(18) & FLAG_SEED) !== 0) h.seed = b.readUInt32LE(52);
  const expectedSize = DATASET_HEADER_SIZE + h.count * h.height * h.width * h.channels;
  if (fileSize !== expectedSize) {
    throw corrupt(path, `${h.count} images of ${h.height}x${h.width}x${h.channels} need ${expectedSize} bytes but the file has ${fileSize} (truncated?)`);
  }
  return h;
}

/** Streams images into a new dataset file; nothing appears at `path` until `finish()`. */
export class DatasetWriter {
  private readonly file: AtomicFile;
  private readonly hash = createHash('sha256');
  private count = 0;
  private readonly imageBytes: number;

  constructor(
    readonly path: string,
    readonly height: number,
    readonly width: number,
    readonly channels = 3,
    readonly synthetic = false,
    /** Recorded in the header (synthetic data sets). */
    readonly seed?: number,
  ) {
    this.imageBytes = height * width * channels;
    this.file = openAtomicSync(path);
    this.write(Buffer.alloc(DATASET_HEADER_SIZE), 0);
  }

  private write(bytes: Uint8Array, position: number): void {
    try {
      writeAllSync(this.file.fd, bytes, position);
    } catch (err) {
      throw fileError(err, this.path, 'write');
    }
  }

  get written(): number {
    return this.count;
  }

  /** Append one or more whole images (HWC uint8). */
  append(pixels: Uint8Array): void {
    if (pixels.length % this.imageBytes !== 0) {
      throw new Error(`append() got ${pixels.length} bytes, not a multiple of one ${this.height}x${this.width}x${this.channels} image`);
    }
    this.write(pixels, DATASET_HEADER_SIZE + this.count * this.imageBytes);
    this.hash.update(pixels);
    this.count += pixels.length / this.imageBytes;
  }

  finish(): DatasetHeader {
    const header: DatasetHeader = {
      version: DATASET_VERSION,
      count: this.count,
      height: this.height,
      width: this.width,
      channels: this.channels,
      synthetic: this.synthetic,
      checksum: this.hash.digest('hex'),
      ...(this.seed !== undefined ? { seed: this.seed } : {}),
    };
    this.write(encodeHeader(header), 0);
    this.file.commit();
    return header;
  }

  abort(): void {
    this.file.abort();
  }
}

/** Random access to a dataset file's images. */
export class DatasetReader {
  readonly header: DatasetHeader;
  readonly imageBytes: number;
  private fd: number;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        throw new CelebaGanError('E_DATASET_MISSING', `dataset file ${path} does not exist`, {
          hint: 'Create one with `celeba-gan prepare --synthetic 20000 --out data/synthetic-28.cgds` or `celeba-gan prepare --input <images>`.',
          kind: 'usage',
        });
      }
      throw err;
    }
    const head = Buffer.alloc(DATASET_HEADER_SIZE);
    const n = readSync(this.fd, head, 0, DATASET_HEADER_SIZE, 0);
    this.header = decodeHeader(head.subarray(0, n), path, fstatSync(this.fd).size);
    this.imageBytes = this.header.height * this.header.width * this.header.channels;
  }

  get count(): number {
    return this.header.count;
  }

  /** Copy images `indices` (HWC uint8) into `out`, back to back. */
  read(indices: ArrayLike<number>, out: Uint8Array = new Uint8Array(indices.length * this.imageBytes)): Uint8Array {
    for (let i = 0; i < indices.length; i++) {
      const idx = indices[i]!;
      if (idx < 0 || idx >= this.header.count) throw new RangeError(`image index ${idx} outside 0..${this.header.count - 1}`);
      readSync(this.fd, out, i * this.imageBytes, this.imageBytes, DATASET_HEADER_SIZE + idx * this.imageBytes);
    }
    return out;
  }

  /** Re-hash the pixels and compare with the header; throws E_DATASET_CORRUPT on mismatch. */
  verify(): void {
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(1 << 22);
    const total = this.header.count * this.imageBytes;
    for (let off = 0; off < total; ) {
      const n = readSync(this.fd, chunk, 0, Math.min(chunk.length, total - off), DATASET_HEADER_SIZE + off);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      off += n;
    }
    const actual = hash.digest('hex');
    if (actual !== this.header.checksum) throw corrupt(this.path, `pixel checksum ${actual.slice(0, 12)}… does not match the header's ${this.header.checksum.slice(0, 12)}…`);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
