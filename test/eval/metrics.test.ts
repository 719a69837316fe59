import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { featureSet, fid, frechetDistance, gaussianStats, kid, type GaussianStats } from '../../src/eval/metrics.js';
import { Rng } from '../../src/util/rng.js';

/** n rows of N(mean, diag(std^2)). */
function gaussianRows(seed: number, n: number, mean: number[], std: number[]): Float32Array {
  const rng = new Rng(seed, 'test-gaussian');
  const d = mean.length;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = mean[j]! + std[j]! * rng.normal();
  return out;
}

function stats(mean: number[], cov: number[][]): GaussianStats {
  const d = mean.length;
  return { mean: Float64Array.from(mean), cov: Float64Array.from(cov.flat()), n: 1000, d };
}

describe('FID', () => {
  it('is 0 for a feature set against itself', () => {
    const d = 24;
    const data = gaussianRows(
      1,
      300,
      Array.from({ length: d }, (_, j) => j / 10),
      Array.from({ length: d }, (_, j) => 0.5 + j / 20),
    );
    const f = featureSet(data, 300, d);
    const r = fid(f, f);
    assert.ok(Math.abs(r.fid) < 1e-6, `FID(x, x) = ${r.fid}`);
  });

  it('is 0 for a singular covariance (n < d) against itself: the square root stays real', () => {
    const d = 40;
    const data = gaussianRows(2, 10, new Array(d).fill(0), new Array(d).fill(1));
    const f = featureSet(data, 10, d);
    const r = fid(f, f);
    assert.ok(Number.isFinite(r.fid) && r.fid < 1e-6, `FID(x, x) = ${r.fid}`);
  });

  it('matches the closed form for diagonal covariances: |mu1-mu2|^2 + sum(s1 + s2 - 2 sqrt(s1 s2))', () => {
    const mu1 = [0, 1, -2, 0.5];
    const mu2 = [1, 1, 0, -0.5];
    const s1 = [1, 4, 0.25, 2];
    const s2 = [9, 1, 0.25, 0.5];
    const diag = (s: number[]): number[][] => s.map((v, i) => s.map((_, j) => (i === j ? v : 0)));
    let expectedFid = 0;
    for (let j = 0; j < 4; j++) expectedFid += (mu1[j]! - mu2[j]!) ** 2 + s1[j]! + s2[j]! - 2 * Math.sqrt(s1[j]! * s2[j]!);
    const r = frechetDistance(stats(mu1, diag(s1)), stats(mu2, diag(s2)));
    assert.ok(Math.abs(r.fid - expectedFid) < 1e-9, `got ${r.fid}, closed form ${expectedFid}`);
  });

  it('matches the closed form for full (non-commuting) 2x2 covariances', () => {
    // For 2x2: tr sqrt(S1^1/2 S2 S1^1/2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
    const s1 = [
      [2, 0.8],
      [0.8, 1],
    ];
    const s2 = [
      [1, -0.3],
      [-0.3, 3],
    ];
    const trProd = s1[0]![0]! * s2[0]![0]! + s1[0]![1]! * s2[1]![0]! + s1[1]![0]! * s2[0]![1]! + s1[1]![1]! * s2[1]![1]!;
    const det = (m: number[][]): number => m[0]![0]! * m[1]![1]! - m[0]![1]! * m[1]![0]!;
    const cross = Math.sqrt(trProd + 2 * Math.sqrt(det(s1) * det(s2)));
    const expectedFid = (1 - 0) ** 2 + (2 - 0) ** 2 + (2 + 1) + (1 + 3) - 2 * cross;
    const r = frechetDistance(stats([0, 0], s1), stats([1, 2], s2));
    assert.ok(Math.abs(r.fid - expectedFid) < 1e-9, `got ${r.fid}, closed form ${expectedFid}`);
  });

  it('estimated from samples of two Gaussians, is near the closed form', () => {
    const mu2 = [0.5, -0.5, 0, 1];
    const s2 = [2, 0.5, 1, 1];
    const n = 20000;
    const a = featureSet(gaussianRows(3, n, [0, 0, 0, 0], [1, 1, 1, 1]), n, 4);
    const b = featureSet(gaussianRows(4, n, mu2, s2.map(Math.sqrt)), n, 4);
    let expectedFid = 0;
    for (let j = 0; j < 4; j++) expectedFid += mu2[j]! ** 2 + 1 + s2[j]! - 2 * Math.sqrt(s2[j]!);
    const r = fid(a, b);
    assert.ok(Math.abs(r.fid - expectedFid) < 0.05, `got ${r.fid}, closed form ${expectedFid}`);
  });

  it('gives the same number through the covariances (d x d) and through the samples (n x n)', () => {
    for (const [na, nb, d] of [
      [30, 20, 8],
      [12, 15, 40],
    ] as const) {
      const a = featureSet(gaussianRows(30 + d, na, new Array(d).fill(0), new Array(d).fill(1)), na, d);
      const b = featureSet(
        gaussianRows(
          31 + d,
          nb,
          Array.from({ length: d }, (_, j) => j / d),
          Array.from({ length: d }, (_, j) => 0.5 + j / d),
        ),
        nb,
        d,
      );
      const viaCov = fid(a, b, { method: 'covariance' });
      const viaSamples = fid(a, b, { method: 'samples' });
      assert.ok(Math.abs(viaCov.fid - viaSamples.fid) < 1e-6 * (1 + viaCov.fid), `n ${na}/${nb}, d ${d}: ${viaCov.fid} vs ${viaSamples.fid}`);
      assert.ok(Math.abs(viaCov.meanTerm - viaSamples.meanTerm) < 1e-9);
    }
  });

  it('gaussianStats gives the unbiased covariance (divides by n - 1)', () => {
    const s = gaussianStats(featureSet(Float32Array.from([1, 2, 3, 6]), 2, 2));
    assert.deepEqual([...s.mean], [2, 4]);
    assert.deepEqual([...s.cov], [2, 4, 4, 8]);
  });

  it('ERROR PATH - feature sets of different dimensions', () => {
    const a = featureSet(new Float32Array(8), 4, 2);
    const b = featureSet(new Float32Array(12), 4, 3);
    assert.throws(() => fid(a, b), { name: 'RangeError', message: /different dimensions \(2 and 3\)/ });
  });
});

