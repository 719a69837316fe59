import { CelebaGanError, UsageError, expected } from '../errors.js';

/**
 * The training data's label rows, as a conditional model carries them in its metadata (key
 * `celeba_gan.attribute_rows`), so that `generate --attr Smiling` can draw the attributes the
 * user does not name from the data's own joint distribution, given the ones named.
 *
 * What is stored is not every image's row but each distinct row once, with the number of
 * training images that have it: K binary attributes have at most 2^K rows (a few attributes:
 * a handful), and CelebA's 40 have far fewer distinct rows than images.
 *
 *   {"images": 202599, "rows": "<hex>", "counts": [c0, c1, ...]}
 *
 * - `rows`: the distinct rows back to back, D = ceil(K / 4) hex digits each. A row is read as K
 *   bits in attribute order (1 = +1, has it; 0 = -1), padded with zero bits on the right to 4D
 *   bits, written as hex (lower case): K = 3, (+1, -1, +1) -> bits 101(0) -> "a".
 * - `counts[i]`: training images with row i; most common first, ties in increasing hex order,
 *   so the same labels always give the same bytes.
 * - `images`: the training images counted. The sum of `counts` is smaller when the size bound
 *   (MAX_ROW_TABLE_BYTES) dropped the rarest rows; the difference says how much was dropped.
 *
 * This module is browser-safe (the web page draws the same rows): it imports nothing from node.
 */

/** The metadata keys of a conditional model's attributes (src/onnx/metadata.ts lists them in META). */
export const ATTRIBUTE_KEYS = Object.freeze({
  /** JSON array of the attribute names, in the order of the `attributes` input */
  names: 'celeba_gan.attributes',
  /** JSON array, the fraction of training images with each attribute (same order) */
  frequencies: 'celeba_gan.attribute_frequencies',
  /** JSON object: the training data's distinct label rows with their counts (see above) */
  rows: 'celeba_gan.attribute_rows',
});

/**
 * Largest encoded table: 256 KiB. The table is metadata, so it is read whole whenever the model
 * is opened (by generate and serve, and sent to the web page with /v1/model); 256 KiB is a
 * seventh of the smallest generator there is (dcgan64 at width 0.25, 1.8 MB of weights) and
 * holds every row of up to 14 attributes (2^14 rows of 4 hex digits and a count), or about
 * 20,000 distinct rows of all 40 CelebA attributes (10 digits and a count each). Beyond it the
 * rarest rows are dropped: those are the combinations a draw would almost never pick.
 */
export const MAX_ROW_TABLE_BYTES = 256 * 1024;

/** A table as stored (JSON-ready): see the header for the fields. */
export interface LabelRowTable {
  images: number;
  rows: string;
  counts: number[];
}

/** Hex digits per row of K attributes. */
function hexDigitsPerRow(k: number): number {
  return Math.ceil(k / 4);
}

/** A row of K values (+1/-1, > 0 counts as +1) at `offset` of `labels` as its hex key. */
function rowKey(labels: ArrayLike<number>, offset: number, k: number): string {
  let key = '';
  for (let d = 0; d < hexDigitsPerRow(k); d++) {
    let digit = 0;
    for (let b = 0; b < 4; b++) {
      const a = 4 * d + b;
      if (a < k && labels[offset + a]! > 0) digit |= 8 >> b;
    }
    key += digit.toString(16);
  }
  return key;
}

/**
 * Counts distinct label rows as a data set's labels stream by (read them in chunks: memory is
 * one entry per distinct row, never per image).
 */
export class LabelRowCounter {
  private readonly counts = new Map<string, number>();
  private total = 0;

  constructor(readonly attributeCount: number) {
    if (!Number.isInteger(attributeCount) || attributeCount < 1)
      throw new UsageError('E_BAD_ARGUMENT', expected('integer >= 1', 'attribute count', attributeCount));
  }

  /** Training images counted so far. */
  get images(): number {
    return this.total;
  }

  /** Add rows of K labels each, back to back; every value must be +1 or -1. */
  add(labels: ArrayLike<number>): void {
    const k = this.attributeCount;
    if (labels.length % k !== 0) throw new UsageError('E_BAD_ARGUMENT', `Expected whole rows of ${k} labels but received ${labels.length} values`);
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i];
      if (v !== 1 && v !== -1) throw new UsageError('E_BAD_ARGUMENT', expected('+1 or -1', `label ${i % k} of row ${Math.floor(i / k)}`, v));
    }
    for (let offset = 0; offset < labels.length; offset += k) {
      const key = rowKey(labels, offset, k);
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    }
    this.total += labels.length / k;
  }

  /** The table, most common rows first, cut to `maxBytes` encoded (dropping the rarest rows). */
  table(maxBytes = MAX_ROW_TABLE_BYTES): LabelRowTable {
    const sorted = [...this.counts].sort(([ka, ca], [kb, cb]) => cb - ca || (ka < kb ? -1 : ka > kb ? 1 : 0));
    // {"images":N,"rows":"","counts":[]} plus, per row, its digits and its count with a comma.
    let bytes = encodeRowTable({ images: this.total, rows: '', counts: [] }).length;
    let kept = 0;
    for (const [key, count] of sorted) {
      const more = key.length + String(count).length + (kept > 0 ? 1 : 0);
      if (bytes + more > maxBytes) break;
      bytes += more;
      kept++;
    }
    const rows = sorted.slice(0, kept);
    return { images: this.total, rows: rows.map(([key]) => key).join(''), counts: rows.map(([, count]) => count) };
  }
}

