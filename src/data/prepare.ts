import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { CelebaGanError, UsageError, assertInteger, errnoCode, fileError } from '../errors.js';
import { ensureFolder, writeFileAtomic } from '../util/atomic.js';
import { DatasetWriter, type DatasetHeader } from './dataset-file.js';
import { cropResize } from './preprocess.js';
import { IMAGE_EXTENSIONS, TooLargeError, openImageSource, type ImageSource, type Skipped } from './sources.js';
import { ATTRIBUTE_FILE_NAME, MAX_ATTRIBUTE_FILE_BYTES, matchRows, parseAttributeFile, selectAttributes, type AttributeTable } from './attributes.js';
import { itemAt } from '../util/at.js';

/**
 * `prepare --input`: images (folder or zip) -> one dataset file.
 *
 * Throughput: sharp runs one libvips thread per image on glibc Linux, so both cores are used by
 * keeping `workers` images in flight. Results are committed strictly in sorted-name order
 * through a small reorder window, so the file (and its checksum) does not depend on timing.
 * A bad image never stops the run: it is skipped, counted and listed in `<out>.skipped.txt`.
 * Running out of file handles (EMFILE, ENFILE) does stop it, with E_TOO_MANY_FILES: that is not
 * the image's fault, and every image after it would be skipped too.
 *
 * Labels: CelebA's `list_attr_celeba.txt` (given by --attributes, or found among the input's
 * files) is read and matched to the images before any image is decoded, so a bad attribute file
 * stops the run at once. Each prepared image carries its row; a skipped image's row is dropped
 * with it.
 */

export interface PrepareProgress {
  /** Images written so far. */
  prepared: number;
  /** Inputs skipped so far (unreadable, not an image, refused zip entries). */
  skipped: number;
  /** prepared + skipped among the inputs to process (refusals made before reading included). */
  processed: number;
  /** Inputs to process: image entries (at most --limit) plus entries refused up front. */
  total: number;
}

export interface PrepareOptions {
  input: string;
  out: string;
  size: number;
  /** Centre-crop side; 0 = largest centred square. */
  crop: number;
  /** Stop after this many prepared images (the first ones in sorted order). */
  limit?: number;
  /** Images in flight at once; default: the number of cores. */
  workers?: number;
  /** Replace an existing output file. */
  overwrite?: boolean;
  /** CelebA's attribute file; default: a list_attr_celeba.txt among the input's files, if any. */
  attributes?: string;
  /** Keep only these attributes, in this order (needs an attribute file). */
  attrSubset?: readonly string[];
  onStart?: (info: { kind: 'folder' | 'zip'; images: number; refused: number; workers: number; attributes: LabelsInfo | null }) => void;
  onProgress?: (p: PrepareProgress) => void;
  /** Each skipped input, as it is decided (refusals first, then in name order). */
  onSkip?: (s: Skipped) => void;
  /** Abort (Ctrl-C): stops soon, removes the temporary file, throws E_ABORTED. */
  signal?: AbortSignal;
}

/** Where the labels came from and which attributes were kept. */
export interface LabelsInfo {
  /** The attribute file, as named in messages. */
  source: string;
  names: readonly string[];
}

export interface PrepareResult {
  out: string;
  header: DatasetHeader;
  prepared: number;
  skipped: Skipped[];
  /** `<out>.skipped.txt`, or null when nothing was skipped. */
  reportPath: string | null;
  source: 'folder' | 'zip';
  workers: number;
  seconds: number;
  /** The labels' attribute file and names; null for an unlabelled data set. */
  attributes: LabelsInfo | null;
}

/** What an aborted `prepare` throws; nothing is left at `out`. */
export function abortedError(out: string): CelebaGanError {
  return new CelebaGanError('E_ABORTED', `prepare was interrupted; nothing was written to ${out}`, {
    hint: 'Run the same command again to start over.',
  });
}

export function skippedReportPath(out: string): string {
  return `${out}.skipped.txt`;
}

/** Refuse to replace an existing data set unless asked; make the output folder. */
export function prepareOutput(out: string, overwrite: boolean): void {
  if (existsSync(out) && !overwrite) {
    throw new UsageError('E_OUTPUT_EXISTS', `--out ${out} already exists`, {
      hint: 'Pass --force to replace it, or choose another --out.',
    });
  }
  ensureFolder(dirname(out), 'create the output folder');
}

const CHUNK_IMAGES = 256;
/** Read errors that stop `prepare` (E_TOO_MANY_FILES) instead of skipping one image. */
const STOPS_THE_RUN: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE']);

