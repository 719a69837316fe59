import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CelebaGanError, fileError } from '../errors.js';
import { openAtomicSync, writeAllSync, type AtomicFile } from '../util/atomic.js';
import { itemAt } from '../util/at.js';

/**
 * The celeba-gan dataset file (`.cgds`): a 64-byte header, then `count` images as uint8 HWC
 * (RGB) pixels, back to back. Training reads images by index without decoding anything.
 *
 * Header (little-endian):
 *   0  4  magic "CGDS"
 *   4  2  format version (2; version 1 is still read)
 *   6  2  header size in bytes (64)
 *   8  4  image count
 *  12  2  height
 *  14  2  width
 *  16  2  channels (3)
 *  18  2  flags (bit 0: synthetic data set, made by `prepare --synthetic`;
 *                 bit 1: bytes 52..55 hold the seed it was drawn with)
 *  20 32  checksum: SHA-256 of the pixel bytes followed by header bytes 0..19 and 52..63
 *          (version 1: of the pixel bytes only)
 *  52  4  seed of a synthetic data set (when flag bit 1 is set)
 *  56  8  reserved (zero)
 * Version 2 covers every header field except the checksum itself, so flipping the synthetic
 * flag or the seed fails verification like a damaged pixel does. Version 1 files are still read
 * (their header fields are not covered; `legacyNote` says so). Readers of files written before
 * the seed field see flag bit 1 clear and no seed.
 */

export const DATASET_MAGIC = 'CGDS';
export const DATASET_VERSION = 2;
/** Versions this celeba-gan reads. */
export const READABLE_DATASET_VERSIONS: readonly number[] = Object.freeze([1, 2]);
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
  /** Hex checksum (see the file header: pixels and header fields; version 1: pixels only). */
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

/** The header bytes a version-2 checksum covers after the pixels: all but the checksum itself. */
function coveredHeaderBytes(header: Buffer): Buffer {
  return Buffer.concat([header.subarray(0, 20), header.subarray(52, DATASET_HEADER_SIZE)]);
}

/** What a version-1 file's header leaves unprotected, for readers to pass on. */
export function legacyNote(h: DatasetHeader): string | null {
  return h.version === 1
    ? 'format version 1: the checksum covers the pixels only, not the header\'s flags and seed; re-run `celeba-gan prepare` to write version 2'
    : null;
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
  if (!READABLE_DATASET_VERSIONS.includes(version)) {
    throw new CelebaGanError('E_DATASET_VERSION', `${path} has dataset format version ${version}; this celeba-gan reads versions ${READABLE_DATASET_VERSIONS.join(' and ')}`, {
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
  if (h.height < 1 || h.width < 1 || h.channels !== 3) {
    throw corrupt(path, `the header gives images of ${h.height}x${h.width}x${h.channels}; images are at least 1x1 and have 3 channels`);
  }
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
    try {
      this.write(Buffer.alloc(DATASET_HEADER_SIZE), 0);
    } catch (err) {
      this.file.abort(); // the caller never gets a writer to abort
      throw err;
    }
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
      checksum: '',
      ...(this.seed !== undefined ? { seed: this.seed } : {}),
    };
    header.checksum = this.hash.update(coveredHeaderBytes(encodeHeader({ ...header, checksum: '00'.repeat(32) }))).digest('hex');
    this.write(encodeHeader(header), 0);
    this.file.commit();
    return header;
  }

  abort(): void {
    this.file.abort();
  }
}

const DATA_IS_FOLDER_HINT =
  'Pass the data set file (a .cgds made by `celeba-gan prepare`), not a folder; to use a folder of images, run `celeba-gan prepare --input <folder>` first.';

/** Random access to a dataset file's images. */
export class DatasetReader {
  readonly header: DatasetHeader;
  readonly imageBytes: number;
  private fd: number;
  private readonly rawHeader: Buffer;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        throw new CelebaGanError('E_DATASET_MISSING', `dataset file ${path} does not exist`, {
          hint: 'Create one with `celeba-gan prepare --synthetic 20000 --out data/synthetic-28.cgds` or `celeba-gan prepare --input <images>`.',
        });
      }
      throw fileError(err, path, 'open the data set', { EISDIR: DATA_IS_FOLDER_HINT });
    }
    const head = Buffer.alloc(DATASET_HEADER_SIZE);
    let n: number;
    try {
      n = readSync(this.fd, head, 0, DATASET_HEADER_SIZE, 0);
    } catch (err) {
      closeSync(this.fd);
      throw fileError(err, path, 'read the data set', { EISDIR: DATA_IS_FOLDER_HINT });
    }
    this.rawHeader = head;
    try {
      this.header = decodeHeader(head.subarray(0, n), path, fstatSync(this.fd).size);
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
    this.imageBytes = this.header.height * this.header.width * this.header.channels;
  }

  get count(): number {
    return this.header.count;
  }

  /** Copy images `indices` (HWC uint8) into `out`, back to back. */
  read(indices: ArrayLike<number>, out: Uint8Array = new Uint8Array(indices.length * this.imageBytes)): Uint8Array {
    for (let i = 0; i < indices.length; i++) {
      const idx = itemAt(indices, i, 'indices');
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
    const v1 = this.header.version === 1;
    if (!v1) hash.update(coveredHeaderBytes(this.rawHeader));
    const actual = hash.digest('hex');
    if (actual !== this.header.checksum) {
      const covers = v1 ? 'pixel checksum' : 'checksum of the pixels and header fields (flags, seed, sizes)';
      throw corrupt(this.path, `${covers} ${actual.slice(0, 12)}… does not match the header's ${this.header.checksum.slice(0, 12)}…`);
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