/** What countLabelRows reads: a labelled data set (src/data's DatasetReader is one). */
export interface LabelSource {
  readonly count: number;
  /** Labels of images `indices`, K per image (+1/-1), back to back into `out`. */
  readLabels(indices: ArrayLike<number>, out: Float32Array): Float32Array;
}

/** Rows read per call: 4096 x K floats (640 KiB for 40 attributes) whatever the data set's size. */
const COUNT_CHUNK = 4096;

/**
 * Count every label row of a data set, in chunks (memory: one chunk plus one entry per distinct
 * row). For the export: `attributeRows: countLabelRows(reader, K).table()`.
 */
export function countLabelRows(source: LabelSource, attributeCount: number): LabelRowCounter {
  const counter = new LabelRowCounter(attributeCount);
  const out = new Float32Array(COUNT_CHUNK * attributeCount);
  for (let first = 0; first < source.count; first += COUNT_CHUNK) {
    const n = Math.min(COUNT_CHUNK, source.count - first);
    const indices = Uint32Array.from({ length: n }, (_, i) => first + i);
    counter.add(source.readLabels(indices, out).subarray(0, n * attributeCount));
  }
  return counter;
}

/** The metadata value of a table (keys in a fixed order, so equal tables give equal bytes). */
export function encodeRowTable(t: LabelRowTable): string {
  return JSON.stringify({ images: t.images, rows: t.rows, counts: t.counts });
}

/** A table decoded for drawing: m rows of K values (+1/-1) back to back, with their counts. */
export interface DecodedRowTable {
  attributeCount: number;
  images: number;
  rows: Int8Array;
  counts: Float64Array;
  /** Sum of counts: the training images the kept rows cover. */
  covered: number;
}

/**
 * Check a table against K and decode it. Throws E_MODEL_METADATA naming `what` (the model) when
 * it is not a table a celeba-gan export writes.
 */
export function decodeRowTable(value: unknown, k: number, what: string): DecodedRowTable {
  const bad = (why: string): never => {
    throw new CelebaGanError('E_MODEL_METADATA', `model ${what} has a bad ${ATTRIBUTE_KEYS.rows}: ${why}`, {
      hint: 'Re-export the run with `celeba-gan export --onnx`.',
    });
  };
  if (typeof value !== 'object' || value === null) return bad('expected a JSON object');
  const t = value as Partial<LabelRowTable>;
  const images = t.images;
  if (typeof images !== 'number' || !Number.isSafeInteger(images) || images < 1) return bad(`images is ${String(images)}, expected an integer >= 1`);
  if (typeof t.rows !== 'string' || !/^[0-9a-f]*$/.test(t.rows)) return bad('rows is not a string of lower-case hex digits');
  if (!Array.isArray(t.counts)) return bad('counts is not an array');
  const digits = hexDigitsPerRow(k);
  const m = t.counts.length;
  if (t.rows.length !== m * digits)
    return bad(`${m} counts need ${m * digits} hex digits of rows (${digits} per row of ${k} attributes), found ${t.rows.length}`);
  const rows = new Int8Array(m * k);
  const counts = new Float64Array(m);
  const seen = new Set<string>();
  let covered = 0;
  // Bits past attribute K in a row's last digit must be zero (else two keys name one row).
  const spare = 4 * digits - k;
  for (let i = 0; i < m; i++) {
    const count = t.counts[i];
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) return bad(`count ${i} is ${String(count)}, expected an integer >= 1`);
    const key = t.rows.slice(i * digits, (i + 1) * digits);
    if (seen.has(key)) return bad(`row ${key} appears twice`);
    seen.add(key);
    if ((parseInt(key[digits - 1]!, 16) & ((1 << spare) - 1)) !== 0) return bad(`row ${key} sets bits past its ${k} attributes`);
    for (let d = 0; d < digits; d++) {
      const digit = parseInt(key[d]!, 16);
      for (let b = 0; b < 4 && 4 * d + b < k; b++) rows[i * k + 4 * d + b] = digit & (8 >> b) ? 1 : -1;
    }
    counts[i] = count;
    covered += count;
  }
  if (covered > images) return bad(`its counts add up to ${covered}, more than its ${images} images`);
  return { attributeCount: k, images, rows, counts, covered };
}
