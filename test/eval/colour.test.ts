import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderSyntheticFace } from '../../src/data/synthetic.js';
import { colourDistance, colourStatistics } from '../../src/eval/colour.js';
import { colourShift } from '../../src/eval/degrade.js';
import { swd, type ImageSet } from '../../src/eval/swd.js';
import { realHalves, realHalvesBaseline, yardstick } from '../../src/eval/yardstick.js';

function faces(seed: number, n: number, size: number, start = 0): ImageSet {
  const bytes = size * size * 3;
  const data = new Uint8Array(n * bytes);
  for (let i = 0; i < n; i++) renderSyntheticFace(seed, start + i, size, data, i * bytes);
  return { data, n, height: size, width: size };
}

/** Flat images of the given RGB colours. */
function flat(colours: [number, number, number][], size = 4): ImageSet {
  const data = new Uint8Array(colours.length * size * size * 3);
  colours.forEach((c, i) => {
    for (let p = 0; p < size * size; p++) data.set(c, (i * size * size + p) * 3);
  });
  return { data, n: colours.length, height: size, width: size };
}

describe('colour distance', () => {
  it('computes per-image mean and std per channel (pixel / 255)', () => {
    // One 1x2 image: pixels (0, 255, 51) and (255, 255, 153).
    const f = colourStatistics({ data: Uint8Array.from([0, 255, 51, 255, 255, 153]), n: 1, height: 1, width: 2 });
    const expected = [0.5, 1, 0.4, 0.5, 0, 0.2];
    expected.forEach((e, k) => assert.ok(Math.abs(f.data[k]! - e) < 1e-6, `feature ${k}: ${f.data[k]} vs ${e}`));
  });

  it('is the closed form for flat images shifted by d: 3 (d/255)^2 x1e3 in the mean term, no covariance term', () => {
    const a = flat([
      [10, 20, 30],
      [50, 60, 70],
      [90, 100, 40],
      [30, 30, 30],
    ]);
    const b = colourShift(a, [17, 17, 17]);
    const r = colourDistance(a, b);
    const expected = 3 * (17 / 255) ** 2 * 1e3;
    assert.ok(Math.abs(r.meanTerm - expected) < 1e-6, `${r.meanTerm} vs ${expected}`);
    assert.ok(Math.abs(r.covTerm) < 1e-6, `covariance term ${r.covTerm}`);
  });

  it('is 0 for a set against itself', () => {
    const a = faces(1, 40, 28);
    assert.ok(colourDistance(a, a).value < 1e-9);
  });

  it('catches the global colour shift that SWD is blind to, and grows with it', async () => {
    const n = 60;
    const r1 = faces(1, n, 28);
    const r2 = faces(1, n, 28, n);
    const base = colourDistance(r2, r1).value;
    const shifted = [0, 6, 12, 24].map((d) => colourDistance(colourShift(r2, [d, 0, -d]), r1).value);
    for (let k = 1; k < shifted.length; k++) assert.ok(shifted[k]! > shifted[k - 1]!, `shift ladder ${shifted.join(' < ')}`);
    assert.ok(shifted[3]! > 3 * base, `a shift of ±24 (${shifted[3]}) should stand far above the real-halves baseline ${base}`);
    // SWD of the most shifted set stays near its own baseline: it normalises colour away.
    const swdBase = (await swd(r2, r1)).mean;
    const swdShift = (await swd(colourShift(r2, [24, 0, -24]), r1)).mean;
    assert.ok(swdShift < 1.3 * swdBase, `SWD ${swdShift} vs baseline ${swdBase}`);
  });

  describe('BAD CALL', () => {
    it('ERROR PATH - a single image (no covariance)', () => {
      const a = faces(1, 1, 28);
      assert.throws(() => colourDistance(a, a), { name: 'RangeError', message: /at least 2 images per set \(received 1 and 1\)/ });
    });
  });
});

describe('real-halves baseline', () => {
  it('splits the real set into two disjoint halves of n', () => {
    const real = faces(3, 10, 28);
    const [a, b] = realHalves(real, 4);
    assert.equal(a.n, 4);
    assert.equal(b.n, 4);
    const bytes = 28 * 28 * 3;
    assert.deepEqual(a.data, real.data.subarray(0, 4 * bytes));
    assert.deepEqual(b.data, real.data.subarray(4 * bytes, 8 * bytes));
  });

  it('reads the generated set and the baseline against the same first half R1', async () => {
    const real = faces(3, 16, 28);
    const generated = faces(4, 8, 28);
    const r = await yardstick(generated, real);
    assert.equal(r.n, 8);
    const base = await realHalvesBaseline(real);
    assert.equal(r.swd.baseline.mean, base.swd.mean);
    assert.equal(r.colour.baseline.value, base.colour.value);
    // The first half of the real set as "generated" is the same images as R1: exactly 0.
    assert.equal((await yardstick(realHalves(real)[0], real)).swd.value.mean, 0);
  });

  describe('BAD CALL', () => {
    it('ERROR PATH - fewer than 2n real images', () => {
      assert.throws(() => realHalves(faces(3, 7, 28), 4), { name: 'RangeError', message: /two disjoint halves of 4 need 8 real images but the set has 7/ });
    });
  });
});
