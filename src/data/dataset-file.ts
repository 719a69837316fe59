import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CelebaGanError, fileError } from '../errors.js';
import { openAtomicSync, writeAllSync, type AtomicFile } from '../util/atomic.js';
import { itemAt } from '../util/at.js';

/**
 * The celeba-gan dataset file (`.cgds`): a 64-byte header, then `count` images as uint8 HWC
 * (RGB) pixels, back to back, then (version 3, labelled data sets only) the labels. Training
 * reads images and labels by index without decoding anything.
 *
 * Header (little-endian):
 *   0  4  magic "CGDS"
 *   4  2  format version (3 when labelled, else 2; versions 1 and 2 are still read)
 *   6  2  header size in bytes (64)
 *   8  4  image count
 *  12  2  height
 *  14  2  width
 *  16  2  channels (3)
 *  18  2  flags (bit 0: synthetic data set, made by `prepare --synthetic`;
 *                 bit 1: bytes 52..55 hold the seed it was drawn with;
 *                 bit 2: labelled, version 3: bytes 56..61 give the label layout)
 *  20 32  checksum: SHA-256 of everything after the header (pixels, then labels and attribute
 *          table when labelled) followed by header bytes 0..19 and 52..63
 *          (version 1: of the pixel bytes only)
 *  52  4  seed of a synthetic data set (when flag bit 1 is set)
 *  56  2  K, the number of attributes (labelled; else zero)
 *  58  4  L, the attribute table's size in bytes (labelled; else zero)
 *  62  2  reserved (zero)
 *
 * Labelled data sets (version 3) continue after the pixels with
 *   count x K int8 labels, +1 (has the attribute) or -1, one row of K per image in image order;
 *   the attribute table, L bytes of UTF-8 JSON `{"names":[...K],"positives":[...K]}`: the
 *   attribute names in order and, per attribute, how many images have it (+1), from which the
 *   frequencies are exact. Labels cost K bytes per image, 40 for CelebA's full set.
 * Placing them after the pixels keeps every image at the offset it has in version 2, and an
 * unlabelled data set is still written as version 2, byte for byte what earlier versions wrote.
 * Version 2 covers every header field except the checksum itself, so flipping the synthetic
 * flag or the seed fails verification like a damaged pixel does. Version 1 files are still read
 * (their header fields are not covered; `legacyNote` says so). Readers of files written before
 * the seed field see flag bit 1 clear and no seed.
 */

const DATASET_MAGIC = 'CGDS';
/** The version written for a labelled data set; an unlabelled one is written as version 2. */
const DATASET_VERSION = 3;
const UNLABELLED_DATASET_VERSION = 2;
/** Versions this celeba-gan reads. */
const READABLE_DATASET_VERSIONS: readonly number[] = Object.freeze([1, 2, 3]);
export const DATASET_HEADER_SIZE = 64;
const FLAG_SYNTHETIC = 1;
const FLAG_SEED = 2;
const FLAG_LABELLED = 4;
/** Attribute names: what CelebA's file can hold (no spaces), at most 64 characters each. */
const ATTRIBUTE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/;
/** More attributes than any face attribute set has (CelebA: 40), bounding label memory per image. */
const MAX_ATTRIBUTES = 1024;

/** The attributes of a labelled data set. */
export interface DatasetAttributes {
  /** Names, in the order of each image's labels. */
  names: string[];
  /** Per attribute, the fraction of images labelled +1. */
  frequencies: number[];
}

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
  /** Labelled data sets (version 3) only. */
  attributes?: DatasetAttributes;
}

/** Where a version-3 file's labels and attribute table are: header bytes 56..61. */
interface LabelLayout {
  /** K, labels per image (0: unlabelled). */
  attributeCount: number;
  /** L, bytes of the attribute table. */
  tableBytes: number;
}

const NO_LABELS: LabelLayout = Object.freeze({ attributeCount: 0, tableBytes: 0 });

export function encodeHeader(h: DatasetHeader, labels: LabelLayout = NO_LABELS): Buffer {
  const b = Buffer.alloc(DATASET_HEADER_SIZE);
  b.write(DATASET_MAGIC, 0, 'latin1');
  b.writeUInt16LE(h.version, 4);
  b.writeUInt16LE(DATASET_HEADER_SIZE, 6);
  b.writeUInt32LE(h.count, 8);
  b.writeUInt16LE(h.height, 12);
  b.writeUInt16LE(h.width, 14);
  b.writeUInt16LE(h.channels, 16);
  const labelled = labels.attributeCount > 0;
  b.writeUInt16LE((h.synthetic ? FLAG_SYNTHETIC : 0) | (h.seed !== undefined ? FLAG_SEED : 0) | (labelled ? FLAG_LABELLED : 0), 18);
  Buffer.from(h.checksum, 'hex').copy(b, 20);
  if (h.seed !== undefined) b.writeUInt32LE(h.seed >>> 0, 52);
  if (labelled) {
    b.writeUInt16LE(labels.attributeCount, 56);
    b.writeUInt32LE(labels.tableBytes, 58);
  }
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
  return decodeLayout(b, path, fileSize).header;
}