export async function prepareFromImages(opts: PrepareOptions): Promise<PrepareResult> {
  const started = performance.now();
  const size = assertInteger('--size', opts.size, 4, 1024);
  const crop = assertInteger('--crop', opts.crop, 0, 65535);
  const workers = assertInteger('--workers', opts.workers ?? availableParallelism(), 1, 256);
  const limit = opts.limit === undefined ? Infinity : assertInteger('--limit', opts.limit, 1);
  prepareOutput(opts.out, opts.overwrite ?? false);

  if (opts.attrSubset !== undefined && opts.attrSubset.length === 0) throw new UsageError('E_BAD_ARGUMENT', '--attr-subset names no attributes', { hint: 'Name one or more, e.g. --attr-subset Smiling,Eyeglasses.' });
  const source = await openImageSource(opts.input);
  try {
    const names = source.names;
    if (names.length === 0) {
      throw new UsageError('E_NO_IMAGES', `no images (${IMAGE_EXTENSIONS.join(', ')}) found in ${source.kind} ${opts.input}${source.refused.length ? ` (${source.refused.length} other entries refused)` : ''}`, {
        hint: source.kind === 'zip' ? 'Check this is the image zip (img_align_celeba.zip), not an annotation archive.' : 'Point --input at the folder that holds the images (subfolders are searched).',
      });
    }
    const labels = await openLabels(source, opts);
    // The attribute file is an input, not a skipped image.
    const refusedInputs = source.refused.filter((s) => s.name !== labels?.entry);
    const skipped: Skipped[] = [...refusedInputs];
    const total = Math.min(limit, names.length) + refusedInputs.length;
    const info = labels && { source: labels.table.source, names: labels.table.names };
    opts.onStart?.({ kind: source.kind, images: names.length, refused: refusedInputs.length, workers, attributes: info });
    for (const s of refusedInputs) opts.onSkip?.(s);

    const imageBytes = size * size * 3;
    const k = labels?.table.names.length ?? 0;
    const writer = new DatasetWriter(opts.out, size, size, 3, false, undefined, labels?.table.names);
    try {
      const chunk = Buffer.alloc(CHUNK_IMAGES * imageBytes);
      const labelChunk = new Int8Array(CHUNK_IMAGES * k);
      let inChunk = 0;
      const flush = () => {
        if (inChunk > 0) writer.append(chunk.subarray(0, inChunk * imageBytes), labels ? labelChunk.subarray(0, inChunk * k) : undefined);
        inChunk = 0;
      };
      let prepared = 0;
      const report = () => opts.onProgress?.({ prepared, skipped: skipped.length, processed: prepared + skipped.length, total });
      report();

      // Ordered, bounded pipeline: at most `workers` decodes running (p-limit), at most `window`
      // results alive, committed strictly in name order.
      const processOne = async (i: number): Promise<{ i: number; pixels: Buffer } | Skipped> => {
        const name = itemAt(names, i, 'image');
        let bytes: Buffer;
        try {
          bytes = await source.read(i);
        } catch (err) {
          // Out of file handles is the process's problem, not this image's: every later read
          // would fail too, so the run stops with the fix instead of skipping the rest.
          if (STOPS_THE_RUN.has(errnoCode(err) ?? '')) throw fileError(err, join(opts.input, name), 'read');
          return { name, reason: `unreadable: ${(err as Error).message}` };
        }
        try {
          return { i, pixels: await cropResize(bytes, { size, crop }) };
        } catch (err) {
          return { name, reason: `not a readable image: ${(err as Error).message}` };
        }
      };
      const decode = pLimit(workers);
      const window = workers * 4;
      const pending: Promise<{ i: number; pixels: Buffer } | Skipped>[] = [];
      let next = 0;
      try {
        while (prepared < limit) {
          if (opts.signal?.aborted) throw abortedError(opts.out);
          while (pending.length < window && next < names.length) {
            const one = decode(processOne, next++);
            one.catch(() => undefined); // a failure is thrown where it is awaited, in name order
            pending.push(one);
          }
          const head = pending.shift();
          if (head === undefined) break;
          const r = await head;
          if ('pixels' in r) {
            r.pixels.copy(chunk, inChunk * imageBytes);
            if (labels) {
              const row = labels.rowOf[r.i]!;
              labelChunk.set(labels.table.values.subarray(row * k, (row + 1) * k), inChunk * k);
            }
            prepared++;
            if (++inChunk === CHUNK_IMAGES) flush();
          } else {
            skipped.push(r);
            opts.onSkip?.(r);
          }
          report();
        }
      } finally {
        // Stopped early (limit, abort, error): let the decodes already started settle before the source closes.
        decode.clearQueue();
        await Promise.allSettled(pending.filter((_, k) => k < workers));
      }
      flush();

      skipped.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const reportPath = skippedReportPath(opts.out);
      if (prepared === 0) {
        await writeSkippedReport(reportPath, opts.input, skipped);
        throw new CelebaGanError('E_NOTHING_PREPARED', `none of the ${names.length} images in ${opts.input} could be prepared (skipped ${skipped.length})`, {
          hint: `See ${reportPath} for the reason for each file.`,
        });
      }
      const header = writer.finish();
      if (skipped.length > 0) await writeSkippedReport(reportPath, opts.input, skipped);
      else rmSync(reportPath, { force: true }); // a stale report from an earlier run would mislead
      return {
        out: opts.out,
        header,
        prepared,
        skipped,
        reportPath: skipped.length > 0 ? reportPath : null,
        source: source.kind,
        workers,
        seconds: (performance.now() - started) / 1000,
        attributes: info,
      };
    } finally {
      writer.abort(); // no-op after finish()
    }
  } finally {
    await source.close();
  }
}

