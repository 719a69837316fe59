import { CelebaGanError, UsageError } from '../errors.js';
import { ATTRIBUTE_KEYS, MAX_ROW_TABLE_BYTES, decodeRowTable, type DecodedRowTable, type LabelRowTable } from '../onnx/attribute-rows.js';
import { Rng } from '../util/rng.js';

/**
 * Attribute requests for a conditional generator: `Smiling,Eyeglasses,-Male` -> one label row
 * (+1/-1 per attribute, the model's order) per face, fed beside z as the `attributes` input.
 *
 *   request text --parseAttributeRequest--> named attributes (checked against the model's list)
 *   for face `index` of `seed`:
 *     rng   = Rng(seed, 'attributes', index)           never the latents' stream: z stays the same
 *     pool  = the model's stored training rows that agree with every named attribute
 *     row   = one of `pool`, picked with probability count / (sum of the pool's counts)
 *             (none agrees: each attribute not named is +1 with its training frequency)
 *     the named attributes are set as asked
 *
 * So a face's attributes depend on (seed, index, request) alone, not on the batch size, and the
 * attributes not named follow the training data's joint distribution given the named ones: ask
 * for Eyeglasses and the other attributes come as they come with glasses in the data.
 *
 * Browser-safe (the web page draws the same rows as the server): imports nothing from node.
 */

/** A conditional model's attributes as its metadata gives them (JSON-ready: /v1/model sends them). */
export interface ModelAttributes {
  /** In the order of the `attributes` input. */
  names: string[];
  /** Fraction of training images with each attribute; null when the model does not say. */
  frequencies: number[] | null;
  /** The training data's distinct label rows with counts; null when exported without them. */
  rows: LabelRowTable | null;
}

/** One attribute of a request. */
export interface NamedAttribute {
  /** Position in the model's list. */
  index: number;
  name: string;
  /** +1: the face has it; -1: it does not. */
  value: 1 | -1;
}

export interface AttributeRequest {
  /** The named attributes, in the model's order. */
  named: readonly NamedAttribute[];
  /** The request in a canonical form: the named attributes in the model's order, `-` before those off. */
  text: string;
}

const metadataHint = 'Re-export the run with `celeba-gan export --onnx`.';

/**
 * The attributes in a model's metadata (a Map of metadata_props), checked; null for an
 * unconditional model. `what` names the model in messages.
 */
export function parseModelAttributes(metadata: ReadonlyMap<string, string>, what: string): ModelAttributes | null {
  const bad = (key: string, why: string): never => {
    throw new CelebaGanError('E_MODEL_METADATA', `model ${what} has a bad ${key}: ${why}`, { hint: metadataHint });
  };
  const json = (key: string): unknown => {
    const text = metadata.get(key);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return bad(key, `${JSON.stringify(text.slice(0, 80))} is not JSON`);
    }
  };
  const names = json(ATTRIBUTE_KEYS.names);
  if (names === undefined) {
    for (const key of [ATTRIBUTE_KEYS.frequencies, ATTRIBUTE_KEYS.rows]) if (metadata.has(key)) bad(key, `it is set, but ${ATTRIBUTE_KEYS.names} is not`);
    return null;
  }
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && n !== '')) {
    return bad(ATTRIBUTE_KEYS.names, 'expected a JSON array of one or more attribute names');
  }
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated !== undefined) bad(ATTRIBUTE_KEYS.names, `${repeated} is listed twice`);
  const k = names.length;
  const frequencies = json(ATTRIBUTE_KEYS.frequencies);
  if (
    frequencies !== undefined &&
    !(Array.isArray(frequencies) && frequencies.length === k && frequencies.every((f) => typeof f === 'number' && f >= 0 && f <= 1))
  ) {
    bad(ATTRIBUTE_KEYS.frequencies, `expected a JSON array of ${k} numbers in [0, 1], one per attribute`);
  }
  const rowsText = metadata.get(ATTRIBUTE_KEYS.rows);
  // The bound the exporter keeps, so the work of every draw stays bounded for any model.
  if (rowsText !== undefined && rowsText.length > MAX_ROW_TABLE_BYTES)
    bad(ATTRIBUTE_KEYS.rows, `it is ${rowsText.length} bytes, more than the ${MAX_ROW_TABLE_BYTES} an export writes`);
  const rows = json(ATTRIBUTE_KEYS.rows);
  if (rows !== undefined) decodeRowTable(rows, k, what); // checks it
  return {
    names: names as string[],
    frequencies: (frequencies as number[] | undefined) ?? null,
    rows: (rows as LabelRowTable | undefined) ?? null,
  };
}

