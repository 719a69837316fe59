import { existsSync } from 'node:fs';
import { renameSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CelebaGanError, UsageError, assertInteger, assertOneOf } from '../errors.js';
import { tempPathFor } from '../util/atomic.js';
import { floatNchwToUint8Hwc, writeGridPng } from '../util/image.js';
import { EXTENSIONS, IMAGE_FORMATS, RESIZE_KERNELS, encodeImage, type ImageFormat, type ResizeKernel } from './encode.js';
import { checkTruncation, latentsFor } from './latents.js';
import type { GeneratorSession } from './session.js';

/**
 * Batched generation to image files. The provider is kept busy: while batch k+1 runs in
 * onnxruntime, batch k is converted, encoded (sharp in libuv's threads; plain small PNGs with
 * pngjs, see writeBatch) and written. Memory is bounded: at most `pipelineDepth` batches (the
 * one running plus those still being written) are alive at once; the producer waits before
 * starting another.
 *
 * The overlap pays when the model runs on a GPU (cuda, dml): the CPU encodes while the GPU
 * computes. With the cpu provider, onnxruntime already uses every core, so encoding beside it
 * only adds contention (its threads wait for each other at every layer when sharp takes a
 * core): on a 2-core machine, overlapping was ~10% slower end to end than encoding between
 * batches (bench/generate.ts, --depth). So the cpu provider defaults to depth 1, GPUs to 2.
 *
 * Files are `face-<index>.<ext>` (index zero-padded to 6 digits), so image i of seed S has one
 * name whatever the batch size; `manifest.jsonl` gets one line per file, appended as each batch
 * lands, saying how to regenerate it (seed + index + model).
 */

export { IMAGE_FORMATS, RESIZE_KERNELS, type ImageFormat, type ResizeKernel } from './encode.js';

export const MANIFEST_NAME = 'manifest.jsonl';
export const DEFAULT_BATCH_SIZE = 256;
/** Batches alive at once by default: overlap for GPU providers, none on the CPU (see above). */
export function defaultPipelineDepth(provider: string): number {
  return provider === 'cpu' ? 1 : 2;
}
/**
 * Encodes queued per batch. onnxruntime-node runs a batch synchronously on the JS thread, so
 * encodes must already sit in libuv's pool (sharp) to progress while the model runs; a deep
 * queue keeps them going, and it is bounded, as are the batches.
 */
export const DEFAULT_ENCODE_CONCURRENCY = 32;
/** Faces in the contact sheet unless asked otherwise. */
export const DEFAULT_GRID_COUNT = 64;

export interface GenerateOptions {
  outDir: string;
  /** Number of images. */
  n: number;
  /** Index of the first image (images startIndex .. startIndex+n-1). Default 0. */
  startIndex?: number;
  seed: number;
  batchSize?: number;
  format?: ImageFormat;
  /** Integer scale factor for each saved image (28x28 faces are tiny). Default 1. */
  upscale?: number;
  resize?: ResizeKernel;
  truncation?: number;
  /** Overwrite existing files. */
  force?: boolean;
  /** Also write a contact sheet (PNG) of the first `count` images. */
  grid?: { path: string; count?: number; cols?: number };
  /** Batches alive at once (running + being written); >= 1. Default defaultPipelineDepth(provider). */
  pipelineDepth?: number;
  /** Images being encoded at once per batch (DEFAULT_ENCODE_CONCURRENCY). */
  encodeConcurrency?: number;
  /** Extra fields written on every manifest line (e.g. the command that regenerates a face). */
  manifestExtra?: Record<string, unknown>;
  onProgress?: (done: number, total: number) => void;
  /** Stop early: no new batch starts once aborted; batches already computed are still written. */
  signal?: AbortSignal;
  /** Instrumentation: called with the number of batches alive each time it changes. */
  onInFlight?: (batches: number) => void;
}

