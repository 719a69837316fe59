import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetReader, DatasetWriter } from '../../src/data/dataset-file.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { ATTRIBUTE_KEYS, countLabelRows, encodeRowTable } from '../../src/onnx/attribute-rows.js';
import { decodeModel } from '../../src/onnx/onnx-proto.js';
import { ATTRIBUTE_ROWS_FILE, listCheckpoints, readRunConfig } from '../../src/train/index.js';
import { cli } from '../support/in-process.js';
import { torchSkip } from '../support/torch-addon.js';

/**
 * `train --conditional` and the export of a conditional run, through the CLI on a small labelled
 * synthetic set: the spec takes the data set's attributes and frequencies, the run keeps its
 * training label rows (attribute-rows.json) and the export carries them even when the data set
 * has moved.
 */

let root: string;
let data: string;
let unlabelled: string;
const ATTRS = ['Smiling', 'Eyeglasses', 'Blond_Hair'];

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cg-cond-cli-'));
  data = join(root, 'faces-28.cgds');
  await prepareSynthetic({ count: 16, out: data, size: 28, seed: 4, attrSubset: ATTRS });
  unlabelled = join(root, 'plain-28.cgds');
  const w = new DatasetWriter(unlabelled, 28, 28, 3, true, 1);
  w.append(new Uint8Array(8 * 28 * 28 * 3).map((_, i) => (i * 13) % 256));
  w.finish();
});
after(() => rmSync(root, { recursive: true, force: true }));

const tiny = ['--width', '0.03125', '--batch-size', '4', '--sample-every', '0', '--log-every', '1', '--seed', '3'];

function metadata(path: string): Record<string, string> {
  return Object.fromEntries(decodeModel(readFileSync(path)).metadata_props.map((p) => [p.key, p.value]));
}

/** The data set's own label rows, counted directly (what the run must have stored). */
function dataRows(): string {
  const reader = new DatasetReader(data);
  try {
    return encodeRowTable(countLabelRows(reader, ATTRS.length).table());
  } finally {
    reader.close();
  }
}

const engines = [
  { name: 'tfjs', args: ['--engine', 'tfjs', '--backend', 'cpu'], skip: false as string | false },
  { name: 'torch', args: ['--engine', 'torch', '--threads', '1'], skip: torchSkip() },
];

for (const engine of engines) {
  describe(`train --conditional on the ${engine.name} engine`, { skip: engine.skip }, () => {
    test('the spec takes the data set attributes; the run keeps the label rows; resume continues it; export carries rows and frequencies after the data set moved', async () => {
      const out = join(root, `run-${engine.name}`);
      const r = await cli('train', '--conditional', '--data', data, '--out', out, '--steps', '2', ...tiny, ...engine.args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /conditional on 3 attributes \(Smiling, Eyeglasses, Blond_Hair\)/);

      const run = readRunConfig(out)!;
      const reader = new DatasetReader(data);
      const frequencies = reader.attributes!.frequencies;
      reader.close();
      assert.deepEqual(run.spec.conditioning, { attributes: ATTRS, frequencies });
      const stored = JSON.parse(readFileSync(join(out, ATTRIBUTE_ROWS_FILE), 'utf8')) as { attributes: string[]; table: unknown };
      assert.deepEqual(stored.attributes, ATTRS);
      assert.equal(JSON.stringify(stored.table), dataRows());

      // A resume without --conditional trains the run's conditional spec.
      const resumed = await cli('train', '--out', out, '--resume', '--steps', '3', ...engine.args);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(
        listCheckpoints(out).map((c) => c.step),
        [2, 3],
      );

      // The data set moves away: export still has the rows (from the run folder).
      const moved = join(root, `moved-${engine.name}.cgds`);
      renameSync(data, moved);
      try {
        const model = join(root, `cond-${engine.name}.onnx`);
        const e = await cli('export', '--run', out, '--onnx', model);
        assert.equal(e.code, 0, e.stderr);
        assert.match(
          e.stdout,
          /attributes float32 \[batch, 3\] \(\+1\/-1\): Smiling, Eyeglasses, Blond_Hair; carries their frequencies and \d+ distinct training label rows \(100\.0% of 16 images\)/,
        );
        const meta = metadata(model);
        assert.deepEqual(JSON.parse(meta[ATTRIBUTE_KEYS.names]!), ATTRS);
        assert.deepEqual(JSON.parse(meta[ATTRIBUTE_KEYS.frequencies]!), frequencies);
        assert.equal(meta[ATTRIBUTE_KEYS.rows], JSON.stringify(stored.table));
      } finally {
        renameSync(moved, data);
      }
    });
  });
}

