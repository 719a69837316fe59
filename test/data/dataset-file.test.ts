import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { DATASET_HEADER_SIZE, DatasetReader, DatasetWriter, decodeHeader, encodeHeader, legacyNote, type DatasetHeader } from '../../src/data/dataset-file.js';
import type { CelebaGanError } from '../../src/errors.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'cg-dsfile-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeSample(path: string, seed?: number): DatasetHeader {
  const w = new DatasetWriter(path, 3, 2, 3, seed !== undefined, seed);
  for (let i = 0; i < 5; i++) w.append(Uint8Array.from({ length: 18 }, (_, k) => (i * 18 + k) % 256));
  return w.finish();
}

function assertCode(code: string, pattern: RegExp) {
  return (err: Error & { code?: string }) => {
    assert.equal(err.name, 'CelebaGanError');
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  };
}

test('header round-trip: what the writer records is what the reader sees', () => {
  withDir((dir) => {
    const path = join(dir, 'a.cgds');
    const written = writeSample(path, 4242);
    const r = new DatasetReader(path);
    assert.deepEqual(r.header, written);
    assert.deepEqual(r.header, { version: 2, count: 5, height: 3, width: 2, channels: 3, synthetic: true, checksum: written.checksum, seed: 4242 });
    assert.match(r.header.checksum, /^[0-9a-f]{64}$/);
    r.verify();
    assert.deepEqual([...r.read([3]).subarray(0, 4)], [54, 55, 56, 57]);
    r.close();
    const plain = join(dir, 'b.cgds');
    writeSample(plain);
    const rb = new DatasetReader(plain);
    assert.equal(rb.header.synthetic, false);
    assert.equal('seed' in rb.header, false, 'real-image data sets carry no seed');
    rb.close();
    const h: DatasetHeader = { version: 1, count: 7, height: 28, width: 28, channels: 3, synthetic: false, checksum: 'ab'.repeat(32) };
    assert.deepEqual(decodeHeader(encodeHeader(h), 'x', DATASET_HEADER_SIZE + 7 * 28 * 28 * 3), h);
  });
});

test('nothing appears at the path until finish(); abort() leaves no file', () => {
  withDir((dir) => {
    const path = join(dir, 'c.cgds');
    const w = new DatasetWriter(path, 2, 2);
    w.append(new Uint8Array(12));
    assert.throws(() => readFileSync(path), /ENOENT/);
    w.abort();
    assert.throws(() => readFileSync(path), /ENOENT/);
  });
});

