import { close, createReadStream, fstatSync, openSync, read, readFileSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { readdir, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { basename, extname, join, relative, sep } from 'node:path';
import yauzl from 'yauzl';
import { CelebaGanError, UsageError, fileError } from '../errors.js';
import { itemAt } from '../util/at.js';

/**
 * Where `prepare` reads images from: a folder (searched recursively) or a zip read in place
 * (CelebA ships as `img_align_celeba.zip`), never unpacked to disk. Entries are listed up front
 * and sorted by name (plain code-unit order, locale-independent), so the data set's image order
 * is the same on every machine and at every concurrency.
 */

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'] as const;

/** An input that was not turned into a training image, and why. */
export interface Skipped {
  /** Path relative to the folder, or the entry name inside the zip. */
  name: string;
  reason: string;
}

export interface ImageSource {
  readonly kind: 'folder' | 'zip';
  /** The --input path as given. */
  readonly path: string;
  /** Image entries (by extension), sorted; `read(i)` returns the bytes of `names[i]`. */
  readonly names: readonly string[];
  /** Entries refused before reading (unsafe zip paths, other file types), sorted by name. */
  readonly refused: readonly Skipped[];
  read(index: number): Promise<Buffer>;
  /**
   * The bytes of a file that is not an image, by its name in `refused` (how `prepare` reads a
   * `list_attr_celeba.txt` that came with the images); `maxBytes` bounds what is read.
   */
  readOther(name: string, maxBytes: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** What `readOther` throws for a file larger than `maxBytes` (its message gives the size). */
export class TooLargeError extends Error {
  constructor(
    readonly file: string,
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(`${file} is ${bytes} bytes, more than the ${maxBytes} allowed`);
  }
}

function isImageName(name: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function notAnImage(name: string): Skipped {
  const ext = extname(name) || '(no extension)';
  return { name, reason: `not an image file: extension ${ext} is not one of ${IMAGE_EXTENSIONS.join(', ')}` };
}

/** Open `input` (a folder or a .zip) for reading. Usage errors name what was wrong with it. */
export async function openImageSource(input: string): Promise<ImageSource> {
  let st;
  try {
    st = await stat(input);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UsageError('E_INPUT_MISSING', `--input ${input} does not exist`, {
        hint: 'Pass a folder of JPEG/PNG/WebP images or a zip such as img_align_celeba.zip, or use `--synthetic 20000` for a procedural data set.',
      });
    }
    throw fileError(err, input, 'read --input');
  }
  if (st.isDirectory()) return openFolder(input);
  if (st.isFile() && extname(input).toLowerCase() === '.zip') return openZip(input);
  throw new UsageError('E_BAD_INPUT', `Expected a folder or a .zip file for --input but received ${input} (${st.isFile() ? 'a file' : 'not a regular file'})`, {
    hint: 'Point --input at the folder that holds the images, or at the .zip they came in.',
  });
}

async function openFolder(root: string): Promise<ImageSource> {
  const images: { name: string }[] = [];
  const refused: Skipped[] = [];
  // Iterative walk; hidden files and folders (.git, .DS_Store) are not inputs.
  const dirs = [root];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    let items;
    try {
      items = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      refused.push({ name: relative(root, dir).split(sep).join('/') || '.', reason: `folder unreadable: ${(err as Error).message}` });
      continue;
    }
    for (const item of items) {
      if (item.name.startsWith('.')) continue;
      const full = join(dir, item.name);
      let isDir = item.isDirectory();
      let isFile = item.isFile();
      if (item.isSymbolicLink()) {
        try {
          const t = await stat(full);
          isDir = false; // never follow folder links: they can loop (reported below)
          isFile = t.isFile();
        } catch {
          refused.push({ name: relative(root, full).split(sep).join('/'), reason: 'broken symbolic link' });
          continue;
        }
      }
      const name = relative(root, full).split(sep).join('/');
      if (isDir) dirs.push(full);
      else if (isFile && isImageName(name)) images.push({ name });
      else if (isFile) refused.push(notAnImage(name));
      else if (item.isSymbolicLink()) refused.push({ name, reason: 'symbolic link to a folder: not followed (links can loop); pass that folder as --input instead' });
    }
  }
  images.sort(byName);
  refused.sort(byName);
  const names = images.map((e) => e.name);
  return {
    kind: 'folder',
    path: root,
    names,
    refused,
    // Synchronous on purpose: one small file costs a few syscalls, while fs.promises.readFile
    // makes four thread-pool round trips, a visible share of prepare's CPU time per CelebA image.
    read: async (i) => readFileSync(join(root, ...itemAt(names, i, 'image').split('/'))),
    readOther: async (name, maxBytes) => {
      if (!refused.some((s) => s.name === name)) throw new RangeError(`${name} is not one of the other files in ${root}`);
      const path = join(root, ...name.split('/'));
      const bytes = (await stat(path)).size;
      if (bytes > maxBytes) throw new TooLargeError(name, bytes, maxBytes);
      return readFileSync(path);
    },
    close: async () => undefined,
  };
}

/**
 * yauzl's file reader with one change: reads inside the central directory are served from a
 * 1 MiB block read once, instead of two small reads per entry. CelebA's directory has 202,599
 * entries; this makes listing it take about a second instead of tens of seconds.
 * Local headers are still read positionally from the shared descriptor.
 */
class ZipFileReader extends yauzl.RandomAccessReader {
  private static readonly BLOCK = 1 << 20;
  /** Offset where caching starts: the central directory, once yauzl has found it. */
  cacheFrom = Infinity;
  private block: Buffer | null = null;
  private blockStart = 0;

  constructor(
    private readonly path: string,
    private readonly fd: number,
    private readonly size: number,
  ) {
    super();
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    if (position < this.cacheFrom || length > ZipFileReader.BLOCK) {
      read(this.fd, buffer, offset, length, position, (err, n) => callback(err, n));
      return;
    }
    try {
      if (!this.block || position < this.blockStart || position + length > this.blockStart + this.block.length) {
        const n = Math.min(ZipFileReader.BLOCK, this.size - position);
        const block = Buffer.allocUnsafe(Math.max(0, n));
        let got = 0;
        while (got < block.length) {
          const k = readSync(this.fd, block, got, block.length - got, position + got);
          if (k === 0) break;
          got += k;
        }
        this.block = block.subarray(0, got);
        this.blockStart = position;
      }
      const from = position - this.blockStart;
      const n = this.block.copy(buffer, offset, from, Math.min(from + length, this.block.length));
      // Asynchronous like a real read: yauzl reads the next entry from inside the callback.
      queueMicrotask(() => callback(null, n));
    } catch (err) {
      queueMicrotask(() => callback(err as Error));
    }
  }

  /** Entry data: a stream with its own descriptor (a stream on the shared one closes it when destroyed). */
  override _readStreamForRange(start: number, end: number): Readable {
    return createReadStream(this.path, { start, end: end - 1 });
  }

  override close(callback: (err: Error | null) => void): void {
    this.block = null;
    close(this.fd, (err) => callback(err));
  }
}

/** What reading an entry needs, kept instead of yauzl's full Entry (memory: CelebA has ~200k of them). */
function slimEntry(e: yauzl.Entry): yauzl.Entry {
  return Object.assign(new yauzl.Entry(), {
    compressedSize: e.compressedSize,
    uncompressedSize: e.uncompressedSize,
    compressionMethod: e.compressionMethod,
    generalPurposeBitFlag: e.generalPurposeBitFlag,
    relativeOffsetOfLocalHeader: e.relativeOffsetOfLocalHeader,
  });
}

/**
 * Entry names are decoded here rather than by yauzl: yauzl rejects the whole archive at the
 * first unsafe name, while `prepare` refuses just that entry, reports it and goes on.
 */
async function openZip(path: string): Promise<ImageSource> {
  let zip: yauzl.ZipFile;
  const fd = openSync(path, 'r');
  const reader = new ZipFileReader(path, fd, fstatSync(fd).size);
  try {
    zip = await new Promise<yauzl.ZipFile>((resolve, reject) => {
      yauzl.fromRandomAccessReader(reader, fstatSync(fd).size, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true }, (err, z) =>
        err ? reject(err) : resolve(z),
      );
    });
  } catch (err) {
    reader.close(() => undefined);
    throw new CelebaGanError('E_ZIP_UNREADABLE', `--input ${path} could not be read as a zip: ${(err as Error).message}`, {
      hint: 'Check the download is complete (compare its size or checksum), or unpack it and pass the folder instead.',
      kind: 'usage',
      cause: err,
    });
  }
  reader.cacheFrom = (zip as unknown as { readEntryCursor: number }).readEntryCursor;
  const entries: { name: string; entry: yauzl.Entry }[] = [];
  const refused: Skipped[] = [];
  /** Entries that are not images, readable through readOther. */
  const others = new Map<string, yauzl.Entry>();
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (entry: yauzl.Entry) => {
        const raw = entry.fileName as unknown as Buffer;
        const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, false);
        const unsafe = yauzl.validateFileName(name);
        const leaf = basename(name);
        if (unsafe !== null) {
          refused.push({ name, reason: `refused: unsafe path in zip (${unsafe}); it would escape the output folder` });
        } else if (name.endsWith('/')) {
          // a folder entry: nothing to read
        } else if (leaf.startsWith('.') || name.startsWith('__MACOSX/')) {
          // macOS resource forks and hidden files are not inputs
        } else if (isImageName(name)) {
          entries.push({ name, entry: slimEntry(entry) });
        } else {
          refused.push(notAnImage(name));
          others.set(name, slimEntry(entry));
        }
        zip.readEntry();
      });
      zip.once('end', () => resolve());
      zip.once('error', reject);
      zip.readEntry();
    });
  } catch (err) {
    zip.close();
    throw new CelebaGanError('E_ZIP_UNREADABLE', `the zip directory of ${path} is damaged: ${(err as Error).message}`, {
      hint: 'Download the zip again, or unpack what you can and pass the folder instead.',
      cause: err,
    });
  }
  entries.sort(byName);
  refused.sort(byName);
  return {
    kind: 'zip',
    path,
    names: entries.map((e) => e.name),
    refused,
    read: async (i) => readZipEntrySync(fd, itemAt(entries, i, 'image').entry),
    readOther: async (name, maxBytes) => {
      const entry = others.get(name);
      if (entry === undefined) throw new RangeError(`${name} is not one of the other entries of ${path}`);
      if (entry.uncompressedSize > maxBytes) throw new TooLargeError(name, entry.uncompressedSize, maxBytes);
      return readZipEntrySync(fd, entry);
    },
    close: async () => zip.close(),
  };
}