test('a run folder without its label rows exports with a note, and a resume counts them again', async () => {
  const out = join(root, 'run-lost-rows');
  assert.equal((await cli('train', '--conditional', '--data', data, '--out', out, '--steps', '1', ...tiny, '--engine', 'tfjs', '--backend', 'cpu')).code, 0);
  const rowsFile = join(out, ATTRIBUTE_ROWS_FILE);
  const rows = readFileSync(rowsFile);
  unlinkSync(rowsFile);
  const model = join(root, 'lost.onnx');
  const e = await cli('export', '--run', out, '--onnx', model);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout + e.stderr, /note: .*attribute-rows\.json is missing: the model carries no training label rows.*--resume/);
  assert.equal(metadata(model)[ATTRIBUTE_KEYS.rows], undefined);
  assert.ok(metadata(model)[ATTRIBUTE_KEYS.frequencies]);
  const again = await cli('train', '--out', out, '--resume', '--steps', '1', '--engine', 'tfjs', '--backend', 'cpu');
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readFileSync(rowsFile), rows, 'the same rows, counted again from the run data set');
});

test('ERROR PATH - train --conditional on an unlabelled data set: E_NO_LABELS naming the file and the fix, nothing written', async () => {
  const out = join(root, 'run-unlabelled');
  const r = await cli('train', '--conditional', '--data', unlabelled, '--out', out, '--steps', '1', ...tiny, '--engine', 'tfjs', '--backend', 'cpu');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[E_NO_LABELS\]: conditional training needs a labelled data set, but .*plain-28\.cgds has no attribute labels/);
  assert.match(r.stderr, /prepare --input <images> --attributes list_attr_celeba\.txt/);
  assert.match(r.stderr, /prepare --synthetic/);
  assert.equal(existsSync(out), false);
});

test('ERROR PATH - a conditional run resumed --no-conditional, or resumed on an unlabelled data set', async () => {
  const out = join(root, 'run-mismatch');
  assert.equal((await cli('train', '--conditional', '--data', data, '--out', out, '--steps', '1', ...tiny, '--engine', 'tfjs', '--backend', 'cpu')).code, 0);
  const r = await cli('train', '--out', out, '--resume', '--no-conditional', '--steps', '2', '--engine', 'tfjs', '--backend', 'cpu');
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /\[E_CHECKPOINT_MISMATCH\]: .* holds a seed28 run at width 0\.03125 conditional on Smiling, Eyeglasses, Blond_Hair, but seed28 at width 0\.03125 unconditional was asked for/,
  );
  assert.match(r.stderr, /--conditional/);
  const u = await cli('train', '--out', out, '--resume', '--data', unlabelled, '--steps', '2', '--engine', 'tfjs', '--backend', 'cpu');
  assert.equal(u.code, 2);
  assert.match(u.stderr, /\[E_NO_LABELS\]: data set .*plain-28\.cgds has no attribute labels, but the model is conditional on Smiling, Eyeglasses, Blond_Hair/);
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.step),
    [1],
  );
});

test('ERROR PATH - a damaged attribute-rows.json fails the export with E_RUN_CORRUPT naming it and the fix', async () => {
  const out = join(root, 'run-damaged');
  assert.equal((await cli('train', '--conditional', '--data', data, '--out', out, '--steps', '1', ...tiny, '--engine', 'tfjs', '--backend', 'cpu')).code, 0);
  const rowsFile = join(out, ATTRIBUTE_ROWS_FILE);
  const file = JSON.parse(readFileSync(rowsFile, 'utf8')) as { attributes: string[]; table: { rows: string } };
  for (const [what, damaged, message] of [
    ['truncated', readFileSync(rowsFile, 'utf8').slice(0, 20), /cannot be read as JSON/],
    ['other names', JSON.stringify({ ...file, attributes: ['Smiling'] }), /lists the attributes \["Smiling"\], but the run's model has/],
    ['a bad table', JSON.stringify({ ...file, table: { ...file.table, rows: `${file.table.rows}0` } }), /holds a bad row table/],
  ] as const) {
    writeFileSync(rowsFile, damaged);
    const e = await cli('export', '--run', out, '--onnx', join(root, 'damaged.onnx'));
    assert.equal(e.code, 1, what);
    assert.match(e.stderr, /\[E_RUN_CORRUPT\]: .*attribute-rows\.json/, what);
    assert.match(e.stderr, message, what);
    assert.match(e.stderr, /--resume/, what);
    assert.equal(existsSync(join(root, 'damaged.onnx')), false, what);
  }
});
