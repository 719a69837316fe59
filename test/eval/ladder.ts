import { join } from 'node:path';
import sharp from 'sharp';
import { renderSyntheticFace } from '../../src/data/synthetic.js';
import { checkerboard, flatGrey, gaussianBlur, uniformNoise } from '../../src/eval/degrade.js';
import { FACE_API_PACKAGE, findPackage } from '../../src/eval/model-files.js';
import type { ImageSet } from '../../src/eval/swd.js';
import { Rng } from '../../src/util/rng.js';

/**
 * The validation ladder of issue 10, shared by test/eval/ladder.test.ts and bench/metrics.ts.
 * Every metric `eval` offers must order, at every size where it is offered:
 *   same distribution ≈ real-halves baseline < blur σ1 < blur σ2 < checkerboard ±24 <
 *   uniform noise < flat grey.
 *
 * Two real sets:
 * - synthetic faces (src/data/synthetic.ts): R1 = images 0..n-1 of seed 1, R2 = images n..2n-1,
 *   "same distribution" = images 0..n-1 of seed 2;
 * - photographs of real faces that ship inside @vladmandic/face-api 1.7.15 (MIT licence,
 *   demo/sample1.jpg .. sample6.jpg: six group photos, 22 faces), cropped square around each
 *   face (boxes below, set by hand), with a few jittered crops and mirror images per face.
 *   R1 and R2 hold different people (faces alternate between them); "same distribution" is R2
 *   with other jitters.
 * The degradations are applied to R2, so each rung differs from the baseline pair (R2 vs R1)
 * by the degradation alone.
 */

export interface Ladder {
  name: string;
  size: number;
  n: number;
  /** The reference half every rung is compared with. */
  r1: ImageSet;
  /** R2 vs R1 is the baseline. */
  r2: ImageSet;
  rungs: { name: string; set: ImageSet }[];
}

export const RUNG_ORDER = Object.freeze(['same distribution', 'blur σ1', 'blur σ2', 'checkerboard ±24', 'uniform noise', 'flat grey'] as const);

function rungs(r2: ImageSet, same: ImageSet): { name: string; set: ImageSet }[] {
  const { n, height, width } = r2;
  return [
    { name: RUNG_ORDER[0], set: same },
    { name: RUNG_ORDER[1], set: gaussianBlur(r2, 1) },
    { name: RUNG_ORDER[2], set: gaussianBlur(r2, 2) },
    { name: RUNG_ORDER[3], set: checkerboard(r2, 24) },
    { name: RUNG_ORDER[4], set: uniformNoise(n, height, width, 7) },
    { name: RUNG_ORDER[5], set: flatGrey(n, height, width) },
  ];
}

export function syntheticFaces(seed: number, start: number, n: number, size: number): ImageSet {
  const bytes = size * size * 3;
  const data = new Uint8Array(n * bytes);
  for (let i = 0; i < n; i++) renderSyntheticFace(seed, start + i, size, data, i * bytes);
  return { data, n, height: size, width: size };
}

export function syntheticLadder(size: number, n: number): Ladder {
  const r1 = syntheticFaces(1, 0, n, size);
  const r2 = syntheticFaces(1, n, n, size);
  return { name: `synthetic faces ${size}px`, size, n, r1, r2, rungs: rungs(r2, syntheticFaces(2, 0, n, size)) };
}

/**
 * Face centres and widths, in pixels of each photo scaled to 480 px wide (the photos are 1920
 * wide): [file, [centre x, centre y, face width][]].
 */
export const SAMPLE_FACES: readonly (readonly [string, readonly (readonly [number, number, number])[]])[] = Object.freeze([
  [
    'demo/sample1.jpg',
    [
      [122, 115, 40],
      [228, 135, 40],
      [392, 85, 45],
    ],
  ],
  [
    'demo/sample2.jpg',
    [
      [112, 80, 40],
      [240, 85, 40],
      [383, 85, 45],
    ],
  ],
  [
    'demo/sample3.jpg',
    [
      [175, 125, 45],
      [290, 85, 45],
      [400, 110, 45],
    ],
  ],
  [
    'demo/sample4.jpg',
    [
      [87, 80, 35],
      [183, 55, 40],
      [268, 80, 40],
      [338, 65, 35],
    ],
  ],
  [
    'demo/sample5.jpg',
    [
      [115, 255, 50],
      [172, 135, 40],
      [212, 65, 40],
      [295, 85, 40],
      [378, 135, 45],
    ],
  ],
  [
    'demo/sample6.jpg',
    [
      [92, 145, 45],
      [192, 115, 40],
      [307, 110, 40],
      [392, 105, 45],
    ],
  ],
] as const);