/** The header and where the labels are; checks the file size against both. */
function decodeLayout(b: Buffer, path: string, fileSize: number): { header: DatasetHeader; labels: LabelLayout } {
  if (b.length < DATASET_HEADER_SIZE) throw corrupt(path, `shorter than the ${DATASET_HEADER_SIZE}-byte header`);
  if (b.toString('latin1', 0, 4) !== DATASET_MAGIC) throw corrupt(path, 'wrong magic bytes (expected "CGDS")');
  const version = b.readUInt16LE(4);
  if (!READABLE_DATASET_VERSIONS.includes(version)) {
    throw new CelebaGanError('E_DATASET_VERSION', `${path} has dataset format version ${version}; this celeba-gan reads versions ${READABLE_DATASET_VERSIONS.slice(0, -1).join(', ')} and ${READABLE_DATASET_VERSIONS.at(-1)}`, {
      hint: 'Re-run `celeba-gan prepare` with this version to rebuild the data set.',
    });
  }
  if (b.readUInt16LE(6) !== DATASET_HEADER_SIZE) throw corrupt(path, `header size ${b.readUInt16LE(6)} is not ${DATASET_HEADER_SIZE}`);
  const flags = b.readUInt16LE(18);
  const h: DatasetHeader = {
    version,
    count: b.readUInt32LE(8),
    height: b.readUInt16LE(12),
    width: b.readUInt16LE(14),
    channels: b.readUInt16LE(16),
    synthetic: (flags & FLAG_SYNTHETIC) !== 0,
    checksum: b.toString('hex', 20, 52),
  };
  if ((flags & FLAG_SEED) !== 0) h.seed = b.readUInt32LE(52);
  if (h.height < 1 || h.width < 1 || h.channels !== 3) {
    throw corrupt(path, `the header gives images of ${h.height}x${h.width}x${h.channels}; images are at least 1x1 and have 3 channels`);
  }
  const labelled = (flags & FLAG_LABELLED) !== 0;
  if (labelled !== (version >= 3)) throw corrupt(path, `version ${version} with the labelled flag ${labelled ? 'set' : 'clear'} (version 3 files are labelled, earlier ones are not)`);
  const labels = labelled ? { attributeCount: b.readUInt16LE(56), tableBytes: b.readUInt32LE(58) } : NO_LABELS;
  if (labelled && (labels.attributeCount < 1 || labels.attributeCount > MAX_ATTRIBUTES || labels.tableBytes < 2)) {
    throw corrupt(path, `the header gives ${labels.attributeCount} attributes and a ${labels.tableBytes}-byte attribute table`);
  }
  const pixelBytes = h.count * h.height * h.width * h.channels;
  const labelBytes = h.count * labels.attributeCount + labels.tableBytes;
  const expectedSize = DATASET_HEADER_SIZE + pixelBytes + labelBytes;
  if (fileSize !== expectedSize) {
    const what = labelled ? ` and ${labels.attributeCount} labels each plus a ${labels.tableBytes}-byte attribute table` : '';
    throw corrupt(path, `${h.count} images of ${h.height}x${h.width}x${h.channels}${what} need ${expectedSize} bytes but the file has ${fileSize} (truncated?)`);
  }
  return { header: h, labels };
}

/** The attribute table's bytes: JSON names and positive counts (see the file header). */
function encodeAttributeTable(names: readonly string[], positives: readonly number[]): Buffer {
  return Buffer.from(JSON.stringify({ names, positives }), 'utf8');
}

function decodeAttributeTable(bytes: Buffer, path: string, count: number, k: number): DatasetAttributes {
  let table: unknown;
  try {
    table = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt(path, 'the attribute table is not valid JSON');
  }
  const { names, positives } = (table ?? {}) as { names?: unknown; positives?: unknown };
  const okNames = Array.isArray(names) && names.length === k && names.every((n) => typeof n === 'string' && ATTRIBUTE_NAME.test(n)) && new Set(names).size === k;
  const okCounts = Array.isArray(positives) && positives.length === k && positives.every((p) => Number.isInteger(p) && p >= 0 && p <= count);
  if (!okNames || !okCounts) throw corrupt(path, `the attribute table does not hold ${k} distinct names and ${k} counts of at most ${count}`);
  return { names: names as string[], frequencies: (positives as number[]).map((p) => (count === 0 ? 0 : p / count)) };
}