test('ERROR PATH - truncated, wrong magic, wrong version, flipped pixel, missing file', () => {
  withDir((dir) => {
    const path = join(dir, 'd.cgds');
    writeSample(path);
    const good = readFileSync(path);

    const truncated = join(dir, 'truncated.cgds');
    writeFileSync(truncated, good.subarray(0, good.length - 7));
    assert.throws(() => new DatasetReader(truncated), assertCode('E_DATASET_CORRUPT', /5 images of 3x2x3 need 154 bytes but the file has 147 \(truncated\?\)/));

    const short = join(dir, 'short.cgds');
    writeFileSync(short, good.subarray(0, 10));
    assert.throws(() => new DatasetReader(short), assertCode('E_DATASET_CORRUPT', /shorter than the 64-byte header/));

    const magic = join(dir, 'magic.cgds');
    const m = Buffer.from(good);
    m.write('PNG!', 0, 'latin1');
    writeFileSync(magic, m);
    assert.throws(() => new DatasetReader(magic), assertCode('E_DATASET_CORRUPT', /wrong magic bytes/));

    const version = join(dir, 'version.cgds');
    const v = Buffer.from(good);
    v.writeUInt16LE(9, 4);
    writeFileSync(version, v);
    assert.throws(() => new DatasetReader(version), assertCode('E_DATASET_VERSION', /has dataset format version 9; this celeba-gan reads versions 1, 2 and 3/));

    const flipped = join(dir, 'flipped.cgds');
    const f = Buffer.from(good);
    f[DATASET_HEADER_SIZE + 20]! ^= 0xff;
    writeFileSync(flipped, f);
    const r = new DatasetReader(flipped); // the header alone is fine
    assert.throws(() => r.verify(), assertCode('E_DATASET_CORRUPT', /checksum of the pixels and header fields .* does not match the header's/));
    r.close();

    assert.throws(() => new DatasetReader(join(dir, 'nope.cgds')), (err: Error & { code?: string; kind?: string }) => {
      assert.equal(err.code, 'E_DATASET_MISSING');
      assert.equal(err.kind, 'usage');
      assert.match(err.message, /nope\.cgds does not exist/);
      return true;
    });
  });
});

test('ERROR PATH - a flipped synthetic flag or seed byte fails verification (version 2 covers the header)', () => {
  withDir((dir) => {
    const path = join(dir, 'h.cgds');
    const w = new DatasetWriter(path, 3, 2, 3, true, 4242);
    w.append(new Uint8Array(5 * 18).map((_, i) => i));
    w.finish();
    const good = readFileSync(path);
    const ok = new DatasetReader(path);
    ok.verify();
    ok.close();
    for (const [what, edit] of [
      ['synthetic flag', (b: Buffer) => b.writeUInt16LE(b.readUInt16LE(18) ^ 1, 18)],
      ['seed', (b: Buffer) => b.writeUInt32LE(4243, 52)],
      ['reserved byte', (b: Buffer) => (b[60] = 1)],
    ] as const) {
      const bad = Buffer.from(good);
      edit(bad);
      const p = join(dir, `bad-${what.replace(/ /g, '-')}.cgds`);
      writeFileSync(p, bad);
      const r = new DatasetReader(p);
      assert.throws(() => r.verify(), assertCode('E_DATASET_CORRUPT', /checksum of the pixels and header fields/), what);
      r.close();
    }
  });
});

test('a version-1 file (pixel checksum only) is still read and verified, with a note', () => {
  withDir((dir) => {
    const pixels = new Uint8Array(2 * 12).map((_, i) => 3 * i);
    const header = encodeHeader({ version: 1, count: 2, height: 2, width: 2, channels: 3, synthetic: false, checksum: createHash('sha256').update(pixels).digest('hex') });
    const path = join(dir, 'v1.cgds');
    writeFileSync(path, Buffer.concat([header, pixels]));
    const r = new DatasetReader(path);
    r.verify();
    assert.equal(r.header.version, 1);
    assert.match(legacyNote(r.header) ?? '', /version 1: the checksum covers the pixels only/);
    r.close();
    const bad = Buffer.concat([header, pixels]);
    bad[DATASET_HEADER_SIZE]! ^= 1;
    writeFileSync(path, bad);
    const rb = new DatasetReader(path);
    assert.throws(() => rb.verify(), assertCode('E_DATASET_CORRUPT', /pixel checksum .* does not match/));
    rb.close();
  });
});

test('ERROR PATH - a header of height 0 is described one way, whatever the file size', () => {
  withDir((dir) => {
    for (const extra of [0, 30]) {
      const path = join(dir, `zero-${extra}.cgds`);
      const header = encodeHeader({ version: 2, count: 5, height: 0, width: 28, channels: 3, synthetic: false, checksum: '00'.repeat(32) });
      writeFileSync(path, Buffer.concat([header, new Uint8Array(extra)]));
      assert.throws(() => new DatasetReader(path), assertCode('E_DATASET_CORRUPT', /the header gives images of 0x28x3; images are at least 1x1 and have 3 channels$/));
    }
  });
});

test('ERROR PATH - a folder as the data set: E_IS_FOLDER naming it and the fix', () => {
  withDir((dir) => {
    assert.throws(() => new DatasetReader(dir), (err: CelebaGanError) => {
      assert.equal(err.code, 'E_IS_FOLDER');
      assert.equal(err.kind, 'usage');
      assert.ok(err.message.includes(dir), err.message);
      assert.match(err.hint ?? '', /not a folder; to use a folder of images, run `celeba-gan prepare --input <folder>` first/);
      return true;
    });
  });
});
