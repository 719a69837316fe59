import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CelebaGanError } from '../../src/errors.js';
import { attributeDraw, parseAttributeRequest, parseModelAttributes, rowText, type ModelAttributes } from '../../src/inference/attributes.js';
import { ATTRIBUTE_KEYS, LabelRowCounter, MAX_ROW_TABLE_BYTES, decodeRowTable, encodeRowTable } from '../../src/onnx/attribute-rows.js';

/**
 * Attribute requests (`Smiling,-Male`) and the draw of each face's label row: the parser's
 * errors, the stored-row table (its encoding and size bound), determinism per (seed, index,
 * request), and that the draw follows the stored rows' counts given the named attributes.
 */

const NAMES = ['Smiling', 'Eyeglasses', 'Blond_Hair', 'Male'];
const K = NAMES.length;
/** The training data: five distinct rows (+1/-1 in NAMES order) with how many images have each. */
const DATA: { row: number[]; count: number }[] = [
  { row: [1, -1, -1, 1], count: 400 },
  { row: [1, 1, -1, -1], count: 100 },
  { row: [1, -1, 1, -1], count: 300 },
  { row: [-1, -1, -1, 1], count: 500 },
  { row: [-1, 1, 1, -1], count: 200 },
];
const IMAGES = DATA.reduce((n, d) => n + d.count, 0);
const FREQUENCIES = NAMES.map((_, a) => DATA.reduce((n, d) => n + (d.row[a]! > 0 ? d.count : 0), 0) / IMAGES);

function counted(data = DATA, k = K): LabelRowCounter {
  const counter = new LabelRowCounter(k);
  // Added in chunks, interleaved, as a data set's labels stream by.
  const labels = data.flatMap((d) => Array.from({ length: d.count }, () => d.row));
  for (let i = 0; i < labels.length; i += 97) counter.add(Float32Array.from(labels.slice(i, i + 97).flat()));
  return counter;
}

function model(opts: { rows?: boolean; frequencies?: boolean; maxBytes?: number } = {}): ModelAttributes {
  return {
    names: [...NAMES],
    frequencies: opts.frequencies === false ? null : FREQUENCIES,
    rows: opts.rows === false ? null : counted().table(opts.maxBytes),
  };
}

function rowsOf(labels: Float32Array, k = K): number[][] {
  return Array.from({ length: labels.length / k }, (_, i) => [...labels.subarray(i * k, (i + 1) * k)]);
}

