import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { DATASET_HEADER_SIZE, DatasetReader, DatasetWriter } from '../../src/data/dataset-file.js';
import { BatchLoader } from '../../src/data/batches.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'cg-labels-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const NAMES = ['Smiling', 'Eyeglasses', 'Blond_Hair'];
const COUNT = 10;

/** Image i: 2x2 pixels all equal to i. Labels: Smiling when i is even, Eyeglasses when i % 3 == 0, Blond_Hair never. */
function labelsOf(i: number): number[] {
  return [i % 2 === 0 ? 1 : -1, i % 3 === 0 ? 1 : -1, -1];
}

function writeLabelled(path: string): void {
  const w = new DatasetWriter(path, 2, 2, 3, false, undefined, NAMES);
  // Two appends of several images each, as prepare does in chunks.
  for (const [from, to] of [[0, 4], [4, COUNT]] as const) {
    const pixels = new Uint8Array((to - from) * 12);
    const labels = new Int8Array((to - from) * NAMES.length);
    for (let i = from; i < to; i++) {
      pixels.fill(i, (i - from) * 12, (i - from + 1) * 12);
      labels.set(labelsOf(i), (i - from) * NAMES.length);
    }
    w.append(pixels, labels);
  }
  w.finish();
}

/**
 * A version-2 file built by hand from the layout documented before labels existed (64-byte
 * header, pixels, SHA-256 of the pixels then header bytes 0..19 and 52..63), independent of
 * DatasetWriter: the old writer's logic.
 */
function oldFormatFile(pixels: Uint8Array, count: number, seed: number): Buffer {
  const h = Buffer.alloc(DATASET_HEADER_SIZE);
  h.write('CGDS', 0, 'latin1');
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(64, 6);
  h.writeUInt32LE(count, 8);
  h.writeUInt16LE(2, 12);
  h.writeUInt16LE(2, 14);
  h.writeUInt16LE(3, 16);
  h.writeUInt16LE(1 | 2, 18); // synthetic, seed present
  h.writeUInt32LE(seed, 52);
  const checksum = createHash('sha256').update(pixels).update(h.subarray(0, 20)).update(h.subarray(52, 64)).digest();
  checksum.copy(h, 20);
  return Buffer.concat([h, pixels]);
}

/** Recompute a file's version-2/3 checksum, as a writer with a bug would have signed it. */
function resign(b: Buffer): Buffer {
  const sum = createHash('sha256').update(b.subarray(DATASET_HEADER_SIZE)).update(b.subarray(0, 20)).update(b.subarray(52, 64)).digest();
  sum.copy(b, 20);
  return b;
}

test('a labelled data set: version 3, names and exact frequencies in the header, labels by index', () => {
  withDir((dir) => {
    const path = join(dir, 'l.cgds');
    writeLabelled(path);
    const r = new DatasetReader(path);
    r.verify();
    assert.equal(r.header.version, 3);
    assert.deepEqual(r.attributes, { names: NAMES, frequencies: [5 / 10, 4 / 10, 0] });
    assert.deepEqual(r.header.attributes, r.attributes);
    const idx = [7, 0, 3, 9];
    assert.deepEqual([...r.readLabels(idx)], idx.flatMap(labelsOf));
    assert.deepEqual([...r.read([7]).subarray(0, 3)], [7, 7, 7], 'pixels sit where version 2 puts them');
    // 64 + 10 images x 12 bytes + 10 x 3 labels + the attribute table.
    const table = JSON.stringify({ names: NAMES, positives: [5, 4, 0] });
    assert.equal(readFileSync(path).length, 64 + 120 + 30 + table.length);
    assert.equal(readFileSync(path, 'utf8').slice(-table.length), table);
    r.close();
  });
});

test('unlabelled data sets are still written as version 2, byte for byte as before; old files read', () => {
  withDir((dir) => {
    const pixels = new Uint8Array(3 * 12).map((_, i) => (7 * i) % 256);
    const old = oldFormatFile(pixels, 3, 77);
    const oldPath = join(dir, 'old.cgds');
    writeFileSync(oldPath, old);
    const r = new DatasetReader(oldPath);
    r.verify();
    assert.equal(r.header.version, 2);
    assert.equal(r.attributes, undefined);
    assert.equal('attributes' in r.header, false);
    assert.throws(() => r.readLabels([0]), /is not labelled/);
    r.close();

    const newPath = join(dir, 'new.cgds');
    const w = new DatasetWriter(newPath, 2, 2, 3, true, 77);
    w.append(pixels);
    w.finish();
    assert.deepEqual(readFileSync(newPath), old);
  });
});

