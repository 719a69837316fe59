import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { Rng } from '../util/rng.js';

/**
 * Distances between two sets of feature vectors (rows of a [n, d] float32 matrix):
 *
 * - FID: the Fréchet distance between Gaussians fitted to each set,
 *     ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)
 *   The matrix square root goes through symmetric eigen-decompositions (ml-matrix), so it is
 *   real by construction: S1^1/2 S2 S1^1/2 is symmetric positive semi-definite, and the small
 *   negative eigenvalues rounding leaves are clamped to 0. (scipy's sqrtm of the non-symmetric
 *   S1 S2, which pytorch-fid uses, can return complex parts that have to be thrown away.)
 * - KID: Binkowski et al.'s unbiased MMD^2 estimator with the cubic polynomial kernel
 *   k(x, y) = (x.y / d + 1)^3, averaged over random subsets as torch-fidelity and clean-fid do
 *   (100 subsets of up to 1000 rows drawn without replacement from each set).
 *
 * Pure maths on plain arrays: no tfjs, no I/O. Both are biased by small n in different ways;
 * compare numbers only at the same n and the same feature extractor.
 */

export interface FeatureSet {
  /** Row-major [n, d]. */
  data: Float32Array;
  n: number;
  d: number;
}

export function featureSet(data: Float32Array, n: number, d: number): FeatureSet {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 0 || d < 1 || data.length !== n * d) {
    throw new RangeError(`feature data has ${data.length} values; [${n}, ${d}] needs ${n * d}`);
  }
  return { data, n, d };
}

function sameDim(a: FeatureSet, b: FeatureSet, what: string): void {
  if (a.d !== b.d) throw new RangeError(`${what}: feature sets have different dimensions (${a.d} and ${b.d}); were they made by the same extractor?`);
}

export interface GaussianStats {
  mean: Float64Array;
  /** Row-major [d, d], unbiased (divides by n - 1), as numpy.cov does. */
  cov: Float64Array;
  n: number;
  d: number;
}