function fails(f: () => unknown, code: string, message: RegExp): void {
  assert.throws(f, (err: CelebaGanError) => {
    assert.ok(err instanceof CelebaGanError, `a CelebaGanError, not ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('the stored-row table', () => {
  test('counts each distinct row once, most common first, as hex digits in attribute order', () => {
    const table = counted().table();
    assert.equal(table.images, IMAGES);
    assert.deepEqual(table.counts, [500, 400, 300, 200, 100]);
    // (-,-,-,+) = 0001 = 1; (+,-,-,+) = 1001 = 9; (+,-,+,-) = 1010 = a; (-,+,+,-) = 0110 = 6; (+,+,-,-) = 1100 = c
    assert.equal(table.rows, '19a6c');
    const decoded = decodeRowTable(JSON.parse(encodeRowTable(table)), K, 'test');
    assert.deepEqual(rowsOf(Float32Array.from(decoded.rows)), [DATA[3]!.row, DATA[0]!.row, DATA[2]!.row, DATA[4]!.row, DATA[1]!.row]);
    assert.equal(decoded.covered, IMAGES);
  });

  test('K not a multiple of 4: the last digit is padded with zero bits; 5 attributes take 2 digits', () => {
    const counter = new LabelRowCounter(5);
    counter.add([1, -1, 1, 1, 1, -1, -1, -1, -1, 1]);
    const table = counter.table();
    // (-,-,-,-,+) = 0000 1(000) = 08; (+,-,+,+,+) = 1011 1(000) = b8; equal counts: increasing hex order
    assert.equal(table.rows, '08' + 'b8');
    assert.deepEqual(rowsOf(Float32Array.from(decodeRowTable(table, 5, 'test').rows), 5), [
      [-1, -1, -1, -1, 1],
      [1, -1, 1, 1, 1],
    ]);
  });

  test('the size bound keeps the most common rows and still counts every image', () => {
    // 2^10 distinct rows of 10 attributes, row r held by r + 1 images.
    const k = 10;
    const counter = new LabelRowCounter(k);
    for (let r = 0; r < 1024; r++) for (let c = 0; c <= r; c++) counter.add(Array.from({ length: k }, (_, a) => ((r >> a) & 1 ? 1 : -1)));
    const full = counter.table();
    assert.equal(full.counts.length, 1024);
    assert.ok(encodeRowTable(full).length <= MAX_ROW_TABLE_BYTES);
    const cut = counter.table(2000);
    const bytes = encodeRowTable(cut).length;
    assert.ok(bytes <= 2000 && bytes > 2000 - 10, `encoded ${bytes} bytes, bound 2000`);
    assert.equal(cut.images, (1024 * 1025) / 2);
    assert.deepEqual(cut.counts, full.counts.slice(0, cut.counts.length), 'the most common rows, in the same order');
    assert.ok(cut.counts.every((c) => c >= full.counts[cut.counts.length]!));
    // A draw on the cut table says how much of the data it covers.
    const names = Array.from({ length: k }, (_, a) => `A${a}`);
    const draw = attributeDraw({ names, frequencies: null, rows: cut }, 'A0', 'cut.onnx')!;
    assert.match(draw.notes.join('\n'), new RegExp(`stores its ${cut.counts.length} most common training label rows \\(\\d+\\.\\d% of 524800 images\\)`));
  });

  test('ERROR PATH - tables a celeba-gan export does not write are E_MODEL_METADATA naming the model', () => {
    const ok = { images: 10, rows: '19', counts: [4, 6] };
    const cases: [string, unknown, RegExp][] = [
      ['not an object', 'x', /expected a JSON object/],
      ['images missing', { ...ok, images: undefined }, /images is undefined/],
      ['upper-case hex', { ...ok, rows: '1A' }, /lower-case hex/],
      ['digits for a different count of rows', { ...ok, rows: '19a' }, /2 counts need 2 hex digits/],
      ['a row twice', { ...ok, rows: '11' }, /row 1 appears twice/],
      ['a zero count', { ...ok, counts: [0, 6] }, /count 0 is 0/],
      ['more counted than images', { ...ok, counts: [5, 6] }, /add up to 11, more than its 10 images/],
    ];
    for (const [why, value, message] of cases) {
      fails(() => decodeRowTable(value, K, 'm.onnx'), 'E_MODEL_METADATA', new RegExp(`m\\.onnx.*${message.source}`));
      assert.ok(why);
    }
    // 3 attributes: the last bit of the digit is padding and must be zero.
    fails(() => decodeRowTable({ images: 1, rows: '3', counts: [1] }, 3, 'm.onnx'), 'E_MODEL_METADATA', /sets bits past its 3 attributes/);
  });

  test('ERROR PATH - the counter takes whole rows of +1/-1 only', () => {
    fails(() => new LabelRowCounter(4).add([1, -1, 1]), 'E_BAD_ARGUMENT', /whole rows of 4 labels but received 3/);
    fails(() => new LabelRowCounter(2).add([1, 0]), 'E_BAD_ARGUMENT', /\+1 or -1 for label 1 of row 0/);
  });
});

describe('the model metadata', () => {
  const meta = (m: ModelAttributes): Map<string, string> =>
    new Map([
      [ATTRIBUTE_KEYS.names, JSON.stringify(m.names)],
      [ATTRIBUTE_KEYS.frequencies, JSON.stringify(m.frequencies)],
      [ATTRIBUTE_KEYS.rows, encodeRowTable(m.rows!)],
    ]);

  test('reads names, frequencies and rows back; an unconditional model has none', () => {
    const m = model();
    assert.deepEqual(parseModelAttributes(meta(m), 'm.onnx'), m);
    assert.equal(parseModelAttributes(new Map(), 'm.onnx'), null);
  });

  test('ERROR PATH - attribute metadata that cannot be right is E_MODEL_METADATA naming the key', () => {
    const m = meta(model());
    const edit = (key: string, value: string | undefined): Map<string, string> => {
      const copy = new Map(m);
      if (value === undefined) copy.delete(key);
      else copy.set(key, value);
      return copy;
    };
    fails(
      () => parseModelAttributes(edit(ATTRIBUTE_KEYS.names, undefined), 'm.onnx'),
      'E_MODEL_METADATA',
      /celeba_gan\.attribute_frequencies: it is set, but celeba_gan\.attributes is not/,
    );
    fails(() => parseModelAttributes(edit(ATTRIBUTE_KEYS.names, '["Smiling","Smiling"]'), 'm.onnx'), 'E_MODEL_METADATA', /Smiling is listed twice/);
    fails(() => parseModelAttributes(edit(ATTRIBUTE_KEYS.names, 'Smiling'), 'm.onnx'), 'E_MODEL_METADATA', /is not JSON/);
    fails(() => parseModelAttributes(edit(ATTRIBUTE_KEYS.frequencies, '[0.5]'), 'm.onnx'), 'E_MODEL_METADATA', /4 numbers in \[0, 1\]/);
    fails(
      () => parseModelAttributes(edit(ATTRIBUTE_KEYS.rows, ' '.repeat(MAX_ROW_TABLE_BYTES + 1)), 'm.onnx'),
      'E_MODEL_METADATA',
      /more than the 262144 an export writes/,
    );
  });
});

describe('parsing a request', () => {
  test('names in the model order, - for absent, whitespace and + ignored; an empty request names nothing', () => {
    const r = parseAttributeRequest(' Male , -Eyeglasses,+Smiling', model());
    assert.deepEqual(r.named, [
      { index: 0, name: 'Smiling', value: 1 },
      { index: 1, name: 'Eyeglasses', value: -1 },
      { index: 3, name: 'Male', value: 1 },
    ]);
    assert.equal(r.text, 'Smiling,-Eyeglasses,Male');
    assert.deepEqual(parseAttributeRequest('', model()).named, []);
  });

  const ERRORS: { name: string; text: string; conditional?: false; code: string; message: RegExp }[] = [
    {
      name: 'an unknown name lists the model attributes',
      text: 'Smiling,Beard',
      code: 'E_ATTR_UNKNOWN',
      message: /has no attribute "Beard"; its attributes: Smiling, Eyeglasses, Blond_Hair, Male/,
    },
    {
      name: 'a name in the wrong case suggests the right one',
      text: 'smiling',
      code: 'E_ATTR_UNKNOWN',
      message: /no attribute "smiling" \(did you mean "Smiling"\?\)/,
    },
    { name: 'a value instead of a sign', text: 'Smiling=1', code: 'E_ATTR_UNKNOWN', message: /no attribute "Smiling=1"/ },
    { name: 'an empty item', text: 'Smiling,,Male', code: 'E_ATTR_REQUEST', message: /attribute 2 of the request "Smiling,,Male" is empty/ },
    { name: 'a trailing comma', text: 'Smiling,', code: 'E_ATTR_REQUEST', message: /attribute 2 .* is empty/ },
    { name: 'two signs', text: '--Smiling', code: 'E_ATTR_REQUEST', message: /is "--Smiling"; expected a name, or -name/ },
    { name: 'spaces instead of commas', text: 'Smiling Male', code: 'E_ATTR_REQUEST', message: /is "Smiling Male"/ },
    { name: 'a name twice', text: 'Smiling,Male,Smiling', code: 'E_ATTR_DUPLICATE', message: /names Smiling twice/ },
    { name: 'a name both ways', text: 'Smiling,-Smiling', code: 'E_ATTR_CONFLICT', message: /asks for both Smiling and -Smiling/ },
    {
      name: 'an unconditional model',
      text: 'Smiling',
      conditional: false,
      code: 'E_NOT_CONDITIONAL',
      message: /model m\.onnx is unconditional: it has no attributes/,
    },
  ];
  for (const c of ERRORS) {
    test(`ERROR PATH - ${c.name}: ${c.code}`, () => {
      assert.throws(
        () => parseAttributeRequest(c.text, c.conditional === false ? null : model(), 'm.onnx'),
        (err: CelebaGanError) => {
          assert.equal(err.code, c.code);
          assert.equal(err.kind, 'usage', 'a usage error (exit code 2)');
          assert.match(err.message, c.message);
          assert.ok(err.hint, 'says what to do');
          return true;
        },
      );
    });
  }

  test('attributeDraw: nothing asked of an unconditional model is no draw; a request of one is E_NOT_CONDITIONAL', () => {
    assert.equal(attributeDraw(null, undefined), undefined);
    fails(() => attributeDraw(null, ''), 'E_NOT_CONDITIONAL', /unconditional/);
  });
});

describe('drawing rows', () => {
  const N = 4000;
  const SEED = 11;

  test('deterministic per (seed, index, request): batches, order of names and a fresh draw give the same rows', () => {
    const m = model();
    const all = attributeDraw(m, 'Smiling')!.rowsFor(SEED, 100, 64);
    const one = Array.from({ length: 64 }, (_, i) => [...attributeDraw(model(), '+Smiling')!.rowsFor(SEED, 100 + i, 1)]).flat();
    assert.deepEqual([...all], [...one]);
    assert.deepEqual(attributeDraw(m, 'Male,-Smiling')!.rowsFor(SEED, 0, 32), attributeDraw(m, '-Smiling,Male')!.rowsFor(SEED, 0, 32));
    assert.notDeepEqual(attributeDraw(m, 'Smiling')!.rowsFor(SEED + 1, 100, 64), all, 'another seed, other rows');
    assert.notDeepEqual(attributeDraw(m, 'Smiling')!.rowsFor(SEED, 200, 64), all, 'other faces, other rows');
  });

  /** The fraction of `rows` equal to each of `expected`, checked within 4 binomial standard errors. */
  function followsCounts(rows: number[][], expected: { row: number[]; p: number }[]): void {
    const n = rows.length;
    const key = (r: number[]): string => r.join(',');
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(key(r), (seen.get(key(r)) ?? 0) + 1);
    for (const { row, p } of expected) {
      const got = (seen.get(key(row)) ?? 0) / n;
      const tolerance = 4 * Math.sqrt((p * (1 - p)) / n);
      assert.ok(Math.abs(got - p) <= tolerance, `row ${key(row)}: ${got} drawn, ${p} expected (tolerance ${tolerance.toFixed(4)})`);
      seen.delete(key(row));
    }
    assert.deepEqual([...seen.keys()], [], 'only the expected rows are drawn');
  }

  test('the named attribute is always set and the others follow the stored rows that have it, by count', () => {
    const draw = attributeDraw(model(), 'Smiling', 'm.onnx')!;
    assert.equal(draw.matching, 800);
    assert.deepEqual(draw.notes, []);
    const rows = rowsOf(draw.rowsFor(SEED, 0, N));
    assert.ok(rows.every((r) => r[0] === 1));
    followsCounts(rows, [
      { row: DATA[0]!.row, p: 400 / 800 },
      { row: DATA[1]!.row, p: 100 / 800 },
      { row: DATA[2]!.row, p: 300 / 800 },
    ]);
  });

  test('an empty request follows every stored row by count', () => {
    followsCounts(
      rowsOf(attributeDraw(model(), undefined)!.rowsFor(SEED, 0, N)),
      DATA.map((d) => ({ row: d.row, p: d.count / IMAGES })),
    );
  });

  test('no stored row agrees: the named are set, the others drawn independently with their frequencies, and a note says so', () => {
    const draw = attributeDraw(model(), 'Male,Blond_Hair', 'm.onnx')!;
    assert.equal(draw.matching, 0);
    assert.match(
      draw.notes.join('\n'),
      /no training label row stored in model m\.onnx agrees with "Blond_Hair,Male": the 2 attributes not named are drawn independently, each with its frequency/,
    );
    const rows = rowsOf(draw.rowsFor(SEED, 0, N));
    assert.ok(rows.every((r) => r[2] === 1 && r[3] === 1));
    for (const a of [0, 1]) {
      const p = FREQUENCIES[a]!;
      const got = rows.filter((r) => r[a] === 1).length / N;
      assert.ok(Math.abs(got - p) <= 4 * Math.sqrt((p * (1 - p)) / N), `${NAMES[a]}: ${got} drawn, ${p} expected`);
    }
  });

  test('a model without stored rows draws independently and says the combinations are lost; without frequencies, 1/2 each', () => {
    const draw = attributeDraw(model({ rows: false }), 'Smiling', 'm.onnx')!;
    assert.match(draw.notes.join('\n'), /stores no training label rows .* each with its frequency .* usual combinations are lost/);
    const bare = attributeDraw(model({ rows: false, frequencies: false }), 'Smiling', 'm.onnx')!;
    assert.match(bare.notes.join('\n'), /probability 1\/2 \(the model lists no frequencies\)/);
    const rows = rowsOf(bare.rowsFor(SEED, 0, N));
    const got = rows.filter((r) => r[1] === 1).length / N;
    assert.ok(Math.abs(got - 0.5) <= 4 * Math.sqrt(0.25 / N), `Eyeglasses: ${got}`);
  });

  test('every attribute named: the row is the request, with no note', () => {
    const draw = attributeDraw(model(), 'Smiling,Eyeglasses,Blond_Hair,Male')!;
    assert.deepEqual(draw.notes, []);
    assert.deepEqual(rowsOf(draw.rowsFor(SEED, 0, 3)), [
      [1, 1, 1, 1],
      [1, 1, 1, 1],
      [1, 1, 1, 1],
    ]);
    assert.equal(rowText(NAMES, [1, -1, 1, -1]), 'Smiling,-Eyeglasses,Blond_Hair,-Male');
  });
});
