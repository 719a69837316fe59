import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSyntheticFace } from '../../src/data/synthetic.js';
import { Rng } from '../../src/util/rng.js';
import {
  Float32Sorter,
  laplacianPyramid,
  patchPositions,
  pyramidSizes,
  swd,
  swdAgainst,
  swdDirections,
  SWD_DEFAULTS,
  type ImageSet,
} from '../../src/eval/swd.js';
import { NUMPY, PYTHON, referenceSkip } from '../support/references.js';
import { assertWithin } from '../support/tensors.js';
import { ColumnSorter } from '../../src/eval/column-sort.js';
import { openSwdKernel, parseSwdKernel, SWD_KERNELS, type SwdKernel, type SwdKernelName } from '../../src/eval/swd-kernel.js';

// The NumPy port of ProGAN's SWD; where NumPy is missing, test/support/references.ts decides.
const skipReference = referenceSkip(NUMPY);
/** test/eval/swd-reference.py, found from here whether this runs from test/ (tsx) or dist/test/. */
function referenceScript(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'test', 'eval', 'swd-reference.py');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('test/eval/swd-reference.py not found above this test');
}
const REFERENCE = referenceScript();

function faces(seed: number, n: number, size: number): ImageSet {
  const bytes = size * size * 3;
  const data = new Uint8Array(n * bytes);
  for (let i = 0; i < n; i++) renderSyntheticFace(seed, i, size, data, i * bytes);
  return { data, n, height: size, width: size };
}

/** Box-blurred copy (a cheap, clearly different distribution). */
function boxBlur(set: ImageSet): ImageSet {
  const { n, height: h, width: w } = set;
  const out = new Uint8Array(set.data.length);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          let k = 0;
          for (let dy = -1; dy <= 1; dy++) {
            for (let dx = -1; dx <= 1; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              s += set.data[((i * h + yy) * w + xx) * 3 + c]!;
              k++;
            }
          }
          out[((i * h + y) * w + x) * 3 + c] = Math.round(s / k);
        }
      }
    }
  }
  return { ...set, data: out };
}