/** Mean and unbiased covariance of the rows. */
export function gaussianStats(f: FeatureSet): GaussianStats {
  // `]!` in the hot loops: featureSet() checked data.length = n * d; i < n, j, a, b < d.
  const { n, d, data } = f;
  if (n < 2) throw new RangeError(`need at least 2 feature vectors for a covariance, got ${n}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let j = 0; j < d; j++) mean[j]! += data[row + j]!;
  }
  for (let j = 0; j < d; j++) mean[j]! /= n;
  // Centre once in float64, then accumulate the upper triangle of X^T X.
  const centred = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) centred[i * d + j] = data[i * d + j]! - mean[j]!;
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    row.set(centred.subarray(i * d, (i + 1) * d));
    for (let a = 0; a < d; a++) {
      const va = row[a]!;
      if (va === 0) continue;
      const base = a * d;
      for (let b = a; b < d; b++) cov[base + b]! += va * row[b]!;
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b]! / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { mean, cov, n, d };
}

function toMatrix(values: Float64Array, d: number): Matrix {
  // `]!`: values is a [d, d] covariance.
  const m = new Matrix(d, d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) m.set(i, j, values[i * d + j]!);
  return m;
}

/** Symmetrise (rounding makes products of symmetric matrices slightly asymmetric). */
function symmetrise(m: Matrix): Matrix {
  const d = m.rows;
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const v = (m.get(i, j) + m.get(j, i)) / 2;
      m.set(i, j, v);
      m.set(j, i, v);
    }
  }
  return m;
}

/** Square root of a symmetric positive semi-definite matrix: V diag(sqrt(max(l, 0))) V^T. */
function sqrtPsd(m: Matrix): Matrix {
  // `]!`: roots has one eigenvalue per column of v.
  const e = new EigenvalueDecomposition(symmetrise(m.clone()), { assumeSymmetric: true });
  const v = e.eigenvectorMatrix;
  const roots = e.realEigenvalues.map((l) => Math.sqrt(Math.max(l, 0)));
  const scaled = v.clone();
  for (let i = 0; i < v.rows; i++) for (let j = 0; j < v.columns; j++) scaled.set(i, j, v.get(i, j) * roots[j]!);
  return scaled.mmul(v.transpose());
}

/** tr((S1^1/2 S2 S1^1/2)^1/2): the sum of the square roots of that PSD matrix's eigenvalues. */
function traceSqrtProduct(s1: Matrix, s2: Matrix): number {
  const r1 = sqrtPsd(s1);
  const inner = symmetrise(r1.mmul(s2).mmul(r1));
  const e = new EigenvalueDecomposition(inner, { assumeSymmetric: true });
  let sum = 0;
  for (const l of e.realEigenvalues) sum += Math.sqrt(Math.max(l, 0));
  return sum;
}

export interface FidParts {
  fid: number;
  /** ||mu1 - mu2||^2 */
  meanTerm: number;
  /** tr(S1 + S2 - 2 sqrt(...)) */
  covTerm: number;
}

/** Fréchet distance between two Gaussians. */
export function frechetDistance(a: GaussianStats, b: GaussianStats): FidParts {
  // `]!`: both means hold d values and both covariances d * d (gaussianStats), checked equal here.
  if (a.d !== b.d) throw new RangeError(`FID: statistics have different dimensions (${a.d} and ${b.d})`);
  const d = a.d;
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (a.mean[j]! - b.mean[j]!) ** 2;
  let traces = 0;
  for (let j = 0; j < d; j++) traces += a.cov[j * d + j]! + b.cov[j * d + j]!;
  const cross = traceSqrtProduct(toMatrix(a.cov, d), toMatrix(b.cov, d));
  const covTerm = traces - 2 * cross;
  // A distance: rounding can leave a tiny negative value when both sets are the same.
  const fid = Math.max(0, meanTerm + covTerm);
  return { fid, meanTerm, covTerm };
}

export interface FidOptions {
  /**
   * `covariance`: d x d covariances and their square roots (cost ~ d^3).
   * `samples`: the same number through the n1 x n2 matrix of centred cross products (cost ~ n^3):
   *   with S1 = A'A/(n1-1), S2 = B'B/(n2-1) (A, B centred rows), S1^1/2 S2 S1^1/2 has the
   *   nonzero eigenvalues of (A B')(A B')' / ((n1-1)(n2-1)), so the trace of its square root is
   *   the sum of the singular values of A B' over sqrt((n1-1)(n2-1)). Exact, and real again.
   * `auto` (default) takes whichever matrix is smaller.
   */
  method?: 'auto' | 'covariance' | 'samples';
}

/** Centre the rows (float64), returning the centred matrix and the mean. */
function centre(f: FeatureSet): { rows: Float64Array; mean: Float64Array } {
  // `]!` in the hot loops: featureSet() checked data.length = n * d.
  const { n, d, data } = f;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += data[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const rows = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) rows[i * d + j] = data[i * d + j]! - mean[j]!;
  return { rows, mean };
}

function fidFromSamples(a: FeatureSet, b: FeatureSet): FidParts {
  // `]!` in the hot loops: means hold d values, p is [np, d], q is [nq, d] and m is [np, nq].
  const d = a.d;
  const ca = centre(a);
  const cb = centre(b);
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (ca.mean[j]! - cb.mean[j]!) ** 2;
  let traces = 0;
  for (const v of ca.rows) traces += (v * v) / (a.n - 1);
  for (const v of cb.rows) traces += (v * v) / (b.n - 1);
  // G = (A B')(A B')' or (A B')'(A B'), whichever is smaller; same nonzero eigenvalues.
  const [p, q] = a.n <= b.n ? [ca.rows, cb.rows] : [cb.rows, ca.rows];
  const np = Math.min(a.n, b.n);
  const nq = Math.max(a.n, b.n);
  const m = new Float64Array(np * nq);
  for (let i = 0; i < np; i++) {
    for (let j = 0; j < nq; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += p[i * d + k]! * q[j * d + k]!;
      m[i * nq + j] = dot;
    }
  }
  const g = new Matrix(np, np);
  for (let i = 0; i < np; i++) {
    for (let j = i; j < np; j++) {
      let dot = 0;
      for (let k = 0; k < nq; k++) dot += m[i * nq + k]! * m[j * nq + k]!;
      g.set(i, j, dot);
      g.set(j, i, dot);
    }
  }
  const e = new EigenvalueDecomposition(g, { assumeSymmetric: true });
  let singular = 0;
  for (const l of e.realEigenvalues) singular += Math.sqrt(Math.max(l, 0));
  const cross = singular / Math.sqrt((a.n - 1) * (b.n - 1));
  const covTerm = traces - 2 * cross;
  return { fid: Math.max(0, meanTerm + covTerm), meanTerm, covTerm };
}

export function fid(a: FeatureSet, b: FeatureSet, opts: FidOptions = {}): FidParts {
  sameDim(a, b, 'FID');
  if (a.n < 2 || b.n < 2) throw new RangeError(`FID needs at least 2 feature vectors in each set, got ${a.n} and ${b.n}`);
  const method = opts.method ?? 'auto';
  const useSamples = method === 'samples' || (method === 'auto' && Math.min(a.n, b.n) < a.d);
  return useSamples ? fidFromSamples(a, b) : frechetDistance(gaussianStats(a), gaussianStats(b));
}

export interface KidOptions {
  /** Number of random subsets averaged (default 100). */
  subsets?: number;
  /** Rows drawn from each set per subset (default min(1000, nA, nB)). */
  subsetSize?: number;
  /** Seed of the subset draws (default 0): the same inputs and seed give the same number. */
  seed?: number;
  /**
   * Kernel values are computed once for all pairs when the three kernel matrices hold at most this
   * many entries (default 3.6e7, about 144 MB as float32); above it, per subset.
   */
  maxCachedKernelEntries?: number;
}

export interface KidResult {
  /** Mean of the subsets' unbiased MMD^2 estimates (can be slightly negative). */
  kid: number;
  /** Standard deviation over subsets. */
  std: number;
  subsets: number;
  subsetSize: number;
}

/** Cubic polynomial kernel (x.y / d + 1)^3 of rows i of `a` and j of `b`. */
function kernel(a: FeatureSet, i: number, b: FeatureSet, j: number): number {
  // `]!` in the hot loop: i < a.n, j < b.n (kid's callers) and featureSet() checked data.length = n * d.
  const d = a.d;
  const x = a.data;
  const y = b.data;
  const xi = i * d;
  const yj = j * d;
  let dot = 0;
  for (let k = 0; k < d; k++) dot += x[xi + k]! * y[yj + k]!;
  const v = dot / d + 1;
  return v * v * v;
}

/** All kernel values k(a_i, b_j), row-major [a.n, b.n]; symmetric fill when a === b. */
function kernelMatrix(a: FeatureSet, b: FeatureSet): Float64Array {
  const out = new Float64Array(a.n * b.n);
  const sym = a === b;
  for (let i = 0; i < a.n; i++) {
    for (let j = sym ? i : 0; j < b.n; j++) {
      const v = kernel(a, i, b, j);
      out[i * b.n + j] = v;
      if (sym) out[j * b.n + i] = v;
    }
  }
  return out;
}

/** Draw k distinct indices from 0..n-1 (partial Fisher-Yates). */
function choose(rng: Rng, n: number, k: number, scratch: Uint32Array): Uint32Array {
  // `]!`: i <= j < n <= scratch.length.
  for (let i = 0; i < n; i++) scratch[i] = i;
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const t = scratch[i]!;
    scratch[i] = scratch[j]!;
    scratch[j] = t;
  }
  return scratch.slice(0, k);
}

/** Kernel Inception Distance (on any features): unbiased MMD^2, cubic kernel, subset average. */
export function kid(a: FeatureSet, b: FeatureSet, opts: KidOptions = {}): KidResult {
  // `]!` in the hot loops: p, q < m = the length of the subsets ia and ib, whose entries are rows
  // of a and b, so the cached [n, n] kernel matrices are indexed in range.
  sameDim(a, b, 'KID');
  if (a.n < 2 || b.n < 2) throw new RangeError(`KID needs at least 2 feature vectors in each set, got ${a.n} and ${b.n}`);
  const subsets = opts.subsets ?? 100;
  const m = Math.min(opts.subsetSize ?? 1000, a.n, b.n);
  if (m < 2) throw new RangeError(`KID subset size must be at least 2, got ${m}`);
  const rng = new Rng(opts.seed ?? 0, 'kid-subsets');
  const maxEntries = opts.maxCachedKernelEntries ?? 3.6e7;
  const cached = a.n * a.n + b.n * b.n + a.n * b.n <= maxEntries;
  const kaa = cached ? kernelMatrix(a, a) : null;
  const kbb = cached ? kernelMatrix(b, b) : null;
  const kab = cached ? kernelMatrix(a, b) : null;
  const ka = (i: number, j: number): number => (kaa ? kaa[i * a.n + j]! : kernel(a, i, a, j));
  const kb = (i: number, j: number): number => (kbb ? kbb[i * b.n + j]! : kernel(b, i, b, j));
  const kx = (i: number, j: number): number => (kab ? kab[i * b.n + j]! : kernel(a, i, b, j));

  const scratchA = new Uint32Array(a.n);
  const scratchB = new Uint32Array(b.n);
  const values: number[] = [];
  for (let s = 0; s < subsets; s++) {
    const ia = choose(rng, a.n, m, scratchA);
    const ib = choose(rng, b.n, m, scratchB);
    let sumAA = 0;
    let sumBB = 0;
    let sumAB = 0;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        sumAA += ka(ia[p]!, ia[q]!);
        sumBB += kb(ib[p]!, ib[q]!);
      }
      for (let q = 0; q < m; q++) sumAB += kx(ia[p]!, ib[q]!);
    }
    // Off-diagonal sums counted once above; the full off-diagonal sum is twice that.
    values.push((2 * sumAA) / (m * (m - 1)) + (2 * sumBB) / (m * (m - 1)) - (2 * sumAB) / (m * m));
  }
  const mean = values.reduce((x, y) => x + y, 0) / values.length;
  const variance = values.reduce((x, y) => x + (y - mean) ** 2, 0) / values.length;
  return { kid: mean, std: Math.sqrt(variance), subsets, subsetSize: m };
}
