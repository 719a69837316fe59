import { rmSync, rmdirSync, existsSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import { CelebaGanError, UsageError, assertInteger, assertOneOf, fileError } from '../errors.js';
import { ensureFolder, writeFileAtomicSync, type AtomicIo } from '../util/atomic.js';
import { floatNchwToUint8Hwc, writeGridPng } from '../util/image.js';
import type { AttributeDraw } from './attributes.js';
import { EXTENSIONS, IMAGE_FORMATS, RESIZE_KERNELS, encodeImage, type ImageFormat, type ResizeKernel } from './encode.js';
import { MAX_FACE_INDEX, assertFaceRange, checkTruncation, latentsFor } from './latents.js';
import { ManifestAppender, dropSupersededLines, manifestFileName, manifestPartTag, manifestParts, summarizeManifest } from './manifest.js';
import { acquireOutputLock, lockFileName, type OutputLock } from './output-lock.js';
import { checkAttributesGiven, type GeneratorSession } from './session.js';
import { shardSlice, shardTag, type Shard } from './shards.js';

/**
 * Batched generation to image files, streamed: batches are made one after another as the loop
 * goes, so nothing proportional to --n is built up front and memory stays bounded whatever n is.
 *
 *   for each batch of the run (or of this shard's slice):
 *     wait for a free slot         at most `depth` batches alive (running + being written)
 *     z = latents(seed, index)     image i of seed S always gets the same z
 *     y = attributes(seed, index)  conditional models: its label row (src/inference/attributes.ts)
 *     images = model(z, y)         onnxruntime
 *     write the batch              encoded in libuv's pool (p-limit), written in index order
 *
 * Files are `face-<index>.<ext>` (index zero-padded to 6 digits), so image i of seed S has one
 * name whatever the batch size or sharding. Each file is written by src/util/atomic.ts: to a
 * temporary name, then linked to its final name, which fails if the name exists (no overwrite
 * without `force`, and no race with another writer); with `force` it is renamed over it. Files
 * are not fsynced one by one (`sync: false`): an fsync costs more than making a face (docs/benchmarks.md:
 * bench:generate), and each face can be made again from its manifest line, which is fsynced
 * when the run ends; a killed process still never leaves a half-written face. Files land strictly in index
 * order and each gets its manifest line right after it lands (manifest.ts), so whatever stops a
 * run (a signal, a full disk, a conflict) leaves a complete prefix of its range, all listed.
 *
 * The overlap of model and encoding is for a model on a GPU (cuda, dml): the CPU encodes while
 * the GPU computes. With the cpu provider, onnxruntime already uses every core and encoding beside
 * it competes with it (measured in docs/benchmarks.md: bench:generate), so the cpu provider defaults to
 * depth 1, GPUs to 2.
 */

export { IMAGE_FORMATS, RESIZE_KERNELS, type ImageFormat, type ResizeKernel } from './encode.js';
export { MANIFEST_NAME } from './manifest.js';

export const DEFAULT_BATCH_SIZE = 256;
/** Batches alive at once by default: overlap for GPU providers, none on the CPU (see above). */
export function defaultPipelineDepth(provider: string): number {
  return provider === 'cpu' ? 1 : 2;
}
/**
 * Encodes queued at once. onnxruntime-node runs a batch synchronously on the JS thread, so
 * encodes must already sit in libuv's pool (sharp) to progress while the model runs.
 */
const DEFAULT_ENCODE_CONCURRENCY = 32;
/** Faces in the contact sheet unless asked otherwise. */
const DEFAULT_GRID_COUNT = 64;

export interface GenerateOptions {
  outDir: string;
  /** Number of images (of the whole run, when sharded). */
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
  /**
   * A conditional model's label rows: attributeDraw(session.info.attributes, request) (required
   * for a conditional model, E_NO_LABELS without; E_NOT_CONDITIONAL for an unconditional one).
   * The request is written on every manifest line (`attr`).
   */
  attributes?: AttributeDraw;
  /** Overwrite existing files. */
  force?: boolean;
  /** Make only this shard's contiguous slice of the n images (its own manifest part and lock). */
  shard?: Shard;
  /** Also write a contact sheet (PNG) of the first `count` images. Not with `shard`. */
  grid?: { path: string; count?: number; cols?: number };
  /** Batches alive at once (running + being written); >= 1. Default defaultPipelineDepth(provider). */
  pipelineDepth?: number;
  /** Images being encoded at once (DEFAULT_ENCODE_CONCURRENCY). */
  encodeConcurrency?: number;
  /** Extra fields written on every manifest line. */
  manifestExtra?: Record<string, unknown>;
  /** `done` files of `total` are written: always the first `done` of the range, in index order. */
  onProgress?: (done: number, total: number) => void;
  /** Things to tell the user, as they happen: a stale lock taken over, manifest lines replaced. */
  onNote?: (note: string) => void;
  /** Stop early: no new batch starts once aborted; batches already computed are still written. */
  signal?: AbortSignal;
  /** The two file steps of each face (src/util/atomic.ts); tests inject failures such as ENOSPC here. */
  io?: Partial<AtomicIo>;
}

export interface GenerateResult {
  outDir: string;
  manifestPath: string;
  gridPath: string | null;
  /** Index of this run's (or shard's) first image. */
  firstIndex: number;
  /** Images this run (or shard) was to make. */
  total: number;
  /** Files written: indices firstIndex .. firstIndex + written - 1 (fewer than total only when stopped). */
  written: number;
  stopped: boolean;
  seconds: number;
  /** Seconds spent inside the model (session.run), for the pipeline's efficiency. */
  modelSeconds: number;
  imagesPerSecond: number;
  /** Most batches alive at once: the one running plus those still being written. */
  maxInFlight: number;
}

export function imageFileName(index: number, format: ImageFormat): string {
  return `face-${String(index).padStart(6, '0')}.${EXTENSIONS[format]}`;
}

/** The index of `face-<index>.<ext>` when `ext` matches, else null. */
function imageIndexOf(file: string, ext: string): number | null {
  const m = /^face-(\d+)\.([a-z]+)$/.exec(file);
  return m && m[2] === ext ? Number(m[1]) : null;
}

export async function generateImages(session: GeneratorSession, opts: GenerateOptions): Promise<GenerateResult> {
  const plan = planRun(session, opts);
  const stats = { started: performance.now(), modelSeconds: 0, maxInFlight: 0 };
  const note = opts.onNote ?? ((): void => undefined);
  const out = plan.first < plan.end ? openOutput(opts.outDir, plan, note) : null;
  const writer = new BatchWriter(plan, out, opts);
  const inFlight = new BatchesInFlight(plan.depth);
  let failure: unknown;
  let gridPath: string | null = null;
  try {
    for (let first = plan.first; first < plan.end; first += plan.batchSize) {
      await inFlight.waitForSlot();
      if (inFlight.failed || opts.signal?.aborted) break;
      const count = Math.min(plan.batchSize, plan.end - first);
      const z = latentsFor(plan.seed, first, count, plan.zDim, plan.latent, plan.truncation);
      const y = opts.attributes?.rowsFor(plan.seed, first, count);
      stats.maxInFlight = Math.max(stats.maxInFlight, inFlight.size + 1); // this one and those being written
      const images = await runModel(session, z, count, stats, y);
      inFlight.add(writer.writeBatch(first, count, images));
    }
    await inFlight.drain();
    inFlight.throwIfFailed();
    gridPath = await writeGrid(plan, writer);
  } catch (err) {
    failure = err;
    await inFlight.drain(); // batches already computed still land (in order) before the folder is released
  }
  if (out) await closeOutput(out, plan, writer.written, failure, note);
  if (failure !== undefined) throw await withResumeHint(failure, opts.outDir, plan);
  const seconds = (performance.now() - stats.started) / 1000;
  return {
    outDir: opts.outDir,
    manifestPath: join(opts.outDir, plan.manifestName),
    gridPath,
    firstIndex: plan.first,
    total: plan.end - plan.first,
    written: writer.written,
    stopped: writer.written < plan.end - plan.first,
    seconds,
    modelSeconds: stats.modelSeconds,
    imagesPerSecond: writer.written / seconds,
    maxInFlight: stats.maxInFlight,
  };
}

/** Everything a run needs, validated before anything is touched. */
interface Plan {
  first: number;
  end: number;
  seed: number;
  batchSize: number;
  format: ImageFormat;
  ext: string;
  upscale: number;
  resize: ResizeKernel;
  depth: number;
  concurrency: number;
  force: boolean;
  zDim: number;
  latent: GeneratorSession['info']['latent'];
  truncation: number | undefined;
  image: { channels: number; height: number; width: number };
  grid: { path: string; count: number; cols?: number } | null;
  /** null, or `shard-K-of-N`: names the lock and the manifest part. */
  tag: string | null;
  manifestName: string;
  manifestBase: Record<string, unknown>;
}

function planRun(session: GeneratorSession, opts: GenerateOptions): Plan {
  const n = assertInteger('n', opts.n, 1);
  const start = assertInteger('index', opts.startIndex ?? 0, 0);
  assertFaceRange(start, n);
  const seed = assertInteger('seed', opts.seed, 0, 2 ** 32 - 1);
  const batchSize = assertInteger('batch-size', opts.batchSize ?? DEFAULT_BATCH_SIZE, 1, 65536);
  const format = assertOneOf('format', opts.format ?? 'png', IMAGE_FORMATS);
  const upscale = assertInteger('upscale', opts.upscale ?? 1, 1, 16);
  const resize = assertOneOf('resize', opts.resize ?? 'lanczos', RESIZE_KERNELS);
  const depth = assertInteger('pipelineDepth', opts.pipelineDepth ?? defaultPipelineDepth(session.providerUsed), 1, 64);
  const concurrency = assertInteger('encodeConcurrency', opts.encodeConcurrency ?? DEFAULT_ENCODE_CONCURRENCY, 1, 1024);
  const { info } = session;
  const truncation = checkTruncation(info.latent, opts.truncation);
  checkAttributeSource(session, opts.attributes);
  const { channels: c } = info.image;
  if (c !== 1 && c !== 3 && c !== 4)
    throw new CelebaGanError('E_MODEL_METADATA', `model makes ${c}-channel images; only 1, 3 or 4 channels can be saved as images`);
  if (opts.shard && opts.grid) {
    throw new UsageError('E_BAD_ARGUMENT', '--grid cannot be combined with --shard/--shards (every shard would write the same contact sheet)', {
      hint: 'Make the grid with an unsharded run: celeba-gan generate --n 64 --grid ... with the same --seed.',
    });
  }
  const { first, end } = opts.shard ? shardSlice(start, n, opts.shard) : { first: start, end: start + n };
  const tag = opts.shard ? shardTag(opts.shard) : null;
  const grid = opts.grid
    ? { path: opts.grid.path, count: Math.min(n, assertInteger('grid count', opts.grid.count ?? DEFAULT_GRID_COUNT, 1, 4096)), cols: opts.grid.cols }
    : null;
  return {
    first,
    end,
    seed,
    batchSize,
    format,
    ext: EXTENSIONS[format],
    upscale,
    resize,
    depth,
    concurrency,
    force: opts.force ?? false,
    zDim: info.zDim,
    latent: info.latent,
    truncation,
    image: info.image,
    grid,
    tag,
    manifestName: manifestFileName(tag),
    manifestBase: {
      seed,
      latent: info.latent,
      truncation: truncation ?? null,
      model: basename(info.modelPath),
      modelSha256: info.modelSha256,
      step: info.step,
      ...(opts.attributes ? { attr: opts.attributes.request.text } : {}),
      ...(opts.shard ? { shard: `${opts.shard.index}/${opts.shard.count}` } : {}),
      ...opts.manifestExtra,
    },
  };
}

/** The output folder while a run holds it. */
interface Output {
  dir: string;
  /** The outermost folder this run created (removed again if the run writes nothing). */
  created: string | null;
  lock: OutputLock;
  manifest: ManifestAppender;
  /** The manifest part existed before this run. */
  manifestExisted: boolean;
}

/** Hints that fit generate better than fileError's generic ones. */
const OUT_HINT = 'Pass --out <folder> somewhere you can write (it is created if missing).';
const OUTPUT_HINTS: Partial<Record<string, string>> = {
  ENOSPC: 'Free some space or pass --out on another disk, then run the command printed for the rest.',
  EDQUOT: 'Free some space within your quota or pass --out on another disk, then run the command printed for the rest.',
  EROFS: OUT_HINT,
  EACCES: OUT_HINT,
  EPERM: OUT_HINT,
  E_OUTPUT_EXISTS: 'Pass --force to overwrite, choose another --out, or start after the existing faces with --index.',
  E_OUTPUT_NO_LINKS: 'Pass --out on another file system, or --force (files are then renamed into place, replacing any with the same name).',
};

/** Create the folder, take the lock (saying so when it takes over a stale one), check the grid, open the manifest part. */
function openOutput(dir: string, plan: Plan, note: (line: string) => void): Output {
  const created = ensureFolder(dir, 'create the output folder', OUTPUT_HINTS) ?? null;
  let lock: OutputLock;
  try {
    lock = acquireOutputLock(dir, lockFileName(plan.tag), [plan.first, plan.end], plan.ext);
  } catch (err) {
    removeCreated(dir, created);
    throw outputError(dir, err);
  }
  for (const line of lock.notes) note(line);
  try {
    if (plan.grid && !plan.force && existsSync(plan.grid.path)) {
      throw new UsageError('E_OUTPUT_EXISTS', `${plan.grid.path} already exists; not overwriting it`, {
        hint: 'Pass --force to overwrite it, or another --grid path.',
      });
    }
    const manifestPath = join(dir, plan.manifestName);
    const manifestExisted = existsSync(manifestPath);
    return { dir, created, lock, manifest: new ManifestAppender(manifestPath), manifestExisted };
  } catch (err) {
    lock.release();
    removeCreated(dir, created);
    throw outputError(dir, err);
  }
}

/**
 * Release the folder: close the manifest, drop lines that now describe replaced files, release
 * the lock, and remove what this run created if it wrote nothing.
 */
async function closeOutput(out: Output, plan: Plan, written: number, failure: unknown, note: (line: string) => void): Promise<void> {
  try {
    out.manifest.close();
    if (written > 0) for (const line of await dropSupersededEverywhere(out, plan, written)) note(line);
  } catch (err) {
    if (failure === undefined) throw outputError(join(out.dir, plan.manifestName), err);
    note(`could not update the manifest: ${(err as Error).message}`);
  } finally {
    out.lock.release();
    if (written === 0) {
      if (!out.manifestExisted) rmSync(join(out.dir, plan.manifestName), { force: true });
      removeCreated(out.dir, out.created);
    }
  }
}

/**
 * A face that already exists, typically on a rerun after a kill -9 without --index: the error's
 * hint says where the faces listed in the manifest part end, so the rerun can start there.
 */
async function withResumeHint(err: unknown, dir: string, plan: Plan): Promise<unknown> {
  if (!(err instanceof CelebaGanError) || err.code !== 'E_OUTPUT_EXISTS' || plan.force) return err;
  const path = join(dir, plan.manifestName);
  const listed = existsSync(path) ? await summarizeManifest(path).catch(() => null) : null;
  if (listed === null) return err;
  // A kill between a face's write and its manifest line leaves that face complete but unlisted.
  let next = listed.next;
  while (next < MAX_FACE_INDEX && existsSync(join(dir, imageFileName(next, plan.format)))) next++;
  const seed = listed.seed === plan.seed ? '' : ` --seed ${listed.seed}`;
  return new UsageError('E_OUTPUT_EXISTS', err.message, {
    hint:
      `${path} lists ${listed.count} face${listed.count === 1 ? '' : 's'} (the last of seed ${listed.seed} is index ${listed.next - 1}): ` +
      `continue after them with${seed} --index ${next}, or pass --force to overwrite, or another --out.`,
    cause: err,
  });
}

/** Lines of earlier runs for the files this run wrote, in any manifest part of the folder. */
async function dropSupersededEverywhere(out: Output, plan: Plan, written: number): Promise<string[]> {
  const end = plan.first + written;
  const superseded = (file: string): boolean => {
    const i = imageIndexOf(file, plan.ext);
    return i !== null && i >= plan.first && i < end;
  };
  const notes: string[] = [];
  for (const name of manifestParts(out.dir)) {
    const path = join(out.dir, name);
    if (name === plan.manifestName) {
      // Ours: only lines from before this run can be stale.
      const dropped = await dropSupersededLines(path, superseded, out.manifest.startOffset);
      if (dropped > 0) notes.push(`${path}: replaced ${dropped} line${dropped === 1 ? '' : 's'} of earlier runs for files this run rewrote`);
      continue;
    }
    // Another part: rewrite it only while holding its writer's lock.
    let lock: OutputLock;
    try {
      lock = acquireOutputLock(out.dir, lockFileName(manifestPartTag(name) ?? null), [0, 0], plan.ext);
    } catch (err) {
      if (err instanceof CelebaGanError && err.code === 'E_OUTPUT_LOCKED') {
        notes.push(`${path} may still list files this run rewrote: another run holds it (${err.message})`);
        continue;
      }
      throw err;
    }
    try {
      const dropped = await dropSupersededLines(path, superseded);
      if (dropped > 0)
        notes.push(`${path}: removed ${dropped} line${dropped === 1 ? '' : 's'} for files this run rewrote (now listed in ${plan.manifestName})`);
    } finally {
      lock.release();
    }
  }
  return notes;
}

/** Remove `dir` and its parents up to `created` (the outermost folder mkdir made), if empty. */
function removeCreated(dir: string, created: string | null): void {
  if (created === null) return;
  const top = resolve(created);
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return; // not empty (someone else's files): leave it
    }
    if (d === top || relative(top, d).startsWith('..')) return;
  }
}

