import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { FACERES_DIM, FACERES_SIZE, faceresInput, loadFaceres } from '../../src/eval/faceres.js';
import { loadEvalRuntime, withBackend } from '../../src/eval/tfjs-runtime.js';
import type { FeatureExtractor } from '../../src/eval/extractor.js';
import { Rng } from '../../src/util/rng.js';

const demoDir = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo');
const FACE_CROPS: [number, number, number][] = [
  [308, 221, 450],
  [721, 293, 450],
  [1364, 145, 450],
];

async function faces(size: number): Promise<Uint8Array> {
  const out = new Uint8Array(FACE_CROPS.length * size * size * 3);
  for (const [i, [left, top, side]] of FACE_CROPS.entries()) {
    const { data } = await sharp(join(demoDir, 'sample1.jpg'))
      .extract({ left, top, width: side, height: side })
      .resize(size, size)
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    out.set(data, i * size * size * 3);
  }
  return out;
}

function row(f: Float32Array, i: number): Float32Array {
  return f.subarray(i * FACERES_DIM, (i + 1) * FACERES_DIM);
}
function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}
function distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}

describe('faceres features', () => {
  let fr: FeatureExtractor;
  before(async () => {
    fr = await loadFaceres({ batchSize: 2 });
  });
  after(() => fr.dispose());

  it('states its feature space, package version and runtime', () => {
    assert.equal(fr.info.features, 'faceres');
    assert.equal(fr.info.dim, 1024);
    assert.match(fr.info.description, /@vladmandic\/human 3\.3\.6/);
    assert.match(fr.info.runtime, /^tfjs /);
  });

  it('gives [n, 1024] finite features, the same for an image whatever its batch', async () => {
    const imgs = await faces(64);
    const all = await fr.extract(imgs, 3, 64, 64); // batches of 2 + 1
    assert.equal(all.length, 3 * FACERES_DIM);
    assert.ok(all.every(Number.isFinite));
    const last = await fr.extract(imgs.subarray(2 * 64 * 64 * 3), 1, 64, 64);
    assert.ok(distance(row(all, 2), last) < 1e-3 * (1 + Math.hypot(...last)));
  });

  it('puts faces closer to each other than to noise or background patches (cosine similarity)', async () => {
    const imgs = await faces(64);
    const rng = new Rng(3, 'noise');
    const noise = new Uint8Array(64 * 64 * 3).map(() => rng.int(256));
    const { data: wall } = await sharp(join(demoDir, 'sample1.jpg'))
      .extract({ left: 20, top: 20, width: 300, height: 300 })
      .resize(64, 64)
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const f = await fr.extract(new Uint8Array([...imgs, ...noise, ...wall]), 5, 64, 64);
    let faceFace = Infinity;
    let faceOther = -Infinity;
    for (let i = 0; i < 3; i++) {
      for (let j = i + 1; j < 3; j++) faceFace = Math.min(faceFace, cosine(row(f, i), row(f, j)));
      for (const k of [3, 4]) faceOther = Math.max(faceOther, cosine(row(f, i), row(f, k)));
    }
    assert.ok(faceFace > faceOther + 0.1, `least similar faces ${faceFace}, most face-like non-face ${faceOther}`);
  });

  it('resizes as human 3.3.6 faceres.enhance does (0-1 values, resizeBilinear with halfPixelCenters false, x255), not with half-pixel centres', async () => {
    const rt = await loadEvalRuntime('auto');
    const { tf } = rt;
    const pixels = Int32Array.from(await faces(28));
    const [ours, human, halfPixel] = await withBackend(rt, async () => {
      const x = tf.tensor4d(pixels, [3, 28, 28, 3], 'int32');
      const a = faceresInput(tf, x);
      // human src/face/faceres.ts: input normalised to 0..1, resizeBilinear(tensor, [224, 224], false), times 255
      const b = tf.mul(
        tf.image.resizeBilinear(tf.div(tf.cast(x, 'float32'), 255) as Parameters<typeof tf.image.resizeBilinear>[0], [FACERES_SIZE, FACERES_SIZE], false),
        255,
      );
      const c = tf.image.resizeBilinear(tf.cast(x, 'float32'), [FACERES_SIZE, FACERES_SIZE], false, true);
      const out = [await a.data(), await b.data(), await c.data()] as [Float32Array, Float32Array, Float32Array];
      tf.dispose([x, a, b, c]);
      return out;
    });
    let maxHuman = 0;
    let maxHalf = 0;
    assert.deepEqual([human.length, halfPixel.length], [ours.length, ours.length]);
    for (let i = 0; i < ours.length; i++) {
      maxHuman = Math.max(maxHuman, Math.abs(ours[i]! - human[i]!));
      maxHalf = Math.max(maxHalf, Math.abs(ours[i]! - halfPixel[i]!));
    }
    assert.ok(maxHuman < 1e-3, `largest difference from human's resize: ${maxHuman}`);
    assert.ok(maxHalf > 1, `half-pixel centres should differ visibly at 28 -> 224 px (largest difference ${maxHalf})`);
  });

  it('ERROR PATH - image bytes that do not match n x h x w x 3', async () => {
    await assert.rejects(fr.extract(new Uint8Array(10), 1, 2, 2), { name: 'RangeError', message: /10 bytes; 1 RGB images of 2x2 need 12/ });
  });
});