/**
 * The attribute file for `source`, parsed, cut to --attr-subset and matched to the images:
 * `--attributes` if given, else the one list_attr_celeba.txt among the input's other files, else
 * none (an unlabelled data set). `entry` is its name among the source's files, if it is one.
 */
async function openLabels(source: ImageSource, opts: PrepareOptions): Promise<{ table: AttributeTable; rowOf: Int32Array; entry: string | null } | null> {
  let text: string;
  let shown: string;
  let entry: string | null = null;
  if (opts.attributes !== undefined) {
    shown = opts.attributes;
    text = readAttributeFile(opts.attributes);
    // Given by path but kept inside the input folder: it is still the attribute file, not a skipped input.
    const inside = source.kind === 'folder' ? relative(resolve(opts.input), resolve(opts.attributes)).split(sep).join('/') : null;
    if (inside !== null && source.refused.some((s) => s.name === inside)) entry = inside;
  } else {
    const found = source.refused.filter((s) => basename(s.name) === ATTRIBUTE_FILE_NAME && s.reason.startsWith('not an image file'));
    if (found.length === 0) {
      if (opts.attrSubset !== undefined) {
        throw new UsageError('E_ATTR_MISSING', `--attr-subset needs an attribute file, and ${opts.input} holds no ${ATTRIBUTE_FILE_NAME}`, {
          hint: `Pass --attributes <path to ${ATTRIBUTE_FILE_NAME}> (CelebA ships it in Anno/), or leave out --attr-subset for an unlabelled data set.`,
        });
      }
      return null;
    }
    if (found.length > 1) {
      throw new UsageError('E_ATTR_AMBIGUOUS', `${opts.input} holds ${found.length} attribute files: ${found.map((s) => s.name).join(', ')}`, {
        hint: 'Say which one labels these images with --attributes <path>.',
      });
    }
    entry = found[0]!.name;
    shown = source.kind === 'zip' ? `${opts.input} entry ${entry}` : join(opts.input, entry);
    try {
      text = (await source.readOther(entry, MAX_ATTRIBUTE_FILE_BYTES)).toString('utf8');
    } catch (err) {
      if (err instanceof TooLargeError) throw tooLarge(shown, err.bytes);
      throw fileError(err, shown, 'read the attribute file');
    }
  }
  let table = parseAttributeFile(text, shown);
  if (opts.attrSubset !== undefined) table = selectAttributes(table, opts.attrSubset);
  return { table, rowOf: matchRows(table, source.names, opts.input), entry };
}

function tooLarge(shown: string, bytes: number): CelebaGanError {
  return new CelebaGanError('E_ATTR_FORMAT', `${shown} is ${bytes} bytes, more than any attribute file (CelebA's is about 26 MB; the limit is ${MAX_ATTRIBUTE_FILE_BYTES})`, {
    hint: `Check that this is CelebA's ${ATTRIBUTE_FILE_NAME}.`,
  });
}

function readAttributeFile(path: string): string {
  try {
    const bytes = statSync(path).size;
    if (bytes > MAX_ATTRIBUTE_FILE_BYTES) throw tooLarge(path, bytes);
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new UsageError('E_ATTR_MISSING', `--attributes ${path} does not exist`, {
        hint: `Pass the path of CelebA's ${ATTRIBUTE_FILE_NAME} (in its Anno/ folder), or leave out --attributes for an unlabelled data set.`,
      });
    }
    throw fileError(err, path, 'read the attribute file');
  }
}

async function writeSkippedReport(path: string, input: string, skipped: readonly Skipped[]): Promise<void> {
  const lines = [`# celeba-gan prepare: ${skipped.length} input${skipped.length === 1 ? '' : 's'} from ${input} skipped (name<TAB>reason)`];
  // One line per input: control characters in names (a tab or newline is legal in a file name) are escaped.
  const escape = (text: string) => text.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
  for (const s of skipped) lines.push(`${escape(s.name)}\t${s.reason.replace(/\s+/g, ' ')}`);
  await writeFileAtomic(path, `${lines.join('\n')}\n`);
}