/**
 * An error writing `path` in the error contract: fileError's codes (E_NO_SPACE, E_READ_ONLY,
 * E_PERMISSION, ...) with generate's hints; an OS error it has no mapping for is E_OUTPUT_WRITE.
 */
function outputError(path: string, err: unknown): CelebaGanError {
  const mapped = fileError(err, path, 'write', OUTPUT_HINTS);
  if (mapped instanceof CelebaGanError) return mapped;
  return new CelebaGanError('E_OUTPUT_WRITE', `could not write ${path}: ${(err as Error).message}`, { cause: err });
}

/** Before anything is touched: the draw fits the model (its rows, its attributes), or there is none. */
function checkAttributeSource(session: GeneratorSession, draw: AttributeDraw | undefined): void {
  const { info } = session;
  checkAttributesGiven(info, info.modelPath, draw !== undefined);
  const names = info.attributes?.names ?? [];
  if (draw && draw.model.names.join(',') !== names.join(',')) {
    throw new CelebaGanError(
      'E_BAD_LABELS',
      `the attribute draw is for attributes ${draw.model.names.join(', ')}, but model ${info.modelPath} has ${names.join(', ')}`,
      {
        hint: 'Make the draw from this session: attributeDraw(session.info.attributes, request).',
      },
    );
  }
}