/** Whether `name` can be an attribute name in a data set (and in CelebA's space-separated file). */
function isAttributeName(name: string): boolean {
  return ATTRIBUTE_NAME.test(name);
}

/**
 * Streams images (and, for a labelled data set, their labels) into a new dataset file; nothing
 * appears at `path` until `finish()`. Labels are kept in memory until then (K bytes per image:
 * 8 MB for CelebA's 202,599 images with all 40 attributes) because they follow the pixels.
 */
export class DatasetWriter {
  private readonly file: AtomicFile;
  private readonly hash = createHash('sha256');
  private count = 0;
  private readonly imageBytes: number;
  private readonly labelChunks: Int8Array[] = [];
  private readonly positives: number[];

  constructor(
    readonly path: string,
    readonly height: number,
    readonly width: number,
    readonly channels = 3,
    readonly synthetic = false,
    /** Recorded in the header (synthetic data sets). */
    readonly seed?: number,
    /** Attribute names of a labelled data set (version 3); every `append` then carries labels. */
    readonly attributes: readonly string[] = [],
  ) {
    if (attributes.length > MAX_ATTRIBUTES) throw new RangeError(`${attributes.length} attributes; a data set holds at most ${MAX_ATTRIBUTES}`);
    const bad = attributes.find((n, i) => !isAttributeName(n) || attributes.indexOf(n) !== i);
    if (bad !== undefined) throw new RangeError(`attribute name ${JSON.stringify(bad)} is repeated or not a name (letters, digits, _ . + -; at most 64)`);
    this.positives = attributes.map(() => 0);
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

  /** Append one or more whole images (HWC uint8) and, when labelled, K labels (+1/-1) per image. */
  append(pixels: Uint8Array, labels?: Int8Array): void {
    if (pixels.length % this.imageBytes !== 0) {
      throw new Error(`append() got ${pixels.length} bytes, not a multiple of one ${this.height}x${this.width}x${this.channels} image`);
    }
    const n = pixels.length / this.imageBytes;
    const k = this.attributes.length;
    if ((labels?.length ?? 0) !== n * k) {
      throw new Error(`append() got ${labels?.length ?? 0} labels for ${n} images of ${k} attributes; expected ${n * k}`);
    }
    if (labels !== undefined && k > 0) {
      for (let i = 0; i < labels.length; i++) {
        const v = labels[i]!;
        if (v !== 1 && v !== -1) throw new RangeError(`append() label ${i} is ${v}; labels are +1 or -1`);
        if (v === 1) this.positives[i % k]!++;
      }
      this.labelChunks.push(Int8Array.from(labels));
    }
    this.write(pixels, DATASET_HEADER_SIZE + this.count * this.imageBytes);
    this.hash.update(pixels);
    this.count += n;
  }

  finish(): DatasetHeader {
    const labelled = this.attributes.length > 0;
    const header: DatasetHeader = {
      version: labelled ? DATASET_VERSION : UNLABELLED_DATASET_VERSION,
      count: this.count,
      height: this.height,
      width: this.width,
      channels: this.channels,
      synthetic: this.synthetic,
      checksum: '',
      ...(this.seed !== undefined ? { seed: this.seed } : {}),
    };
    let layout = NO_LABELS;
    if (labelled) {
      const table = encodeAttributeTable(this.attributes, this.positives);
      let at = DATASET_HEADER_SIZE + this.count * this.imageBytes;
      for (const chunk of [...this.labelChunks, table]) {
        const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        this.write(bytes, at);
        this.hash.update(bytes);
        at += bytes.length;
      }
      layout = { attributeCount: this.attributes.length, tableBytes: table.length };
      header.attributes = { names: [...this.attributes], frequencies: this.positives.map((p) => (this.count === 0 ? 0 : p / this.count)) };
    }
    header.checksum = this.hash.update(coveredHeaderBytes(encodeHeader({ ...header, checksum: '00'.repeat(32) }, layout))).digest('hex');
    this.write(encodeHeader(header, layout), 0);
    this.file.commit();
    return header;
  }

  abort(): void {
    this.file.abort();
  }
}

const DATA_IS_FOLDER_HINT =
  'Pass the data set file (a .cgds made by `celeba-gan prepare`), not a folder; to use a folder of images, run `celeba-gan prepare --input <folder>` first.';

/** Random access to a dataset file's images and, for a labelled data set, their labels. */
export class DatasetReader {
  readonly header: DatasetHeader;
  readonly imageBytes: number;
  private fd: number;
  private readonly rawHeader: Buffer;
  private readonly labels: LabelLayout;
  private readonly fileSize: number;

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
      this.fileSize = fstatSync(this.fd).size;
      const { header, labels } = decodeLayout(head.subarray(0, n), path, this.fileSize);
      this.header = header;
      this.labels = labels;
      this.imageBytes = header.height * header.width * header.channels;
      if (labels.attributeCount > 0) header.attributes = this.readAttributeTable();
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  /**
   * The attribute table at the end of the file. When it does not decode, the file is hashed:
   * damage is then reported as the checksum mismatch it is, like a damaged pixel; a table that
   * fails with a matching checksum was written wrong, and says so.
   */
  private readAttributeTable(): DatasetAttributes {
    const table = Buffer.alloc(this.labels.tableBytes);
    readSync(this.fd, table, 0, table.length, this.fileSize - table.length);
    try {
      return decodeAttributeTable(table, this.path, this.header.count, this.labels.attributeCount);
    } catch (err) {
      this.verify();
      throw err;
    }
  }

