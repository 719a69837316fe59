import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { checkDetectorParams, loadTinyFaceDetector, type FaceDetector } from '../../src/eval/face-detector.js';
import { Rng } from '../../src/util/rng.js';

// Real photos shipped with @vladmandic/face-api (demo/sample1.jpg: three people, 1920x1280).
const demoDir = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo');
// Square crops around two faces of sample1.jpg (left, top, side), chosen by eye, with the margin
// CelebA's aligned crops have.
const FACE_CROPS: [number, number, number][] = [
  [308, 221, 450],
  [721, 293, 450],
];

async function rgb(file: string, size: number, crop?: [number, number, number]): Promise<Uint8Array> {
  let img = sharp(join(demoDir, file));
  if (crop) img = img.extract({ left: crop[0], top: crop[1], width: crop[2], height: crop[2] });
  const { data } = await img.resize(size, size, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

describe('tiny face detector', () => {
  let det: FaceDetector;
  before(async () => {
    det = await loadTinyFaceDetector();
  });
  after(() => det.dispose());

  it('finds faces in whole real photos (416 px input, as face-api runs it)', async () => {
    const full = await loadTinyFaceDetector({ inputSize: 416 });
    try {
      const photos = [await rgb('sample1.jpg', 416), await rgb('sample2.jpg', 416)];
      const r = await full.detect(new Uint8Array([...photos[0]!, ...photos[1]!]), 2, 416, 416);
      assert.equal(r.rate, 1, `scores ${[...r.scores]}`);
    } finally {
      full.dispose();
    }
  });

  it('finds the face in 64x64 face crops of a real photo, upscaled to 128', async () => {
    const crops = await Promise.all(FACE_CROPS.map((c) => rgb('sample1.jpg', 64, c)));
    const batch = new Uint8Array(crops.length * 64 * 64 * 3);
    crops.forEach((c, i) => batch.set(c, i * c.length));
    const r = await det.detect(batch, crops.length, 64, 64);
    assert.equal(r.rate, 1, `scores ${[...r.scores]}`);
    assert.equal(r.threshold, 0.5);
  });

  it('finds no face in noise or a flat grey image', async () => {
    const rng = new Rng(5, 'noise');
    const n = 6;
    const batch = new Uint8Array(n * 64 * 64 * 3);
    for (let i = 0; i < 5 * 64 * 64 * 3; i++) batch[i] = rng.int(256);
    batch.fill(128, 5 * 64 * 64 * 3);
    const r = await det.detect(batch, n, 64, 64);
    assert.equal(r.rate, 0, `scores ${[...r.scores]}`);
    for (const s of r.scores) assert.ok(s < 0.2, `noise scored ${s}`);
  });

  it('gives the same score to an image whatever batch it is in', async () => {
    const face = await rgb('sample1.jpg', 64, FACE_CROPS[0]);
    const alone = await det.scores(face, 1, 64, 64);
    const pair = await det.scores(new Uint8Array([...new Uint8Array(face.length).fill(90), ...face]), 2, 64, 64);
    assert.ok(Math.abs(alone[0]! - pair[1]!) < 1e-5);
  });

  describe('BAD CALL', () => {
    it('ERROR PATH - image bytes that do not match n x h x w x 3', async () => {
      await assert.rejects(det.scores(new Uint8Array(100), 1, 8, 8), { name: 'RangeError', message: /100 bytes; 1 RGB images of 8x8 need 192/ });
    });
    it('ERROR PATH - input size not a multiple of 32', async () => {
      await assert.rejects(loadTinyFaceDetector({ inputSize: 100 }), { name: 'RangeError', message: /multiple of 32, got 100/ });
    });
  });
});

describe('ERROR PATH - face-api weights', () => {
  it('a manifest that lacks a tensor the detector reads fails with E_EXTRACTOR_CORRUPT naming it', () => {
    const names = [
      'conv0/filters',
      'conv0/bias',
      ...['conv1', 'conv2', 'conv3', 'conv4', 'conv5'].flatMap((c) => [`${c}/depthwise_filter`, `${c}/pointwise_filter`, `${c}/bias`]),
      'conv8/filters',
      'conv8/bias',
    ];
    const all = Object.fromEntries(names.map((n) => [n, {}]));
    assert.doesNotThrow(() => checkDetectorParams(all, 'face-api/manifest.json'));
    const { 'conv8/bias': _gone, ...lacking } = all;
    assert.throws(
      () => checkDetectorParams(lacking, 'face-api/manifest.json'),
      (e: Error & { code?: string }) =>
        e.code === 'E_EXTRACTOR_CORRUPT' && e.message === 'face-api/manifest.json lacks the tensors conv8/bias that the tiny face detector needs',
    );
  });
});
