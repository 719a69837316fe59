import { UsageError, assertInteger } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { DatasetAttributes, DatasetReader } from './dataset-file.js';

/**
 * Training batches from a dataset file, in an order that is a pure function of (seed, epoch).
 *
 * What the training loop relies on:
 * - Each epoch visits the images in its own permutation, `new Rng(seed, 'data-shuffle', epoch)`
 *   over 0..count-1, so any epoch's order can be rebuilt without replaying earlier ones.
 * - The last incomplete batch of an epoch is dropped, as the original did (202,599 images in
 *   batches of 64 give 3,165 steps per epoch): every batch holds exactly `batchSize` images.
 * - Global step s (0-based, the number of steps already taken) is epoch floor(s / stepsPerEpoch),
 *   step-in-epoch s % stepsPerEpoch. `batches(start)` can begin at any position, so a resumed
 *   run sees exactly the batches an uninterrupted run would have seen.
 * - Data-parallel training (`rank`, `worldSize`): a step's global batch is worldSize x batchSize
 *   consecutive images of the epoch's permutation, and rank r reads its slice r of it, as
 *   PyTorch's DistributedSampler gives each replica its share. stepsPerEpoch counts global
 *   batches; world size 1 is the single-process order.
 * - Batches are uint8 HWC (RGB) images back to back, the form `TrainingEngine.trainStep` takes.
 *   A fresh buffer is returned per batch unless the caller passes one to `read`.
 * - A labelled data set's batches also carry `labels`: n x K floats, +1/-1, in the order of
 *   `reader.attributes.names`, row i labelling image i. Unlabelled batches have no `labels` key.
 */

export interface BatchPosition {
  epoch: number;
  /** 0-based index of the batch within the epoch, < stepsPerEpoch. */
  stepInEpoch: number;
}

export interface Batch extends BatchPosition {
  /** Global 0-based step: epoch * stepsPerEpoch + stepInEpoch. */
  step: number;
  /** `batchSize` images, uint8 HWC, back to back. */
  images: Uint8Array;
  /** Number of images in `images` (always batchSize). */
  n: number;
  /** Labelled data sets only: n x K labels (+1/-1) in the data set's attribute order. */
  labels?: Float32Array;
}

export interface BatchLoaderOptions {
  batchSize: number;
  /** The run's seed; the shuffle stream is derived from it (key 'data-shuffle'). */
  seed: number;
  /** false keeps file order in every epoch (evaluation, tests). Default true. */
  shuffle?: boolean;
  /** Data-parallel training: this replica's rank (default 0) among `worldSize` (default 1). */
  rank?: number;
  worldSize?: number;
}

/**
 * Whether the images fit the model is checked once, where training opens its data set
 * (src/train/loop.ts, E_DATASET_SIZE), before any batch is read.
 */
export class BatchLoader {
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly rank: number;
  readonly worldSize: number;
  /** Full global batches (worldSize x batchSize images) per epoch (the remainder is dropped). */
  readonly stepsPerEpoch: number;
  private cached: { epoch: number; order: Uint32Array } | null = null;

  constructor(
    readonly reader: DatasetReader,
    opts: BatchLoaderOptions,
  ) {
    this.batchSize = assertInteger('batchSize', opts.batchSize, 1);
    this.seed = assertInteger('seed', opts.seed, 0, 0xffffffff);
    this.shuffle = opts.shuffle ?? true;
    this.worldSize = assertInteger('worldSize', opts.worldSize ?? 1, 1);
    this.rank = assertInteger('rank', opts.rank ?? 0, 0, this.worldSize - 1);
    const count = reader.count;
    const global = this.globalBatchSize;
    if (count < global) {
      const what = this.worldSize === 1 ? `one batch of ${this.batchSize}` : `one global batch of ${global} (${this.worldSize} ranks x ${this.batchSize})`;
      throw new UsageError(
        'E_DATASET_TOO_SMALL',
        `data set ${reader.path} holds ${count} image${count === 1 ? '' : 's'}, fewer than ${what}`,
        { hint: 'Use a smaller --batch-size, or prepare more images (e.g. `celeba-gan prepare --synthetic 20000`).' },
      );
    }
    this.stepsPerEpoch = Math.floor(count / global);
  }

  /** The data set's attribute names and frequencies; undefined when it is unlabelled. */
  get attributes(): DatasetAttributes | undefined {
    return this.reader.attributes;
  }

  /** Images per step over all ranks. */
  get globalBatchSize(): number {
    return this.batchSize * this.worldSize;
  }

  /** Images left out of every epoch (count % global batch size). */
  get droppedPerEpoch(): number {
    return this.reader.count - this.stepsPerEpoch * this.globalBatchSize;
  }

  /** Where global step `step` (number of steps already taken) falls. */
  positionOf(step: number): BatchPosition {
    assertInteger('step', step, 0);
    return { epoch: Math.floor(step / this.stepsPerEpoch), stepInEpoch: step % this.stepsPerEpoch };
  }

  stepOf(pos: BatchPosition): number {
    return pos.epoch * this.stepsPerEpoch + pos.stepInEpoch;
  }

  /** The image order of `epoch` (cached for the current epoch). */
  order(epoch: number): Uint32Array {
    assertInteger('epoch', epoch, 0);
    if (this.cached?.epoch === epoch) return this.cached.order;
    const count = this.reader.count;
    let order: Uint32Array;
    if (this.shuffle) {
      order = new Rng(this.seed, 'data-shuffle', epoch).permutation(count);
    } else {
      order = new Uint32Array(count);
      for (let i = 0; i < count; i++) order[i] = i;
    }
    this.cached = { epoch, order };
    return order;
  }

  /** Dataset indices of one batch (this rank's slice of the global batch). */
  indices(pos: BatchPosition): Uint32Array {
    this.checkPosition(pos);
    const start = pos.stepInEpoch * this.globalBatchSize + this.rank * this.batchSize;
    return this.order(pos.epoch).subarray(start, start + this.batchSize);
  }

  /** Read one batch (random access). */
  read(pos: BatchPosition, out?: Uint8Array): Batch {
    const idx = this.indices(pos);
    const images = this.reader.read(idx, out ?? new Uint8Array(this.batchSize * this.reader.imageBytes));
    const batch: Batch = { epoch: pos.epoch, stepInEpoch: pos.stepInEpoch, step: this.stepOf(pos), images, n: this.batchSize };
    if (this.reader.attributes !== undefined) batch.labels = this.reader.readLabels(idx);
    return batch;
  }

  /**
   * Batches from `start` on, across epochs, until `end` (exclusive global step) or forever.
   * `start` may be a position or a global step.
   */
  *batches(start: BatchPosition | number = 0, end = Infinity): Generator<Batch> {
    const first = typeof start === 'number' ? this.positionOf(start) : start;
    this.checkPosition(first);
    let { epoch, stepInEpoch } = first;
    for (let step = this.stepOf(first); step < end; step++) {
      yield this.read({ epoch, stepInEpoch });
      if (++stepInEpoch === this.stepsPerEpoch) {
        stepInEpoch = 0;
        epoch++;
      }
    }
  }

  private checkPosition(pos: BatchPosition): void {
    assertInteger('epoch', pos.epoch, 0);
    assertInteger('stepInEpoch', pos.stepInEpoch, 0, this.stepsPerEpoch - 1);
  }
}