/** Entries bigger than this are refused rather than inflated (a zip bomb, or not an image). */
const MAX_ENTRY_BYTES = 256 * 1024 * 1024;

/**
 * An entry's bytes, read directly: its local header (for where the data starts), the stored or
 * deflated data in one positional read, inflated in one call. yauzl's stream path does the same
 * through four streams per entry, which costs about a fifth of prepare's CPU time on CelebA.
 */
function readZipEntrySync(fd: number, entry: yauzl.Entry): Buffer {
  const readAt = (length: number, position: number): Buffer => {
    const b = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, b, got, length - got, position + got);
      if (n === 0) throw new Error(`unexpected end of zip file reading ${length} bytes at ${position}`);
      got += n;
    }
    return b;
  };
  if ((entry.generalPurposeBitFlag & 0x1) !== 0) throw new Error('entry is encrypted');
  if (entry.uncompressedSize > MAX_ENTRY_BYTES) throw new Error(`entry of ${entry.uncompressedSize} bytes is larger than any image prepare reads (${MAX_ENTRY_BYTES})`);
  const local = readAt(30, entry.relativeOffsetOfLocalHeader);
  if (local.readUInt32LE(0) !== 0x04034b50) throw new Error('invalid local file header signature');
  const start = entry.relativeOffsetOfLocalHeader + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  const raw = readAt(entry.compressedSize, start);
  let data: Buffer;
  if (entry.compressionMethod === 0) data = raw;
  else if (entry.compressionMethod === 8) data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
  else throw new Error(`unsupported compression method ${entry.compressionMethod}`);
  if (data.length !== entry.uncompressedSize) throw new Error(`entry inflates to ${data.length} bytes, not the ${entry.uncompressedSize} its directory records`);
  return data;
}
