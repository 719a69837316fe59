import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CelebaGanError, UsageError, assertInteger, errnoCode, fileError } from '../errors.js';
import { ensureFolder, writeFileAtomic } from '../util/atomic.js';
import { DatasetWriter, type DatasetHeader } from './dataset-file.js';
import { cropResize } from './preprocess.js';
import { IMAGE_EXTENSIONS, openImageSource, type Skipped } from './sources.js';
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
  onStart?: (info: { kind: 'folder' | 'zip'; images: number; refused: number; workers: number }) => void;
  onProgress?: (p: PrepareProgress) => void;
  /** Each skipped input, as it is decided (refusals first, then in name order). */
  onSkip?: (s: Skipped) => void;
  /** Abort (Ctrl-C): stops soon, removes the temporary file, throws E_ABORTED. */
  signal?: AbortSignal;
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

  const source = await openImageSource(opts.input);
  try {
    const names = source.names;
    if (names.length === 0) {
      throw new UsageError('E_NO_IMAGES', `no images (${IMAGE_EXTENSIONS.join(', ')}) found in ${source.kind} ${opts.input}${source.refused.length ? ` (${source.refused.length} other entries refused)` : ''}`, {
        hint: source.kind === 'zip' ? 'Check this is the image zip (img_align_celeba.zip), not an annotation archive.' : 'Point --input at the folder that holds the images (subfolders are searched).',
      });
    }
    const skipped: Skipped[] = [...source.refused];
    const total = Math.min(limit, names.length) + source.refused.length;
    opts.onStart?.({ kind: source.kind, images: names.length, refused: source.refused.length, workers });
    for (const s of source.refused) opts.onSkip?.(s);

    const imageBytes = size * size * 3;
    const writer = new DatasetWriter(opts.out, size, size, 3, false);
    try {
      const chunk = Buffer.alloc(CHUNK_IMAGES * imageBytes);
      let inChunk = 0;
      const flush = () => {
        if (inChunk > 0) writer.append(chunk.subarray(0, inChunk * imageBytes));
        inChunk = 0;
      };
      let prepared = 0;
      const report = () => opts.onProgress?.({ prepared, skipped: skipped.length, processed: prepared + skipped.length, total });
      report();

      // Ordered, bounded pipeline: at most `workers` decodes running (p-limit), at most `window`
      // results alive, committed strictly in name order.
      const processOne = async (i: number): Promise<Buffer | Skipped> => {
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
          return await cropResize(bytes, { size, crop });
        } catch (err) {
          return { name, reason: `not a readable image: ${(err as Error).message}` };
        }
      };
      const decode = pLimit(workers);
      const window = workers * 4;
      const pending: Promise<Buffer | Skipped>[] = [];
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
          if (Buffer.isBuffer(r)) {
            r.copy(chunk, inChunk * imageBytes);
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
      };
    } finally {
      writer.abort(); // no-op after finish()
    }
  } finally {
    await source.close();
  }
}

async function writeSkippedReport(path: string, input: string, skipped: readonly Skipped[]): Promise<void> {
  const lines = [`# celeba-gan prepare: ${skipped.length} input${skipped.length === 1 ? '' : 's'} from ${input} skipped (name<TAB>reason)`];
  // One line per input: control characters in names (a tab or newline is legal in a file name) are escaped.
  const escape = (text: string) => text.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
  for (const s of skipped) lines.push(`${escape(s.name)}\t${s.reason.replace(/\s+/g, ' ')}`);
  await writeFileAtomic(path, `${lines.join('\n')}\n`);
}