/** Crop side relative to the face width: the face with some hair and chin, as CelebA's crops. */
const CROP_SCALE = 2.2;

interface Crop {
  file: string;
  face: number;
  left: number;
  top: number;
  side: number;
  flip: boolean;
}

/** Jittered crops of each face: `variants` per face, from a seeded stream (shift ±8%, scale ±8%, mirror). */
function crops(variants: number, seed: number): Crop[][] {
  const out: Crop[][] = [];
  SAMPLE_FACES.forEach(([file, faces]) => {
    for (const [cx, cy, w] of faces) {
      const rng = new Rng(seed, 'sample-faces', out.length);
      const face: Crop[] = [];
      for (let v = 0; v < variants; v++) {
        const scale = 4 * (v === 0 ? 1 : rng.range(0.92, 1.08)); // 480 -> 1920 px
        const side = Math.round(CROP_SCALE * w * scale);
        const dx = v === 0 ? 0 : rng.range(-0.08, 0.08) * side;
        const dy = v === 0 ? 0 : rng.range(-0.08, 0.08) * side;
        face.push({
          file,
          face: out.length,
          left: Math.round(cx * 4 + dx - side / 2),
          top: Math.round((cy + 0.1 * w) * 4 + dy - side / 2),
          side,
          flip: v % 2 === 1,
        });
      }
      out.push(face);
    }
  });
  return out;
}

const decoded = new Map<string, Promise<Buffer>>();

async function crop(c: Crop, size: number, out: Uint8Array, offset: number): Promise<void> {
  const path = join(findPackage(FACE_API_PACKAGE).dir, c.file);
  // Decode each photo once (raw RGB), then crop + resize from the raw pixels.
  let raw = decoded.get(path);
  if (!raw) {
    raw = sharp(path).removeAlpha().raw().toBuffer();
    decoded.set(path, raw);
  }
  const meta = await sharp(path).metadata();
  let img = sharp(await raw, { raw: { width: meta.width, height: meta.height, channels: 3 } })
    .extract({
      left: Math.max(0, c.left),
      top: Math.max(0, c.top),
      width: Math.min(c.side, meta.width - Math.max(0, c.left)),
      height: Math.min(c.side, meta.height - Math.max(0, c.top)),
    })
    .resize(size, size, { fit: 'fill', kernel: 'lanczos3' });
  if (c.flip) img = img.flop();
  out.set(await img.raw().toBuffer(), offset);
}

async function render(list: Crop[], size: number): Promise<ImageSet> {
  const bytes = size * size * 3;
  const data = new Uint8Array(list.length * bytes);
  for (let i = 0; i < list.length; i++) await crop(list[i]!, size, data, i * bytes);
  return { data, n: list.length, height: size, width: size };
}

/** Faces 0, 2, 4, ... go to R1, faces 1, 3, 5, ... to R2 (11 people each), `variants` crops per face. */
export async function photoLadder(size: number, variants = 8): Promise<Ladder> {
  const all = crops(variants, 1);
  const other = crops(variants, 2);
  const pick = (faces: Crop[][], parity: number) => faces.filter((_, k) => k % 2 === parity).flat();
  const r1 = await render(pick(all, 0), size);
  const r2 = await render(pick(all, 1), size);
  // The same people as R2 under other jitters: the same distribution, other images.
  const same = await render(
    pick(other, 1).map((c, k) => ({ ...c, flip: k % 2 === 0 })),
    size,
  );
  return { name: `face-api sample photos ${size}px`, size, n: r1.n, r1, r2, rungs: rungs(r2, same) };
}