const requestHint = (names: readonly string[]): string =>
  `Name attributes as the model lists them (case matters), separated by commas; a leading - asks for a face without it: e.g. ${names[0]}${names[1] ? `,-${names[1]}` : ''}.`;

/**
 * Parse a request such as `Smiling,Eyeglasses,-Male` against the model's attributes (null: an
 * unconditional model). Whitespace around names is ignored; `+Name` is `Name`. An empty request
 * names nothing (every attribute is drawn from the training rows).
 */
export function parseAttributeRequest(text: string, model: ModelAttributes | null, what?: string): AttributeRequest {
  if (model === null) {
    throw new UsageError('E_NOT_CONDITIONAL', `attributes were asked for ("${text}"), but ${modelName(what)} is unconditional: it has no attributes`, {
      hint: 'Leave the attributes out (--attr, attr=), or use a model trained with `celeba-gan train --conditional` on a data set with labels.',
    });
  }
  const { names } = model;
  const list = `its attributes: ${names.join(', ')}`;
  const named = new Map<number, NamedAttribute>();
  const items = text.trim() === '' ? [] : text.split(',');
  for (const [position, raw] of items.entries()) {
    const item = raw.trim();
    const m = /^([+-]?)([^\s+,-][^\s,]*)$/.exec(item);
    if (!m) {
      const why = item === '' ? 'is empty' : `is ${JSON.stringify(item)}`;
      throw new UsageError(
        'E_ATTR_REQUEST',
        `attribute ${position + 1} of the request "${text}" ${why}; expected a name, or -name for a face without it (${list})`,
        { hint: requestHint(names) },
      );
    }
    const [, sign, name] = m as unknown as [string, string, string];
    const index = names.indexOf(name);
    if (index < 0) {
      const near = names.find((n) => n.toLowerCase() === name.toLowerCase());
      throw new UsageError('E_ATTR_UNKNOWN', `${modelName(what)} has no attribute "${name}"${near ? ` (did you mean "${near}"?)` : ''}; ${list}`, {
        hint: requestHint(names),
      });
    }
    const value = sign === '-' ? -1 : 1;
    const before = named.get(index);
    if (before) {
      const twice = before.value === value;
      throw new UsageError(
        twice ? 'E_ATTR_DUPLICATE' : 'E_ATTR_CONFLICT',
        twice ? `the request "${text}" names ${name} twice` : `the request "${text}" asks for both ${name} and -${name}`,
        {
          hint: `Name each attribute once: ${name} for faces with it, -${name} for faces without it, or leave it out to draw it from the training data.`,
        },
      );
    }
    named.set(index, { index, name, value });
  }
  const ordered = [...named.values()].sort((a, b) => a.index - b.index);
  return { named: ordered, text: ordered.map((a) => (a.value < 0 ? '-' : '') + a.name).join(',') };
}

/**
 * The attribute draw of one request: label rows for faces by (seed, index). Made by
 * `attributeDraw`; it holds the pool of agreeing training rows, so reuse it across batches.
 */
export class AttributeDraw {
  readonly attributeCount: number;
  /** Training images in the model's table that agree with the request (the pool); 0 when none do. */
  readonly matching: number;
  /** Things to tell the user: when the attributes not named are not drawn from agreeing training rows. */
  readonly notes: readonly string[];
  private readonly table: DecodedRowTable | null;
  /** Offsets into table.rows of the agreeing rows, and their running sum of counts. */
  private readonly pool: Int32Array;
  private readonly cumulative: Float64Array;
  /** When no row agrees: each attribute's probability of +1. */
  private readonly frequencies: Float64Array;

  constructor(
    readonly model: ModelAttributes,
    readonly request: AttributeRequest,
    what?: string,
  ) {
    const k = (this.attributeCount = model.names.length);
    const table = (this.table = decodedRows(model, what));
    const pool: number[] = [];
    const cumulative: number[] = [];
    let total = 0;
    for (let i = 0; table && i < table.counts.length; i++) {
      if (!request.named.every((a) => table.rows[i * k + a.index] === a.value)) continue;
      total += table.counts[i]!;
      pool.push(i * k);
      cumulative.push(total);
    }
    this.pool = Int32Array.from(pool);
    this.cumulative = Float64Array.from(cumulative);
    this.matching = total;
    this.frequencies = Float64Array.from(model.frequencies ?? keptFrequencies(table, k) ?? new Array<number>(k).fill(0.5));
    this.notes = drawNotes(this, table, what);
  }