describe('KID', () => {
  it('matches a hand-computed unbiased MMD^2 (d = 1, cubic kernel)', () => {
    // k(x, y) = (x y + 1)^3. XX: k(0,1) = 1; YY: k(2,3) = 343; XY: 1 + 1 + 27 + 64 = 93.
    // MMD^2 = 2*1/2 + 2*343/2 - 2*93/4 = 1 + 343 - 46.5
    const r = kid(featureSet(Float32Array.from([0, 1]), 2, 1), featureSet(Float32Array.from([2, 3]), 2, 1), { subsets: 3 });
    assert.equal(r.subsetSize, 2);
    assert.ok(Math.abs(r.kid - 297.5) < 1e-9, `got ${r.kid}`);
    assert.ok(r.std < 1e-9);
  });

  it('is near 0 for two samples of one distribution and grows with a known shift', () => {
    const d = 16;
    const n = 400;
    const zero = new Array(d).fill(0);
    const one = new Array(d).fill(1);
    const a = featureSet(gaussianRows(10, n, zero, one), n, d);
    const b = featureSet(gaussianRows(11, n, zero, one), n, d);
    const same = kid(a, b, { subsets: 20, subsetSize: 200 });
    let previous = same.kid;
    assert.ok(Math.abs(same.kid) < 0.02, `KID of one distribution = ${same.kid}`);
    for (const shift of [0.25, 0.5, 1]) {
      const c = featureSet(gaussianRows(12, n, new Array(d).fill(shift), one), n, d);
      const r = kid(a, c, { subsets: 20, subsetSize: 200 });
      assert.ok(r.kid > previous + (3 * r.std) / Math.sqrt(20), `shift ${shift}: KID ${r.kid} not above ${previous}`);
      previous = r.kid;
    }
  });

  it('gives the same result with and without the cached kernel matrices, and is seeded', () => {
    const d = 8;
    const a = featureSet(gaussianRows(20, 60, new Array(d).fill(0), new Array(d).fill(1)), 60, d);
    const b = featureSet(gaussianRows(21, 50, new Array(d).fill(0.3), new Array(d).fill(1)), 50, d);
    const cached = kid(a, b, { subsets: 5, subsetSize: 30, seed: 7 });
    const direct = kid(a, b, { subsets: 5, subsetSize: 30, seed: 7, maxCachedKernelEntries: 0 });
    assert.ok(Math.abs(cached.kid - direct.kid) < 1e-12);
    const other = kid(a, b, { subsets: 5, subsetSize: 30, seed: 8 });
    assert.notEqual(other.kid, cached.kid);
  });

  it('ERROR PATH - fewer than 2 rows in a set', () => {
    assert.throws(() => kid(featureSet(new Float32Array(2), 1, 2), featureSet(new Float32Array(4), 2, 2)), {
      name: 'RangeError',
      message: /at least 2 feature vectors/,
    });
  });
});