  get count(): number {
    return this.header.count;
  }

  /** Names and frequencies of a labelled data set's attributes; undefined when it has none. */
  get attributes(): DatasetAttributes | undefined {
    return this.header.attributes;
  }

  /** Copy images `indices` (HWC uint8) into `out`, back to back. */
  read(indices: ArrayLike<number>, out: Uint8Array = new Uint8Array(indices.length * this.imageBytes)): Uint8Array {
    for (let i = 0; i < indices.length; i++) {
      const idx = this.checkIndex(itemAt(indices, i, 'indices'));
      readSync(this.fd, out, i * this.imageBytes, this.imageBytes, DATASET_HEADER_SIZE + idx * this.imageBytes);
    }
    return out;
  }

  /**
   * The labels of images `indices` as +1/-1 floats, K per image in the order of
   * `attributes.names`, back to back. Throws on an unlabelled data set.
   */
  readLabels(indices: ArrayLike<number>, out: Float32Array = new Float32Array(indices.length * this.labels.attributeCount)): Float32Array {
    const k = this.labels.attributeCount;
    if (k === 0) throw new Error(`readLabels(): ${this.path} is not labelled`);
    const row = Buffer.alloc(k);
    const start = DATASET_HEADER_SIZE + this.header.count * this.imageBytes;
    for (let i = 0; i < indices.length; i++) {
      const idx = this.checkIndex(itemAt(indices, i, 'indices'));
      readSync(this.fd, row, 0, k, start + idx * k);
      for (let a = 0; a < k; a++) {
        const v = row.readInt8(a);
        // A damaged byte is caught here even when the caller never ran verify().
        if (v !== 1 && v !== -1) throw corrupt(this.path, `label ${a} of image ${idx} is ${v}, not +1 or -1`);
        out[i * k + a] = v;
      }
    }
    return out;
  }

  private checkIndex(idx: number): number {
    if (idx < 0 || idx >= this.header.count) throw new RangeError(`image index ${idx} outside 0..${this.header.count - 1}`);
    return idx;
  }

  /** Re-hash everything after the header and compare with the header; throws E_DATASET_CORRUPT on mismatch. */
  verify(): void {
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(1 << 22);
    const v1 = this.header.version === 1;
    // Version 1 and 2 files end after the pixels; version 3 adds labels and the table, all covered.
    const total = this.fileSize - DATASET_HEADER_SIZE;
    for (let off = 0; off < total; ) {
      const n = readSync(this.fd, chunk, 0, Math.min(chunk.length, total - off), DATASET_HEADER_SIZE + off);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      off += n;
    }
    if (!v1) hash.update(coveredHeaderBytes(this.rawHeader));
    const actual = hash.digest('hex');
    if (actual !== this.header.checksum) {
      const covers = v1 ? 'pixel checksum' : `checksum of the pixels${this.labels.attributeCount > 0 ? ', labels' : ''} and header fields (flags, seed, sizes)`;
      throw corrupt(this.path, `${covers} ${actual.slice(0, 12)}… does not match the header's ${this.header.checksum.slice(0, 12)}…`);
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