export interface GenerateResult {
  outDir: string;
  manifestPath: string;
  gridPath: string | null;
  /** Paths written, in index order (fewer than n only when stopped through `signal`). */
  files: string[];
  firstIndex: number;
  stopped: boolean;
  seconds: number;
  /** Seconds spent inside the model (session.run), for the pipeline's efficiency. */
  modelSeconds: number;
  imagesPerSecond: number;
  maxInFlight: number;
}

export function imageFileName(index: number, format: ImageFormat): string {
  return `face-${String(index).padStart(6, '0')}.${EXTENSIONS[format]}`;
}

async function prepareOutDir(outDir: string): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
    // A probe write catches read-only mounts and permissions that mkdir alone does not.
    const probe = tempPathFor(join(outDir, 'write-probe'));
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (err) {
    throw new UsageError('E_OUTPUT_UNWRITABLE', `cannot write to output folder ${outDir}: ${(err as Error).message}`, {
      hint: 'Pass --out <folder> somewhere you can write (it is created if missing).',
      cause: err,
    });
  }
}

function checkNoConflicts(paths: string[]): void {
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) {
    const more = existing.length > 1 ? ` (and ${existing.length - 1} more)` : '';
    throw new UsageError('E_OUTPUT_EXISTS', `${existing[0]} already exists${more}; not overwriting it`, {
      hint: 'Pass --force to overwrite, choose another --out, or start after the existing faces with --index.',
    });
  }
}

/** Run `tasks` with at most `limit` at once; rejects with the first failure after all settle. */
async function pool(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  if (failure !== undefined) throw failure;
}