const tmp = mkdtempSync(join(tmpdir(), 'celeba-gan-swd-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The same two sets, the same positions and directions, through the NumPy port of ProGAN's code. */
function reference(a: ImageSet, b: ImageSet, name: string, seed = 0): number[] {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const o = SWD_DEFAULTS;
  const sizes = pyramidSizes(a.height, a.width);
  writeFileSync(
    join(dir, 'meta.json'),
    JSON.stringify({
      n: a.n,
      height: a.height,
      width: a.width,
      levels: sizes.length,
      patchesPerImage: o.patchesPerImage,
      patchSize: o.patchSize,
      repeats: o.repeats,
      directionsPerRepeat: o.directionsPerRepeat,
    }),
  );
  writeFileSync(join(dir, 'a.u8'), a.data);
  writeFileSync(join(dir, 'b.u8'), b.data);
  const dim = 3 * o.patchSize * o.patchSize;
  sizes.forEach(([h, w], l) => {
    writeFileSync(join(dir, `pos_${l}.i32`), patchPositions(seed, l, a.n, o.patchesPerImage, h, w, o.patchSize));
    for (let r = 0; r < o.repeats; r++) writeFileSync(join(dir, `dirs_${l}_${r}.f32`), swdDirections(seed, l, r, dim, o.directionsPerRepeat));
  });
  const r = spawnSync(PYTHON, [REFERENCE, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`reference failed: ${r.error?.message ?? r.stderr}`);
  return JSON.parse(r.stdout) as number[];
}

/** Both projection kernels, opened once for the file (the onnxruntime one must start here: it is a dependency). */
const kernels: Record<SwdKernelName, SwdKernel> = { onnxruntime: await openSwdKernel('onnxruntime'), js: await openSwdKernel('js') };
after(() => Promise.all(Object.values(kernels).map((k) => k.dispose())));

// Projections are float32 products summed in another order than NumPy's (MLAS with fused
// multiply-adds, or the JS loop in float64): a few float32 ulps per projection, about 1e-6 of an
// SWD; 1e-4 leaves room without hiding a wrong pyramid, patch or direction (those move it by %).
const RELATIVE_TOLERANCE = 1e-4;

describe('SWD (ProGAN, Karras et al. 2018)', () => {
  for (const [size, levels] of [
    [28, 2],
    [32, 2],
    [64, 3],
  ] as const) {
    for (const kernel of Object.values(kernels)) {
      it(
        `matches the NumPy port of ProGAN's sliced_wasserstein.py at ${size} px (${levels} pyramid level${levels > 1 ? 's' : ''}), projections on ${kernel.name}`,
        { skip: skipReference },
        async () => {
          const n = size === 64 ? 8 : 16;
          const a = faces(1, n, size);
          const pairs: [string, ImageSet][] = [
            ['other faces', faces(2, n, size)],
            ['blurred', boxBlur(a)],
          ];
          for (const [label, b] of pairs) {
            const ours = await swd(a, b, {}, { kernel });
            assert.equal(ours.kernel, kernel.name);
            const ref = reference(a, b, `${size}-${label.replace(' ', '-')}`);
            assert.equal(ours.levels.length, levels);
            assert.equal(ref.length, levels);
            ours.levels.forEach((l, i) => {
              const rel = Math.abs(l.value - ref[i]!) / ref[i]!;
              assertWithin(
                `SWD~NumPy ${size} px ${label} level ${i} on ${kernel.name} (relative)`,
                rel,
                RELATIVE_TOLERANCE,
                `${size} px, ${label}, level ${i}: ours ${l.value} vs reference ${ref[i]} (relative ${rel})`,
              );
            });
            assert.ok(ours.mean > 1, `${label}: SWD ${ours.mean} should be clearly above 0`);
          }
        },
      );
    }
  }

  it('gives the same numbers on onnxruntime and on the JS loop, and exactly 0 for a set against itself on each', async () => {
    const a = faces(13, 24, 28);
    const b = boxBlur(faces(14, 24, 28));
    const [onOrt, onJs] = [await swd(a, b, {}, { kernel: kernels.onnxruntime }), await swd(a, b, {}, { kernel: kernels.js })];
    assert.deepEqual([onOrt.kernel, onJs.kernel], ['onnxruntime', 'js']);
    onOrt.levels.forEach((l, i) => {
      const js = onJs.levels[i]!.value;
      assert.ok(Math.abs(l.value - js) < RELATIVE_TOLERANCE * js, `level ${i}: onnxruntime ${l.value} vs JS ${js}`);
    });
    for (const kernel of Object.values(kernels)) assert.equal((await swd(a, a, {}, { kernel })).mean, 0, kernel.name);
  });

  it('uses onnxruntime when no kernel is given (auto), and says so', async () => {
    const a = faces(15, 4, 28);
    assert.equal((await swd(a, faces(16, 4, 28))).kernel, 'onnxruntime');
    const auto = await openSwdKernel('auto');
    try {
      assert.equal(auto.name, 'onnxruntime');
      assert.match(auto.description, /onnxruntime/);
    } finally {
      await auto.dispose();
    }
  });

  it('is exactly 0 for a set against itself, and symmetric', async () => {
    const a = faces(3, 8, 32);
    const b = faces(4, 8, 32);
    assert.equal((await swd(a, a)).mean, 0);
    const ab = (await swd(a, b)).mean;
    const ba = (await swd(b, a)).mean;
    assert.ok(Math.abs(ab - ba) < 1e-9 * ab, `${ab} vs ${ba}`);
  });

  it('swdAgainst reads several sets against one reference with exactly the numbers of separate swd calls', async () => {
    const r = faces(10, 6, 32);
    const a = faces(11, 6, 32);
    const b = boxBlur(faces(12, 6, 32));
    const [ra, rb] = await swdAgainst(r, [a, b], { seed: 2 });
    assert.deepEqual(ra, await swd(a, r, { seed: 2 }));
    assert.deepEqual(rb, await swd(b, r, { seed: 2 }));
  });

  it('is reproducible: the same seed gives the same number, another seed a different one', async () => {
    const a = faces(5, 8, 28);
    const b = faces(6, 8, 28);
    const mean = async (seed: number): Promise<number> => (await swd(a, b, { seed })).mean;
    assert.equal(await mean(3), await mean(3));
    assert.notEqual(await mean(3), await mean(4));
  });

  it('ignores a global colour shift (per-channel normalisation), as the paper intends', async () => {
    const a = faces(7, 8, 28);
    const shifted = { ...a, data: a.data.map((v) => Math.min(255, v + 20)) };
    const other = faces(8, 8, 28);
    // Clipping at 255 changes a few pixels; the shift itself is normalised away.
    assert.ok((await swd(a, shifted)).mean < 0.25 * (await swd(a, other)).mean);
  });

  it("halves to the coarsest level nearest 16 px: ProGAN's `while res >= 16` at powers of two, 28 px over 14", () => {
    const progan = (s: number) => {
      const out: number[] = [];
      for (let res = s; res >= 16; res = Math.floor(res / 2)) out.push(res);
      return out;
    };
    for (const s of [16, 32, 64, 128, 256, 1024])
      assert.deepEqual(
        pyramidSizes(s, s).map(([h]) => h),
        progan(s),
        `${s} px`,
      );
    assert.deepEqual(pyramidSizes(28, 28), [
      [28, 28],
      [14, 14],
    ]);
    assert.deepEqual(
      pyramidSizes(24, 24).map(([h]) => h),
      [24, 12],
    );
    assert.deepEqual(
      pyramidSizes(22, 22).map(([h]) => h),
      [22],
    );
    assert.deepEqual(
      pyramidSizes(48, 48).map(([h]) => h),
      [48, 24, 12],
    );
    assert.deepEqual(pyramidSizes(28, 64), [
      [28, 64],
      [14, 32],
    ]);
    assert.deepEqual(pyramidSizes(11, 11), []);
  });

  it('keeps a 2-level Laplacian pyramid invertible: detail + upsampled residual = image', () => {
    const a = faces(9, 1, 32);
    const [detail, low] = laplacianPyramid(a.data, 32, 32, 2);
    assert.equal(detail!.length, 3 * 32 * 32);
    assert.equal(low!.length, 3 * 16 * 16);
    // Flat image: no detail at all, the residual is the colour.
    const flat = new Uint8Array(32 * 32 * 3).fill(77);
    const [d2, l2] = laplacianPyramid(flat, 32, 32, 2);
    assert.ok(d2!.every((v) => Math.abs(v) < 1e-4));
    assert.ok(l2!.every((v) => Math.abs(v - 77) < 1e-4));
  });

  it('sorts float32 values exactly as Float32Array.prototype.sort does (negatives, zeros, duplicates, odd lengths)', () => {
    const rng = new Rng(11, 'sort');
    const sorter = new Float32Sorter();
    for (const n of [1, 7, 1000, 4099]) {
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = i % 17 === 0 ? 0 : i % 13 === 0 ? v[i - 1]! : rng.normal() * 10 ** rng.int(6);
      assert.deepEqual(sorter.sort(v.slice()), v.slice().sort());
    }
  });

  it('sorts every column of a [m, count] array in worker threads, as Float32Array.prototype.sort does', async () => {
    const rng = new Rng(12, 'columns');
    const [m, count] = [5, 1001];
    const values = rng.fillNormal(new Float32Array(m * count));
    const sorter = new ColumnSorter(2);
    try {
      // A view into a larger buffer is copied; an array owning its buffer moves to the worker.
      const view = new Float32Array(m * count + 1);
      view.set(values, 1);
      const moved = values.slice();
      const sorted = await Promise.all([
        sorter.sort(view.subarray(1), m, count),
        sorter.sort(
          values.map((v) => -v),
          m,
          count,
        ),
        sorter.sort(moved, m, count),
      ]);
      assert.equal(view.length, m * count + 1, 'a view is not taken');
      assert.equal(moved.length, 0, 'an owned array moves to the worker');
      for (let j = 0; j < m; j++)
        assert.deepEqual(sorted[0].subarray(j * count, (j + 1) * count), values.slice(j * count, (j + 1) * count).sort(), `column ${j}`);
      assert.deepEqual(sorted[2], sorted[0]);
      assert.notDeepEqual(sorted[1], sorted[0]);
    } finally {
      await sorter.close();
    }
  });

  describe('BAD CALL', () => {
    const a = faces(1, 2, 28);
    it('ERROR PATH - sets of different n', async () => {
      await assert.rejects(() => swd(a, faces(1, 3, 28)), { name: 'RangeError', message: /same number of images \(received 2 and 3\)/ });
    });
    it('ERROR PATH - sets of different size', async () => {
      await assert.rejects(() => swd(a, faces(1, 2, 32)), { name: 'RangeError', message: /28x28 and 32x32/ });
    });
    it('ERROR PATH - images below 12 px (16 / sqrt 2)', async () => {
      const tiny = faces(1, 2, 11);
      await assert.rejects(() => swd(tiny, tiny), { name: 'RangeError', message: /smaller than the smallest pyramid level \(12 px\)/ });
    });
    it('ERROR PATH - an unknown kernel name', () => {
      assert.throws(() => parseSwdKernel('blas'), {
        name: 'UsageError',
        code: 'E_BAD_ARGUMENT',
        message: `Unsupported swd-kernel "blas" of type string. Should be one of: ${SWD_KERNELS.join(', ')}`,
      });
    });
    it('ERROR PATH - a buffer that does not hold n images', async () => {
      await assert.rejects(() => swd({ ...a, data: a.data.subarray(1) }, a), { name: 'RangeError', message: /need 4704 bytes but received 4703/ });
    });
  });
});
