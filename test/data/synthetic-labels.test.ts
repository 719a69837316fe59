import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CELEBA_ATTRIBUTES } from '../../src/data/attributes.js';
import { SYNTHETIC_ATTRIBUTES, renderLabelledFace, renderSyntheticFace } from '../../src/data/synthetic.js';

/**
 * Synthetic labels must be what the picture shows. For each attribute, a feature of a fixed
 * image region (the faces move a little, so regions are loose), compared between the faces
 * labelled +1 and -1: the difference of the means must be many standard errors wide (Welch's
 * t). Labels unrelated to the pixels give |t| of about 1; the measured values are 12 and more.
 */

const S = 64;
const N = 600;
type Rgb = [number, number, number];

function box(img: Uint8Array, x0: number, y0: number, x1: number, y1: number): Rgb {
  const sum: Rgb = [0, 0, 0];
  let n = 0;
  for (let y = Math.floor(y0 * S); y < Math.ceil(y1 * S); y++) {
    for (let x = Math.floor(x0 * S); x < Math.ceil(x1 * S); x++) {
      for (let c = 0; c < 3; c++) sum[c]! += img[(y * S + x) * 3 + c]!;
      n++;
    }
  }
  return sum.map((v) => v / n) as Rgb;
}
const luma = (c: Rgb) => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
const dist = (a: Rgb, b: Rgb) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
const cheek = (img: Uint8Array) => box(img, 0.33, 0.58, 0.4, 0.64);
const hairTop = (img: Uint8Array) => box(img, 0.42, 0.17, 0.58, 0.23);

/** Per attribute: a feature that is larger when the picture shows the attribute. */
const FEATURES: Record<string, (img: Uint8Array) => number> = {
  Bangs: (img) => dist(box(img, 0.42, 0.29, 0.58, 0.33), cheek(img)), // hair colour over the forehead
  Black_Hair: (img) => -luma(hairTop(img)),
  Blond_Hair: (img) => (hairTop(img)[0] + hairTop(img)[1]) / 2 - hairTop(img)[2], // yellow
  Brown_Hair: (img) => -Math.abs(luma(hairTop(img)) - 75), // mid-dark
  Eyeglasses: (img) => {
    let dark = 0; // rims and bridge between the eyes
    for (let y = Math.floor(0.4 * S); y < Math.ceil(0.52 * S); y++) {
      for (let x = Math.floor(0.44 * S); x < Math.ceil(0.56 * S); x++) {
        const o = (y * S + x) * 3;
        if (luma([img[o]!, img[o + 1]!, img[o + 2]!]) < 60) dark++;
      }
    }
    return dark;
  },
  Gray_Hair: (img) => {
    const c = hairTop(img);
    return luma(c) - 3 * (Math.max(...c) - Math.min(...c)); // light and colourless
  },
  Mouth_Slightly_Open: (img) => -luma(box(img, 0.46, 0.69, 0.54, 0.73)), // the dark opening
  No_Beard: (img) => -dist(box(img, 0.44, 0.83, 0.56, 0.88), cheek(img)), // chin the colour of the cheek
  Pale_Skin: (img) => luma(cheek(img)),
  Smiling: (img) => luma(box(img, 0.44, 0.71, 0.56, 0.75)), // teeth
};

test('every synthetic attribute is a CelebA attribute, in CelebA\'s order, and has a picture test here', () => {
  const positions = SYNTHETIC_ATTRIBUTES.map((n) => CELEBA_ATTRIBUTES.indexOf(n));
  assert.ok(positions.every((p) => p >= 0), 'CelebA names');
  assert.deepEqual(positions, [...positions].sort((a, b) => a - b));
  assert.deepEqual(Object.keys(FEATURES).sort(), [...SYNTHETIC_ATTRIBUTES].sort());
});

test('labels are what the picture shows: each attribute moves its region by many standard errors', () => {
  const faces = Array.from({ length: N }, (_, i) => renderLabelledFace(5, i, S));
  for (const [a, name] of SYNTHETIC_ATTRIBUTES.entries()) {
    const on: number[] = [];
    const off: number[] = [];
    for (const f of faces) (f.labels[a] === 1 ? on : off).push(FEATURES[name]!(f.pixels));
    assert.ok(on.length >= 10 && off.length >= 10, `${name}: ${on.length} on, ${off.length} off in ${N}`);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = (xs: number[]) => xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1);
    const t = (mean(on) - mean(off)) / Math.sqrt(variance(on) / on.length + variance(off) / off.length);
    assert.ok(t > 6, `${name}: t = ${t.toFixed(1)} (on ${mean(on).toFixed(1)}, off ${mean(off).toFixed(1)})`);
  }
});

test('labelled drawing leaves the pixels as they were: same bytes as renderSyntheticFace; labels are deterministic', () => {
  const a = createHash('sha256');
  const b = createHash('sha256');
  for (let i = 0; i < 200; i++) {
    a.update(renderSyntheticFace(2, i, 28));
    const f = renderLabelledFace(2, i, 28);
    b.update(f.pixels);
    assert.deepEqual(renderLabelledFace(2, i, 28).labels, f.labels);
    assert.ok(f.labels.every((v) => v === 1 || v === -1));
  }
  assert.equal(b.digest('hex'), a.digest('hex'));
  // The pixels of seed 0 as they were before labels existed (images 0..99 at 28 x 28).
  const before = createHash('sha256');
  for (let i = 0; i < 100; i++) before.update(renderSyntheticFace(0, i, 28));
  assert.equal(before.digest('hex'), SEED0_28_FIRST100);
});

/** sha256 of renderSyntheticFace(0, 0..99, 28), measured on main before this change. */
const SEED0_28_FIRST100 = '7b008fcf2e31a07c8c8cb8d399a5e64f3c85609cb01861fbfe73bb71f0409c38';
