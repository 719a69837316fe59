import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetReader, DatasetWriter } from '../../src/data/dataset-file.js';
import { BatchLoader } from '../../src/data/batches.js';
import { buildSpec } from '../../src/config/presets.js';
import { openRun } from '../../src/train/open-run.js';

/** A 2x2x3 data set whose image i has every byte equal to i, so a batch names its own indices. */
function tinyDataset(count: number): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'cg-batches-'));
  const path = join(dir, 'tiny.cgds');
  const w = new DatasetWriter(path, 2, 2, 3, true);
  for (let i = 0; i < count; i++) w.append(new Uint8Array(12).fill(i));
  w.finish();
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function ids(images: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < images.length; i += 12) out.push(images[i]!);
  return out;
}

test('drops the last incomplete batch: 202599 images / 64 -> 3165 steps per epoch', () => {
  const fake = { count: 202599, path: 'x', imageBytes: 12 } as unknown as DatasetReader;
  const loader = new BatchLoader(fake, { batchSize: 64, seed: 1 });
  assert.equal(loader.stepsPerEpoch, 3165);
  assert.equal(loader.droppedPerEpoch, 39);
});

test('each epoch is a permutation; batches hold distinct images; same seed -> same order', () => {
  const ds = tinyDataset(23);
  try {
    const reader = new DatasetReader(ds.path);
    const a = new BatchLoader(reader, { batchSize: 5, seed: 7 });
    assert.equal(a.stepsPerEpoch, 4);
    const epoch0 = [...a.batches(0, 4)].flatMap((b) => ids(b.images));
    assert.equal(epoch0.length, 20);
    assert.equal(new Set(epoch0).size, 20);
    const epoch1 = [...a.batches(4, 8)].flatMap((b) => ids(b.images));
    assert.notDeepEqual(epoch1, epoch0, 'a new epoch reshuffles');
    const b = new BatchLoader(reader, { batchSize: 5, seed: 7 });
    assert.deepEqual([...b.batches(0, 8)].flatMap((x) => ids(x.images)), [...epoch0, ...epoch1]);
    const c = new BatchLoader(reader, { batchSize: 5, seed: 8 });
    assert.notDeepEqual([...c.batches(0, 4)].flatMap((x) => ids(x.images)), epoch0);
    reader.close();
  } finally {
    ds.cleanup();
  }
});

test('resuming at any (epoch, stepInEpoch) repeats the uninterrupted sequence exactly', () => {
  const ds = tinyDataset(17);
  try {
    const reader = new DatasetReader(ds.path);
    const loader = new BatchLoader(reader, { batchSize: 4, seed: 3 });
    const all = [...loader.batches(0, 13)];
    assert.deepEqual(
      all.map((b) => [b.step, b.epoch, b.stepInEpoch]),
      Array.from({ length: 13 }, (_, s) => [s, Math.floor(s / 4), s % 4]),
    );
    const resumed = new BatchLoader(reader, { batchSize: 4, seed: 3 });
    for (const start of [1, 4, 6, 11]) {
      const pos = resumed.positionOf(start);
      const rest = [...resumed.batches(pos, 13)];
      assert.equal(rest.length, 13 - start);
      assert.deepEqual(rest.map((b) => ids(b.images)), all.slice(start).map((b) => ids(b.images)));
    }
    assert.deepEqual(ids(resumed.read({ epoch: 2, stepInEpoch: 1 }).images), ids(all[9]!.images));
    reader.close();
  } finally {
    ds.cleanup();
  }
});

test('shuffle: false keeps file order', () => {
  const ds = tinyDataset(9);
  try {
    const reader = new DatasetReader(ds.path);
    const loader = new BatchLoader(reader, { batchSize: 4, seed: 0, shuffle: false });
    assert.deepEqual([...loader.batches(0, 4)].map((b) => ids(b.images)), [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7]]);
    reader.close();
  } finally {
    ds.cleanup();
  }
});

test('ERROR PATH - a data set smaller than one batch', () => {
  const ds = tinyDataset(3);
  try {
    const reader = new DatasetReader(ds.path);
    assert.throws(() => new BatchLoader(reader, { batchSize: 4, seed: 0 }), (err: Error & { code?: string }) => {
      assert.equal(err.name, 'UsageError');
      assert.equal(err.code, 'E_DATASET_TOO_SMALL');
      assert.match(err.message, /holds 3 images, fewer than one batch of 4/);
      return true;
    });
    reader.close();
  } finally {
    ds.cleanup();
  }
});

test('BAD CALL - positions outside the epoch', () => {
  const ds = tinyDataset(8);
  try {
    const reader = new DatasetReader(ds.path);
    const loader = new BatchLoader(reader, { batchSize: 4, seed: 0 });
    assert.throws(() => loader.read({ epoch: 0, stepInEpoch: 2 }), /Expected integer between 0 and 1 for stepInEpoch but received 2/);
    assert.throws(() => loader.read({ epoch: -1, stepInEpoch: 0 }), /Expected integer >= 0 for epoch/);
    reader.close();
  } finally {
    ds.cleanup();
  }
});

test('ERROR PATH - a data set of another image size than the model: training refuses it before any batch (E_DATASET_SIZE)', async () => {
  const ds = tinyDataset(8);
  const out = join(ds.path, '..', 'run');
  try {
    await assert.rejects(
      openRun({ spec: buildSpec('seed28', 0.03125), dataPath: ds.path, outDir: out, seed: 1, batchSize: 4, steps: 1 }),
      (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.name, 'UsageError');
        assert.equal(err.code, 'E_DATASET_SIZE');
        assert.equal(err.message, `data set ${ds.path} holds 2x2x3 images but seed28 needs 28x28x3`);
        assert.match(err.hint!, /celeba-gan prepare --size 28/);
        return true;
      },
    );
    assert.equal(existsSync(out), false, 'no run folder created');
  } finally {
    ds.cleanup();
  }
});