  /** Rows for faces startIndex .. startIndex+n-1 of `seed`: [n, K] float32, +1/-1. */
  rowsFor(seed: number, startIndex: number, n: number): Float32Array {
    const k = this.attributeCount;
    const out = new Float32Array(n * k);
    for (let i = 0; i < n; i++) this.drawRow(seed, startIndex + i, out.subarray(i * k, (i + 1) * k));
    return out;
  }

  private drawRow(seed: number, index: number, row: Float32Array): void {
    const rng = new Rng(seed, 'attributes', index);
    if (this.matching > 0) {
      // 53 random bits, so the modulo's bias is below matching / 2^53 (2e-11 for CelebA's 202,599 images).
      const r = ((rng.nextU32() >>> 11) * 4294967296 + rng.nextU32()) % this.matching;
      const start = this.pool[upperBound(this.cumulative, r)]!;
      row.set(this.table!.rows.subarray(start, start + row.length));
    } else {
      for (let a = 0; a < row.length; a++) row[a] = rng.uniform() < this.frequencies[a]! ? 1 : -1;
    }
    for (const a of this.request.named) row[a.index] = a.value;
  }
}

/** Why a draw's attributes not named do not come from agreeing training rows, if they do not. */
function drawNotes(draw: AttributeDraw, table: DecodedRowTable | null, what?: string): string[] {
  const { model, request } = draw;
  const unnamed = model.names.length - request.named.length;
  if (unnamed === 0) return [];
  const name = modelName(what);
  const how =
    model.frequencies || table?.covered
      ? 'independently, each with its frequency in the training data'
      : 'independently, each +1 or -1 with probability 1/2 (the model lists no frequencies)';
  if (table === null)
    return [
      `${name} stores no training label rows (exported without them): the ${unnamed} attributes not named are drawn ${how}, so their usual combinations are lost`,
    ];
  if (draw.matching === 0) {
    const asked = request.text === '' ? 'a request naming nothing' : `"${request.text}"`;
    return [`no training label row stored in ${name} agrees with ${asked}: the ${unnamed} attributes not named are drawn ${how}`];
  }
  if (table.covered < table.images) {
    const share = ((100 * table.covered) / table.images).toFixed(1);
    return [
      `${name} stores its ${table.counts.length} most common training label rows (${share}% of ${table.images} images); rarer combinations are not drawn`,
    ];
  }
  return [];
}

/** The first position whose cumulative count exceeds r (r < the last one). */
function upperBound(cumulative: Float64Array, r: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

const decoded = new WeakMap<ModelAttributes, DecodedRowTable | null>();

/** The model's table decoded, once per ModelAttributes object (serve draws per request). */
function decodedRows(model: ModelAttributes, what?: string): DecodedRowTable | null {
  let table = decoded.get(model);
  if (table === undefined) {
    table = model.rows ? decodeRowTable(model.rows, model.names.length, what ?? '(attributes given)') : null;
    decoded.set(model, table);
  }
  return table;
}

/**
 * The draw for request `text` on a model with `model`'s attributes (null: unconditional).
 * - unconditional model, no request: undefined (feed z alone);
 * - unconditional model with a request: E_NOT_CONDITIONAL;
 * - conditional model, no request: every attribute drawn from the training rows.
 * Bad requests throw the parser's errors (E_ATTR_UNKNOWN, ...). `what` names the model
 * (its path) in messages.
 */
export function attributeDraw(model: ModelAttributes | null, text: string | undefined, what?: string): AttributeDraw | undefined {
  if (model === null && text === undefined) return undefined;
  const request = parseAttributeRequest(text ?? '', model, what);
  return new AttributeDraw(model!, request, what);
}

function modelName(what: string | undefined): string {
  return what === undefined ? 'the model' : `model ${what}`;
}

/** Per attribute, the fraction of the table's images with it; null for no table or an empty one. */
function keptFrequencies(table: DecodedRowTable | null, k: number): number[] | null {
  if (!table || table.covered === 0) return null;
  const f = new Array<number>(k).fill(0);
  for (let i = 0; i < table.counts.length; i++) for (let a = 0; a < k; a++) if (table.rows[i * k + a]! > 0) f[a]! += table.counts[i]!;
  return f.map((v) => v / table.covered);
}

/** A label row as request text, e.g. `Smiling,-Eyeglasses,Blond_Hair` (every attribute; manifests, the page). */
export function rowText(names: readonly string[], row: ArrayLike<number>): string {
  return names.map((n, i) => (row[i]! > 0 ? n : `-${n}`)).join(',');
}
