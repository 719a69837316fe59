import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetReader } from '../../src/data/dataset-file.js';
import { SYNTHETIC_ATTRIBUTES, prepareSynthetic, renderSyntheticFace } from '../../src/data/synthetic.js';

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-synth-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'same seed -> same checksum; another seed -> another data set; header says synthetic and keeps the seed',
  withDir(async (dir) => {
    const a = await prepareSynthetic({ count: 600, out: join(dir, 'a.cgds'), size: 28, seed: 11 });
    const b = await prepareSynthetic({ count: 600, out: join(dir, 'b.cgds'), size: 28, seed: 11 });
    const c = await prepareSynthetic({ count: 600, out: join(dir, 'c.cgds'), size: 28, seed: 12 });
    assert.equal(b.header.checksum, a.header.checksum);
    assert.notEqual(c.header.checksum, a.header.checksum);
    const r = new DatasetReader(join(dir, 'a.cgds'));
    r.verify();
    const { attributes, ...fields } = r.header;
    assert.deepEqual({ ...fields, checksum: '' }, { version: 3, count: 600, height: 28, width: 28, channels: 3, synthetic: true, seed: 11, checksum: '' });
    assert.deepEqual(attributes?.names, [...SYNTHETIC_ATTRIBUTES], 'labelled with every attribute the drawing shows');
    // Image i depends on (seed, i) only: the first 600 of a bigger set are the same images
    // (crossing the 512-image chunk boundary).
    const bigger = await prepareSynthetic({ count: 700, out: join(dir, 'd.cgds'), size: 28, seed: 11 });
    assert.equal(bigger.header.count, 700);
    const rd = new DatasetReader(join(dir, 'd.cgds'));
    const idx = Uint32Array.from({ length: 600 }, (_, i) => i);
    assert.deepEqual(rd.read(idx), r.read(idx));
    r.close();
    rd.close();
  }),
);

test('synthetic faces vary: skin, background and layout differ between images', () => {
  const size = 28;
  const n = 64;
  const imgs = Array.from({ length: n }, (_, i) => renderSyntheticFace(3, i, size));
  const at = (img: Uint8Array, x: number, y: number) => [...img.subarray((y * size + x) * 3, (y * size + x) * 3 + 3)];
  const key = (v: number[]) => v.map((c) => c >> 4).join(',');
  // Cheek (skin), top-left corner (background): many distinct colours across 64 faces.
  assert.ok(new Set(imgs.map((im) => key(at(im, 8, 17)))).size > 20, 'varied skin at the cheek');
  assert.ok(new Set(imgs.map((im) => key(at(im, 1, 1)))).size > 30, 'varied backgrounds');
  // Not blank: every image has real contrast.
  for (const im of imgs) {
    let lo = 255;
    let hi = 0;
    for (const v of im) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    assert.ok(hi - lo > 80, 'contrast');
  }
  // The centre column (nose, mouth) differs from the background corner: a face is there.
  const same = imgs.filter((im) => key(at(im, 14, 14)) === key(at(im, 1, 1))).length;
  assert.ok(same < 4, `${same} images have a face centre the colour of the background`);
});

test('any size renders: 32 and 64 as well as 28', () => {
  for (const size of [32, 64]) {
    const img = renderSyntheticFace(0, 5, size);
    assert.equal(img.length, size * size * 3);
  }
});

test(
  'ERROR PATH - bad counts and seeds; an existing output',
  withDir(async (dir) => {
    await assert.rejects(prepareSynthetic({ count: 0, out: join(dir, 'x.cgds'), size: 28, seed: 1 }), /Expected integer between 1 and 10000000 for --synthetic but received 0/);
    await assert.rejects(prepareSynthetic({ count: 5, out: join(dir, 'x.cgds'), size: 28, seed: -1 }), /Expected integer between 0 and 4294967295 for --seed but received -1/);
    await prepareSynthetic({ count: 5, out: join(dir, 'x.cgds'), size: 28, seed: 1 });
    await assert.rejects(prepareSynthetic({ count: 5, out: join(dir, 'x.cgds'), size: 28, seed: 1 }), { name: 'UsageError', code: 'E_OUTPUT_EXISTS' });
  }),
);
