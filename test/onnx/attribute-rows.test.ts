import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildSpec } from '../../src/config/presets.js';
import type { CelebaGanError } from '../../src/errors.js';
import { readModelSummary } from '../../src/inference/model-file.js';
import { parseModelAttributes } from '../../src/inference/attributes.js';
import { LabelRowCounter, MAX_ROW_TABLE_BYTES, countLabelRows, encodeRowTable } from '../../src/onnx/attribute-rows.js';
import { DatasetReader, DatasetWriter } from '../../src/data/dataset-file.js';
import { buildGeneratorOnnx } from '../../src/onnx/export.js';
import { META } from '../../src/onnx/metadata.js';
import { ONNX, referenceSkip } from '../support/references.js';
import { TEST_ATTRIBUTES, fakeLabels } from '../engines/labels.js';
import { weightsWithBatchNorm } from './fixtures.js';
import { python } from '../support/onnx.js';

/** The export option `attributeRows`: the training data's label rows in the model's metadata. */

const K = TEST_ATTRIBUTES.length;
const spec = buildSpec('seed28', 0.0625, { attributes: TEST_ATTRIBUTES });
const weights = weightsWithBatchNorm(spec, 3);

function table(k: number = K): ReturnType<LabelRowCounter['table']> {
  const counter = new LabelRowCounter(k);
  counter.add(fakeLabels(200, k, 9, 'onnx-attribute-rows'));
  return counter.table();
}

test('the rows are written under celeba_gan.attribute_rows and read back as they were counted', () => {
  const rows = table();
  const summary = readModelSummary(buildGeneratorOnnx(spec, weights, { attributeRows: rows }));
  assert.equal(summary.metadata.get(META.attributeRows), encodeRowTable(rows));
  assert.deepEqual(parseModelAttributes(summary.metadata, 'm.onnx'), { names: [...TEST_ATTRIBUTES], frequencies: null, rows });
  // Without the option, none are claimed.
  assert.equal(readModelSummary(buildGeneratorOnnx(spec, weights)).metadata.has(META.attributeRows), false);
});

test('countLabelRows counts a labelled .cgds in chunks: every image, each distinct row with its count', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cg-onnx-rows-data-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'labelled.cgds');
  const n = 5000; // more than one chunk of 4096
  const labels = Int8Array.from(fakeLabels(n, K, 12, 'onnx-rows-data'));
  const writer = new DatasetWriter(path, 2, 2, 3, true, 1, [...TEST_ATTRIBUTES]);
  writer.append(new Uint8Array(n * 2 * 2 * 3), labels);
  writer.finish();
  const reader = new DatasetReader(path);
  try {
    const counted = countLabelRows(reader, K).table();
    const expected = new LabelRowCounter(K);
    expected.add(labels);
    assert.deepEqual(counted, expected.table());
    assert.equal(counted.images, n);
    assert.equal(counted.counts.length, 8, 'all 2^3 rows occur');
  } finally {
    reader.close();
  }
});

test('with the rows the model still passes onnx.checker (full_check=True)', { skip: referenceSkip(ONNX) }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cg-onnx-rows-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'rows.onnx');
  writeFileSync(path, buildGeneratorOnnx(spec, weights, { attributeRows: table() }));
  const out = python(
    'import sys, onnx\nm = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\nprint({p.key for p in m.metadata_props} >= {"celeba_gan.attribute_rows"})',
    [path],
  );
  assert.equal(out.trim(), 'True');
});

test('ERROR PATH - rows of another K, past the size bound, or for an unconditional model', () => {
  const fails = (f: () => unknown, code: string, re: RegExp): void =>
    assert.throws(f, (err: CelebaGanError) => {
      assert.equal(err.code, code);
      assert.match(err.message, re);
      return true;
    });
  fails(() => buildGeneratorOnnx(spec, weights, { attributeRows: table(5) }), 'E_BAD_ARGUMENT', /do not fit 3 attributes \(Smiling, Eyeglasses, Blond_Hair\)/);
  // Every row of 16 attributes once: 2^16 rows of 4 digits and a count, past 256 KiB.
  const names16 = Array.from({ length: 16 }, (_, a) => `A${a}`);
  const counter = new LabelRowCounter(16);
  for (let r = 0; r < 65536; r++) counter.add(names16.map((_, a) => ((r >> a) & 1 ? 1 : -1)));
  const all = counter.table(Number.MAX_SAFE_INTEGER);
  assert.ok(encodeRowTable(all).length > MAX_ROW_TABLE_BYTES, 'the case is past the bound');
  const spec16 = buildSpec('seed28', 0.0625, { attributes: names16 });
  const weights16 = weightsWithBatchNorm(spec16, 3);
  fails(
    () => buildGeneratorOnnx(spec16, weights16, { attributeRows: all }),
    'E_BAD_ARGUMENT',
    new RegExp(`take \\d+ bytes; a model holds at most ${MAX_ROW_TABLE_BYTES}`),
  );
  // The counter's own table is cut to the bound, and exports.
  const cut = counter.table();
  assert.ok(cut.counts.length < 65536 && cut.images === 65536);
  assert.equal(readModelSummary(buildGeneratorOnnx(spec16, weights16, { attributeRows: cut })).metadata.get(META.attributeRows), encodeRowTable(cut));
  const plain = buildSpec('seed28', 0.0625);
  fails(
    () => buildGeneratorOnnx(plain, weightsWithBatchNorm(plain, 3), { attributeRows: table() }),
    'E_NOT_CONDITIONAL',
    /label rows were given for the export, but this seed28 model is unconditional/,
  );
});