export async function generateImages(session: GeneratorSession, opts: GenerateOptions): Promise<GenerateResult> {
  const n = assertInteger('n', opts.n, 1);
  const start = assertInteger('index', opts.startIndex ?? 0, 0);
  const seed = assertInteger('seed', opts.seed, 0, 2 ** 32 - 1);
  const batchSize = assertInteger('batch-size', opts.batchSize ?? DEFAULT_BATCH_SIZE, 1, 65536);
  const format = assertOneOf('format', opts.format ?? 'png', IMAGE_FORMATS);
  const upscale = assertInteger('upscale', opts.upscale ?? 1, 1, 16);
  const resize = assertOneOf('resize', opts.resize ?? 'lanczos', RESIZE_KERNELS);
  const depth = assertInteger('pipelineDepth', opts.pipelineDepth ?? defaultPipelineDepth(session.providerUsed), 1, 64);
  const concurrency = assertInteger('encodeConcurrency', opts.encodeConcurrency ?? DEFAULT_ENCODE_CONCURRENCY, 1, 1024);
  const { info } = session;
  const truncation = checkTruncation(info.latent, opts.truncation);
  const { channels: c, height: h, width: w } = info.image;
  if (c !== 1 && c !== 3 && c !== 4) throw new CelebaGanError('E_MODEL_METADATA', `model makes ${c}-channel images; only 1, 3 or 4 channels can be saved as images`);
  const gridCount = opts.grid ? Math.min(n, assertInteger('grid count', opts.grid.count ?? DEFAULT_GRID_COUNT, 1, 4096)) : 0;

  await prepareOutDir(opts.outDir);
  if (opts.grid) await prepareOutDir(dirname(opts.grid.path));
  const names = Array.from({ length: n }, (_, k) => imageFileName(start + k, format));
  const files = names.map((name) => join(opts.outDir, name));
  if (!opts.force) checkNoConflicts(opts.grid ? [...files, opts.grid.path] : files);
  const manifestPath = join(opts.outDir, MANIFEST_NAME);
  const gridPixels = new Uint8Array(gridCount * h * w * c);

  const manifestBase = {
    seed,
    latent: info.latent,
    truncation: truncation ?? null,
    model: basename(info.modelPath),
    modelSha256: info.modelSha256,
    step: info.step,
    ...opts.manifestExtra,
  };

  const t0 = performance.now();
  let modelSeconds = 0;
  let done = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const setInFlight = (v: number): void => {
    inFlight = v;
    maxInFlight = Math.max(maxInFlight, v);
    opts.onInFlight?.(v);
  };
  const writing = new Set<Promise<void>>();
  let manifestTail: Promise<void> = Promise.resolve();
  let writeFailure: unknown;

  /** `previous` settles once the batch before this one has appended its manifest lines. */
  const writeBatch = async (first: number, m: number, output: Float32Array, previous: Promise<void>): Promise<void> => {
    const pixels = floatNchwToUint8Hwc(output, m, c, h, w);
    const size = h * w * c;
    // Keep the first faces for the contact sheet (a copy: `pixels` dies with the batch).
    const inGrid = Math.max(0, Math.min(m, gridCount - (first - start)));
    if (inGrid > 0) gridPixels.set(pixels.subarray(0, inGrid * size), (first - start) * size);
    const lines: string[] = new Array<string>(m);
    await pool(m, concurrency, async (k) => {
      const index = first + k;
      const path = files[index - start]!;
      const raw = pixels.subarray(k * size, (k + 1) * size);
      // Temp name + rename: a crash never leaves a truncated face under its final name.
      const tmp = tempPathFor(path);
      try {
        // Written synchronously: onnxruntime-node runs a batch on the JS thread, so every async
        // file step would wait for the next batch to finish before it could move on.
        writeFileSync(tmp, await encodeImage(raw, h, w, c, { format, upscale, resize }));
        renameSync(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw new CelebaGanError('E_OUTPUT_WRITE', `could not write ${path}: ${(err as Error).message}`, { cause: err });
      }
      lines[k] = JSON.stringify({ file: names[index - start], index, ...manifestBase });
      done++;
      opts.onProgress?.(done, n);
    });
    // Lines land in index order: each batch appends after the one before it.
    await previous;
    await appendFile(manifestPath, `${lines.join('\n')}\n`);
  };

  let next = start;
  try {
    for (let first = start; first < start + n && !opts.signal?.aborted; first += batchSize) {
      // Bounded memory: wait until a batch slot is free before computing another.
      while (inFlight >= depth) {
        await Promise.race(writing);
        if (writeFailure !== undefined) throw writeFailure;
      }
      if (opts.signal?.aborted) break;
      const m = Math.min(batchSize, start + n - first);
      next = first + m;
      setInFlight(inFlight + 1);
      const z = latentsFor(seed, first, m, info.zDim, info.latent, truncation);
      const tm = performance.now();
      const output = await session.run(z, m);
      modelSeconds += (performance.now() - tm) / 1000;
      // Batches take their manifest turn in the order they were computed.
      const landed = writeBatch(first, m, output, manifestTail);
      manifestTail = landed.catch(() => undefined);
      const p: Promise<void> = landed
        .catch((err: unknown) => {
          writeFailure ??= err;
        })
        .finally(() => {
          writing.delete(p);
          setInFlight(inFlight - 1);
        });
      writing.add(p);
      if (writeFailure !== undefined) throw writeFailure;
    }
    while (writing.size > 0) await Promise.race(writing);
    if (writeFailure !== undefined) throw writeFailure;
  } finally {
    await Promise.allSettled([...writing]);
  }

  const written = next - start;
  let gridPath: string | null = null;
  const inGrid = Math.min(gridCount, written);
  if (opts.grid && inGrid > 0) {
    await writeGridPng(opts.grid.path, gridPixels.subarray(0, inGrid * h * w * c), inGrid, h, w, c, { upscale, cols: opts.grid.cols });
    gridPath = opts.grid.path;
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    outDir: opts.outDir,
    manifestPath,
    gridPath,
    files: files.slice(0, written),
    firstIndex: start,
    stopped: written < n,
    seconds,
    modelSeconds,
    imagesPerSecond: written / seconds,
    maxInFlight,
  };
}