test('batches of a labelled data set carry labels row by row beside their images; unlabelled ones have no labels key', () => {
  withDir((dir) => {
    const path = join(dir, 'b.cgds');
    writeLabelled(path);
    const reader = new DatasetReader(path);
    const loader = new BatchLoader(reader, { batchSize: 3, seed: 5 });
    assert.deepEqual(loader.attributes?.names, NAMES);
    for (const b of loader.batches(0, 6)) {
      assert.ok(b.labels instanceof Float32Array);
      assert.equal(b.labels.length, b.n * NAMES.length);
      const ids = Array.from({ length: b.n }, (_, i) => b.images[i * 12]!);
      assert.deepEqual([...b.labels], ids.flatMap(labelsOf), `step ${b.step}`);
    }
    reader.close();

    const plain = join(dir, 'plain.cgds');
    const w = new DatasetWriter(plain, 2, 2);
    w.append(new Uint8Array(4 * 12));
    w.finish();
    const pr = new DatasetReader(plain);
    const batch = new BatchLoader(pr, { batchSize: 2, seed: 1 }).read({ epoch: 0, stepInEpoch: 0 });
    assert.deepEqual(Object.keys(batch).sort(), ['epoch', 'images', 'n', 'step', 'stepInEpoch']);
    pr.close();
  });
});

test('ERROR PATH - a damaged labelled file: a flipped label fails verify; a label byte that is not +-1 fails reading; a bad table or size fails opening', () => {
  withDir((dir) => {
    const path = join(dir, 'good.cgds');
    writeLabelled(path);
    const good = readFileSync(path);
    const labelsAt = 64 + 120;
    const cases: [string, (b: Buffer) => Buffer, 'open' | 'verify' | 'read', RegExp][] = [
      ['a flipped label', (b) => ((b[labelsAt + 4] = 1), b), 'verify', /checksum of the pixels, labels and header fields .* does not match/],
      ['a label byte of 5', (b) => ((b[labelsAt] = 5), b), 'read', /label 0 of image 0 is 5, not \+1 or -1/],
      ['a changed frequency', (b) => Buffer.from(b.toString('latin1').replace('"positives":[5,', '"positives":[6,'), 'latin1'), 'verify', /does not match/],
      // Damage to the table is found at open and reported as the checksum mismatch it is...
      ['a damaged attribute table', (b) => ((b[b.length - 10]! ^= 0xff), b), 'open', /checksum of the pixels, labels and header fields .* does not match/],
      // ...while a table written wrong under a matching checksum says what is wrong with it.
      ['an attribute table that is not JSON', (b) => resign(((b[b.length - 1] = 0x20), b)), 'open', /the attribute table is not valid JSON/],
      // Same length, so only the table's contents are wrong: 4 names for K = 3.
      ['a table naming 4 attributes', (b) => resign(Buffer.from(b.toString('latin1').replace('"Blond_Hair"', '"Bald","Bal"'), 'latin1')), 'open', /the attribute table does not hold 3 distinct names and 3 counts of at most 10/],
      ['truncated labels', (b) => b.subarray(0, b.length - 1), 'open', /10 images of 2x2x3 and 3 labels each plus a \d+-byte attribute table need \d+ bytes but the file has \d+ \(truncated\?\)/],
      ['the labelled flag cleared', (b) => (b.writeUInt16LE(b.readUInt16LE(18) & ~4, 18), b), 'open', /version 3 with the labelled flag clear/],
    ];
    for (const [what, damage, when, message] of cases) {
      const p = join(dir, `${what.replace(/\W+/g, '-')}.cgds`);
      writeFileSync(p, damage(Buffer.from(good)));
      const check = (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_DATASET_CORRUPT', what);
        assert.match(err.message, message, what);
        return true;
      };
      if (when === 'open') {
        assert.throws(() => new DatasetReader(p), check, what);
        continue;
      }
      const r = new DatasetReader(p);
      if (when === 'verify') assert.throws(() => r.verify(), check, what);
      else assert.throws(() => r.readLabels([0]), check, what);
      r.close();
    }
  });
});

test('ERROR PATH - the writer refuses labels that do not fit its attributes', () => {
  withDir((dir) => {
    const w = new DatasetWriter(join(dir, 'w.cgds'), 2, 2, 3, false, undefined, NAMES);
    assert.throws(() => w.append(new Uint8Array(12)), /got 0 labels for 1 images of 3 attributes; expected 3/);
    assert.throws(() => w.append(new Uint8Array(12), Int8Array.from([1, 0, -1])), /label 1 is 0; labels are \+1 or -1/);
    w.abort();
    assert.throws(() => new DatasetWriter(join(dir, 'x.cgds'), 2, 2, 3, false, undefined, ['Smiling', 'Smiling']), /"Smiling" is repeated/);
    assert.throws(() => new DatasetWriter(join(dir, 'y.cgds'), 2, 2, 3, false, undefined, ['has space']), /not a name/);
  });
});