async function runModel(session: GeneratorSession, z: Float32Array, count: number, stats: { modelSeconds: number }, y?: Float32Array): Promise<Float32Array> {
  const t = performance.now();
  const images = await session.run(z, count, y);
  stats.modelSeconds += (performance.now() - t) / 1000;
  return images;
}

/**
 * The batches alive at once (computed and not yet written): at most `depth`. A failed batch is
 * remembered and stops the run; the ones after it do not write.
 */
class BatchesInFlight {
  private readonly live = new Set<Promise<void>>();
  private failure: { error: unknown } | null = null;

  constructor(private readonly depth: number) {}

  get size(): number {
    return this.live.size;
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  add(batch: Promise<void>): void {
    const tracked: Promise<void> = batch
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.live.delete(tracked));
    this.live.add(tracked);
  }

  async waitForSlot(): Promise<void> {
    while (this.live.size >= this.depth) await Promise.race(this.live);
  }

  async drain(): Promise<void> {
    while (this.live.size > 0) await Promise.race(this.live);
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/**
 * Encodes batches (at most `concurrency` images at once, across batches) and writes their files
 * strictly in index order: a batch writes once the one before it has written all of its files.
 * Holds the first faces for the contact sheet.
 */
class BatchWriter {
  /** Files written so far: always the first `written` of the range. */
  written = 0;
  readonly gridPixels: Uint8Array;
  private readonly encodes: LimitFunction;
  private previous: Promise<void> = Promise.resolve();
  private readonly imageBytes: number;

  constructor(
    private readonly plan: Plan,
    private readonly out: Output | null,
    private readonly opts: Pick<GenerateOptions, 'onProgress' | 'io'>,
  ) {
    const { channels, height, width } = plan.image;
    this.imageBytes = channels * height * width;
    this.encodes = pLimit(plan.concurrency);
    this.gridPixels = new Uint8Array((plan.grid?.count ?? 0) * this.imageBytes);
  }

  writeBatch(first: number, count: number, images: Float32Array): Promise<void> {
    const { channels: c, height: h, width: w } = this.plan.image;
    const pixels = floatNchwToUint8Hwc(images, count, c, h, w);
    this.keepForGrid(first, count, pixels);
    const encodeOptions = { format: this.plan.format, upscale: this.plan.upscale, resize: this.plan.resize };
    const encoded = Array.from({ length: count }, (_, k) =>
      this.encodes(() => encodeImage(pixels.subarray(k * this.imageBytes, (k + 1) * this.imageBytes), h, w, c, encodeOptions)),
    );
    // Awaited in order below; a failure there leaves later ones unawaited.
    for (const p of encoded) p.catch(() => undefined);
    const landed = this.previous.then(() => this.writeInOrder(first, encoded));
    this.previous = landed;
    return landed;
  }

  private async writeInOrder(first: number, encoded: Promise<Uint8Array>[]): Promise<void> {
    for (const [k, bytes] of encoded.entries()) {
      this.writeFace(first + k, await bytes);
    }
  }

  /** Atomically to its name (no overwrite unless `force`); then its manifest line. */
  private writeFace(index: number, bytes: Uint8Array): void {
    const out = this.out!;
    const name = imageFileName(index, this.plan.format);
    const path = join(out.dir, name);
    try {
      // Synchronous: onnxruntime-node runs a batch on the JS thread, so every async file step
      // would wait for the next batch to finish before it could move on.
      writeFileAtomicSync(path, bytes, { replace: this.plan.force, sync: false, hints: OUTPUT_HINTS, io: this.opts.io });
    } catch (err) {
      throw outputError(path, err);
    }
    try {
      out.manifest.append(JSON.stringify({ file: name, index, ...this.plan.manifestBase }));
    } catch (err) {
      // A file without its line would be unexplained: take it back.
      rmSync(path, { force: true });
      throw outputError(out.manifest.path, err);
    }
    this.written++;
    this.opts.onProgress?.(this.written, this.plan.end - this.plan.first);
  }

  private keepForGrid(first: number, count: number, pixels: Uint8Array): void {
    const grid = this.plan.grid;
    if (!grid) return;
    const offset = first - this.plan.first;
    const inGrid = Math.max(0, Math.min(count, grid.count - offset));
    if (inGrid > 0) this.gridPixels.set(pixels.subarray(0, inGrid * this.imageBytes), offset * this.imageBytes);
  }
}

/** The contact sheet of the first faces written, or null when none were asked for or written. */
async function writeGrid(plan: Plan, writer: BatchWriter): Promise<string | null> {
  const grid = plan.grid;
  const count = Math.min(grid?.count ?? 0, writer.written);
  if (!grid || count === 0) return null;
  const { channels: c, height: h, width: w } = plan.image;
  ensureFolder(dirname(grid.path), 'create the folder', OUTPUT_HINTS);
  try {
    await writeGridPng(grid.path, writer.gridPixels.subarray(0, count * h * w * c), count, h, w, c, { upscale: plan.upscale, cols: grid.cols });
  } catch (err) {
    throw outputError(grid.path, err);
  }
  return grid.path;
}
