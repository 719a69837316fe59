import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { UsageError, assertInteger, fileError } from '../errors.js';
import { Rng } from '../util/rng.js';
import { itemAt } from '../util/at.js';
import { ensureFolder, fsyncDir, tempPathFor, writeAllSync } from '../util/atomic.js';
import { ATTRIBUTE_FILE_NAME, formatAttributeFile } from './attributes.js';
import { DatasetWriter, type DatasetHeader } from './dataset-file.js';
import { abortedError, prepareOutput } from './prepare.js';

/**
 * The built-in synthetic data set: procedural, face-like images (NOT photographs of anyone),
 * so a newcomer can train and see results with no download, and tests have data to train on.
 *
 * Each image is drawn in plain JavaScript from its own stream, `new Rng(seed, 'synthetic', i)`:
 * image i depends only on (seed, i, size), so the data set is identical whatever the chunking
 * and on every platform (no font or rasteriser versions involved, unlike SVG through librsvg).
 * Shapes are filled on a supersampled grid (about 112 samples across) and box-filtered down,
 * which anti-aliases edges; a 28x28 image costs a fraction of a millisecond.
 *
 * Layout follows CelebA's aligned 108x108 crops: the face fills most of the frame, eyes at about
 * 42% of the height, mouth at about 72%, hair and background at the edges.
 */

type Rgb = readonly [number, number, number];

const SKIN: readonly Rgb[] = [
  [255, 224, 196], [241, 194, 160], [224, 172, 130], [198, 134, 96], [161, 102, 70], [120, 74, 50], [88, 54, 38],
];
const HAIR: readonly Rgb[] = [
  [20, 16, 14], [45, 30, 22], [80, 52, 32], [120, 84, 50], [190, 150, 90], [226, 196, 130], [150, 60, 30], [170, 170, 170],
];
const IRIS: readonly Rgb[] = [[70, 44, 26], [40, 28, 20], [60, 100, 150], [70, 110, 70], [110, 90, 60]];

/**
 * The CelebA attributes a synthetic face carries, in CelebA's order: each one is a choice the
 * drawing makes and shows (see `attributesOf`). CelebA's other attributes (Male, Young,
 * Wearing_Hat, ...) have no counterpart in the drawing, so they are not claimed.
 */
export const SYNTHETIC_ATTRIBUTES: readonly string[] = Object.freeze([
  'Bangs', 'Black_Hair', 'Blond_Hair', 'Brown_Hair', 'Eyeglasses', 'Gray_Hair', 'Mouth_Slightly_Open', 'No_Beard', 'Pale_Skin', 'Smiling',
]);

/** CelebA's name for each HAIR colour (null: red, which CelebA has no attribute for). */
const HAIR_NAMES: readonly (string | null)[] = ['Black_Hair', 'Black_Hair', 'Brown_Hair', 'Brown_Hair', 'Blond_Hair', 'Blond_Hair', null, 'Gray_Hair'];
/**
 * Skin lighter than this (Rec. 601 luma, 0..255) is Pale_Skin: the lightest quarter of the way
 * between the two lightest SKIN tones (luma 230 and 204) and above.
 */
const PALE_LUMA = 223;

function luma(c: Rgb): number {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}

/**
 * Where "the middle of the forehead" is, in face half-heights above the face centre: halfway
 * between the brows (about 0.3) and the hairline (about 0.9). A fringe that reaches it is Bangs;
 * one that stops above it reads as a hairline. Short and long styles draw fringes ending between
 * 0.76 and 0.53, so some of them are Bangs; a side part always reaches it; cropped hair never
 * (about 31% of faces in all, measured over 4000).
 */
const FOREHEAD_MIDDLE = 0.6;

/** Whether the point (x, y) lies inside `e` (its clips included); all in one frame. */
function covers(e: EllipseShape, x: number, y: number): boolean {
  const c = Math.cos(e.angle ?? 0);
  const s = Math.sin(e.angle ?? 0);
  const dx = x - e.cx;
  const dy = y - e.cy;
  const nx = (dx * c + dy * s) / e.rx;
  const ny = (-dx * s + dy * c) / e.ry;
  return nx * nx + ny * ny <= 1 && ny >= (e.yMin ?? -1) && ny <= (e.yMax ?? 1);
}

/** The HAIR palette colour nearest to `c` (the drawn hair blends two). */
function nearestHair(c: Rgb): number {
  let best = 0;
  let bestD = Infinity;
  HAIR.forEach((h, i) => {
    const d = (h[0] - c[0]) ** 2 + (h[1] - c[1]) ** 2 + (h[2] - c[2]) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  });
  return best;
}

/** A face's labels, +1/-1 per SYNTHETIC_ATTRIBUTES entry, from what was drawn. */
function attributesOf(t: FaceTraits): Int8Array {
  const hairName = HAIR_NAMES[nearestHair(t.hair)];
  const has: Record<string, boolean> = {
    Bangs: t.bangs,
    Black_Hair: hairName === 'Black_Hair',
    Blond_Hair: hairName === 'Blond_Hair',
    Brown_Hair: hairName === 'Brown_Hair',
    Eyeglasses: t.glasses,
    Gray_Hair: hairName === 'Gray_Hair',
    Mouth_Slightly_Open: t.mouth === 2,
    No_Beard: !t.beard,
    Pale_Skin: luma(t.skin) > PALE_LUMA,
    Smiling: t.mouth === 1,
  };
  return Int8Array.from(SYNTHETIC_ATTRIBUTES, (name) => (has[name] ? 1 : -1));
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function scale(c: Rgb, k: number): Rgb {
  return [Math.min(255, c[0] * k), Math.min(255, c[1] * k), Math.min(255, c[2] * k)];
}

/** HSV (h in [0,1)) to RGB 0..255. */
function hsv(h: number, s: number, v: number): Rgb {
  const i = Math.floor(h * 6) % 6;
  const f = h * 6 - Math.floor(h * 6);
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const sector: Rgb = i === 0 ? [v, t, p] : i === 1 ? [q, v, p] : i === 2 ? [p, v, t] : i === 3 ? [p, q, v] : i === 4 ? [t, p, v] : [v, p, q];
  return [sector[0] * 255, sector[1] * 255, sector[2] * 255];
}

interface EllipseShape {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
  /** Rotation in radians. */
  angle?: number;
  /** Keep only the part with local normalised y in [yMin, yMax] (-1 top .. 1 bottom). */
  yMin?: number;
  yMax?: number;
}

/** A supersampled RGB canvas in unit coordinates (0,0 top left, 1,1 bottom right). */
class Canvas {
  readonly px: Float32Array;

  constructor(readonly side: number) {
    this.px = new Float32Array(side * side * 3);
  }

  verticalGradient(top: Rgb, bottom: Rgb): void {
    const n = this.side;
    for (let y = 0; y < n; y++) {
      const c = mix(top, bottom, (y + 0.5) / n);
      for (let x = 0; x < n; x++) {
        const o = (y * n + x) * 3;
        this.px[o] = c[0];
        this.px[o + 1] = c[1];
        this.px[o + 2] = c[2];
      }
    }
  }

  /** Blend `color` into every sample inside `inside`, scanning only the box [x0,x1] x [y0,y1]. */
  fill(x0: number, y0: number, x1: number, y1: number, inside: (x: number, y: number) => boolean, color: Rgb, alpha = 1): void {
    const n = this.side;
    const i0 = Math.max(0, Math.floor(x0 * n));
    const i1 = Math.min(n - 1, Math.ceil(x1 * n));
    const j0 = Math.max(0, Math.floor(y0 * n));
    const j1 = Math.min(n - 1, Math.ceil(y1 * n));
    const [r, g, b] = color;
    // `]!` in the pixel loop: i and j are clamped to 0..n-1 above, and px holds n * n * 3.
    for (let j = j0; j <= j1; j++) {
      const y = (j + 0.5) / n;
      for (let i = i0; i <= i1; i++) {
        if (!inside((i + 0.5) / n, y)) continue;
        const o = (j * n + i) * 3;
        const px = this.px;
        px[o] = px[o]! + (r - px[o]!) * alpha;
        px[o + 1] = px[o + 1]! + (g - px[o + 1]!) * alpha;
        px[o + 2] = px[o + 2]! + (b - px[o + 2]!) * alpha;
      }
    }
  }

  /** Blend `color` into samples i0..i1 of row j. */
  private span(j: number, i0: number, i1: number, color: Rgb, alpha: number): void {
    const px = this.px;
    const [r, g, b] = color;
    // `]!` in the pixel loop: ellipse() and ring() clamp 0 <= i0 <= i1 < side and 0 <= j < side.
    for (let o = (j * this.side + i0) * 3, end = (j * this.side + i1) * 3; o <= end; o += 3) {
      px[o] = px[o]! + (r - px[o]!) * alpha;
      px[o + 1] = px[o + 1]! + (g - px[o + 1]!) * alpha;
      px[o + 2] = px[o + 2]! + (b - px[o + 2]!) * alpha;
    }
  }

  /**
   * Fill an ellipse row by row: each row's inside is one interval, found by solving the
   * ellipse's quadratic, so the cost is the filled area, not a per-sample test of a bounding box.
   */
  ellipse(e: EllipseShape, color: Rgb, alpha = 1): void {
    const n = this.side;
    const r = Math.max(e.rx, e.ry);
    const j0 = Math.max(0, Math.floor((e.cy - r) * n));
    const j1 = Math.min(n - 1, Math.ceil((e.cy + r) * n));
    for (let j = j0; j <= j1; j++) {
      const x = ellipseRow(e, (j + 0.5) / n);
      if (!x) continue;
      const i0 = Math.max(0, Math.ceil(x[0] * n - 0.5));
      const i1 = Math.min(n - 1, Math.floor(x[1] * n - 0.5));
      if (i0 <= i1) this.span(j, i0, i1, color, alpha);
    }
  }

  /** Ellipse outline of thickness `t` (glasses). */
  ring(e: EllipseShape, t: number, color: Rgb): void {
    const outer = { ...e, rx: e.rx + t / 2, ry: e.ry + t / 2 };
    const inner = { ...e, rx: e.rx - t / 2, ry: e.ry - t / 2 };
    const n = this.side;
    const r = Math.max(outer.rx, outer.ry);
    const j0 = Math.max(0, Math.floor((e.cy - r) * n));
    const j1 = Math.min(n - 1, Math.ceil((e.cy + r) * n));
    for (let j = j0; j <= j1; j++) {
      const y = (j + 0.5) / n;
      const o = ellipseRow(outer, y);
      if (!o) continue;
      const h = ellipseRow(inner, y);
      const parts: [number, number][] = h ? [[o[0], h[0]], [h[1], o[1]]] : [o];
      for (const [a, b] of parts) {
        const i0 = Math.max(0, Math.ceil(a * n - 0.5));
        const i1 = Math.min(n - 1, Math.floor(b * n - 0.5));
        if (i0 <= i1) this.span(j, i0, i1, color, 1);
      }
    }
  }

  /** A thick line with round ends (brows, neck, glasses bridge). */
  capsule(ax: number, ay: number, bx: number, by: number, radius: number, color: Rgb, alpha = 1): void {
    const dx = bx - ax;
    const dy = by - ay;
    const len2 = dx * dx + dy * dy || 1e-12;
    const r2 = radius * radius;
    const inside = (x: number, y: number) => {
      const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
      const ex = x - ax - t * dx;
      const ey = y - ay - t * dy;
      return ex * ex + ey * ey <= r2;
    };
    this.fill(Math.min(ax, bx) - radius, Math.min(ay, by) - radius, Math.max(ax, bx) + radius, Math.max(ay, by) + radius, inside, color, alpha);
  }

  /** Box-filter down to `size` x `size` uint8 HWC into `out` at `offset`. */
  downsample(size: number, out: Uint8Array, offset: number): void {
    const s = this.side / size;
    const norm = 1 / (s * s);
    const n = this.side;
    // `]!` in the pixel loop: side is size * supersample(size), so j, i < (size - 1 + 1) * s = side.
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let j = y * s; j < (y + 1) * s; j++) {
          for (let i = x * s; i < (x + 1) * s; i++) {
            const o = (j * n + i) * 3;
            r += this.px[o]!;
            g += this.px[o + 1]!;
            b += this.px[o + 2]!;
          }
        }
        const d = offset + (y * size + x) * 3;
        out[d] = Math.round(Math.min(255, Math.max(0, r * norm)));
        out[d + 1] = Math.round(Math.min(255, Math.max(0, g * norm)));
        out[d + 2] = Math.round(Math.min(255, Math.max(0, b * norm)));
      }
    }
  }
}

/** The x interval where row y crosses the ellipse (clip included), or null. */
function ellipseRow(e: EllipseShape, y: number): [number, number] | null {
  const c = Math.cos(e.angle ?? 0);
  const s = Math.sin(e.angle ?? 0);
  const dy = y - e.cy;
  const irx2 = 1 / (e.rx * e.rx);
  const iry2 = 1 / (e.ry * e.ry);
  // nx^2 + ny^2 <= 1 with nx = (dx c + dy s) / rx, ny = (-dx s + dy c) / ry, as A dx^2 + B dx + C <= 0.
  const A = c * c * irx2 + s * s * iry2;
  const B = 2 * dy * c * s * (irx2 - iry2);
  const C = dy * dy * (s * s * irx2 + c * c * iry2) - 1;
  const disc = B * B - 4 * A * C;
  if (disc < 0) return null;
  const root = Math.sqrt(disc);
  let lo = (-B - root) / (2 * A);
  let hi = (-B + root) / (2 * A);
  // Clips on the local y: ny = (-dx s + dy c) / ry, linear in dx.
  for (const [bound, keepAbove] of [[e.yMin, true], [e.yMax, false]] as const) {
    if (bound === undefined) continue;
    // keepAbove: -dx s + dy c >= bound ry, i.e. dx s <= dy c - bound ry (flip for yMax).
    const k = dy * c - bound * e.ry;
    if (Math.abs(s) < 1e-12) {
      if (keepAbove ? k < 0 : k > 0) return null;
    } else if ((s > 0) === keepAbove) {
      hi = Math.min(hi, k / s);
    } else {
      lo = Math.max(lo, k / s);
    }
  }
  return lo <= hi ? [e.cx + lo, e.cx + hi] : null;
}

/** Supersampling factor: about 112 samples across whatever the output size. */
function supersample(size: number): number {
  return Math.max(1, Math.round(112 / size));
}

/**
 * Draw synthetic image `index` of the data set with `seed` as `size` x `size` uint8 HWC RGB into
 * `out` at byte `offset`.
 */
export function renderSyntheticFace(seed: number, index: number, size: number, out: Uint8Array = new Uint8Array(size * size * 3), offset = 0): Uint8Array {
  drawFace(seed, index, size, out, offset);
  return out;
}

/**
 * Draw image `index` as `renderSyntheticFace` does, and write its labels (+1/-1, one per
 * `SYNTHETIC_ATTRIBUTES` entry) into `labels` at `labelOffset`.
 */
export function renderLabelledFace(
  seed: number,
  index: number,
  size: number,
  out: Uint8Array = new Uint8Array(size * size * 3),
  offset = 0,
  labels: Int8Array = new Int8Array(SYNTHETIC_ATTRIBUTES.length),
  labelOffset = 0,
): { pixels: Uint8Array; labels: Int8Array } {
  labels.set(attributesOf(drawFace(seed, index, size, out, offset)), labelOffset);
  return { pixels: out, labels };
}

/** The drawing's choices that labels are read from; the rest (pose, colours, sizes) stay unlabelled. */
export interface FaceTraits {
  /** The hair colour as drawn (a blend of two palette colours). */
  hair: Rgb;
  /** Hair over the middle of the forehead (a low fringe, or a side part swept across). */
  bangs: boolean;
  glasses: boolean;
  beard: boolean;
  /** 0 closed mouth, 1 smile showing teeth, 2 open mouth. */
  mouth: number;
  skin: Rgb;
}

function drawFace(seed: number, index: number, size: number, out: Uint8Array, offset: number): FaceTraits {
  const rng = new Rng(seed, 'synthetic', index);
  const u = (lo: number, hi: number) => rng.range(lo, hi);
  const pick = <T>(xs: readonly T[]): T => itemAt(xs, rng.int(xs.length), 'choice');
  const canvas = new Canvas(size * supersample(size));

  // Background: a soft vertical gradient in a random hue.
  const bgHue = rng.uniform();
  canvas.verticalGradient(hsv(bgHue, u(0.05, 0.5), u(0.45, 0.95)), hsv((bgHue + u(-0.08, 0.08) + 1) % 1, u(0.05, 0.5), u(0.25, 0.8)));

  // Pose and proportions.
  const tilt = u(-0.18, 0.18);
  const cx = 0.5 + u(-0.05, 0.05);
  const cy = 0.53 + u(-0.03, 0.03);
  const faceRx = u(0.25, 0.33);
  const faceRy = u(0.34, 0.42);
  const jawRx = faceRx * u(0.72, 1.0); // narrow chin .. square jaw
  const cos = Math.cos(tilt);
  const sin = Math.sin(tilt);
  /** A point given relative to the upright face centre, turned with the head. */
  const at = (dx: number, dy: number): [number, number] => [cx + dx * cos - dy * sin, cy + dx * sin + dy * cos];

  const skin = mix(pick(SKIN), pick(SKIN), rng.uniform());
  const shade = scale(skin, 0.82);
  const hair = mix(pick(HAIR), pick(HAIR), rng.uniform() * 0.3);
  const hairStyle = rng.int(4); // 0 short, 1 long, 2 very short (no fringe), 3 side part
  const shirt = hsv(rng.uniform(), u(0.2, 0.8), u(0.2, 0.9));

  // Shoulders and neck, below and behind the head.
  canvas.ellipse({ cx: cx + u(-0.03, 0.03), cy: 1.18, rx: u(0.42, 0.6), ry: 0.32 }, shirt);
  if (hairStyle === 1) {
    const [hx, hy] = at(0, faceRy * 0.35);
    canvas.ellipse({ cx: hx, cy: hy, rx: faceRx * u(1.3, 1.55), ry: faceRy * u(1.15, 1.35), angle: tilt }, hair);
  }
  canvas.capsule(cx, cy + faceRy * 0.6, cx, 1.05, faceRx * u(0.42, 0.55), shade);

  // Back of the hair, then ears, then the face over both.
  if (hairStyle !== 2) {
    const [hx, hy] = at(0, -faceRy * 0.18);
    canvas.ellipse({ cx: hx, cy: hy, rx: faceRx * u(1.08, 1.25), ry: faceRy * u(0.95, 1.08), angle: tilt }, hair);
  }
  for (const s of [-1, 1]) {
    const [ex, ey] = at(s * faceRx * 0.97, -faceRy * 0.02);
    canvas.ellipse({ cx: ex, cy: ey, rx: faceRx * 0.16, ry: faceRy * 0.2, angle: tilt }, shade);
  }
  canvas.ellipse({ cx, cy, rx: faceRx, ry: faceRy, angle: tilt }, skin);
  const [jx, jy] = at(0, faceRy * 0.3);
  canvas.ellipse({ cx: jx, cy: jy, rx: jawRx, ry: faceRy * 0.7, angle: tilt }, skin);

  // Fringe or parting across the forehead.
  // `fringe` is the shape in face-local coordinates (upright, centre 0,0), kept for the Bangs label.
  let fringe: EllipseShape | null = null;
  if (hairStyle === 0 || hairStyle === 1) {
    // Drawn in the order rx, ry, yMax, as the random stream has always been read.
    const rx = faceRx * u(1.0, 1.1);
    const ry = faceRy * u(0.3, 0.48);
    fringe = { cx: 0, cy: -faceRy * 0.82, rx, ry, yMax: u(0.2, 0.6) };
    const [fx, fy] = at(fringe.cx, fringe.cy);
    canvas.ellipse({ ...fringe, cx: fx, cy: fy, angle: tilt }, hair);
  } else if (hairStyle === 3) {
    const side = rng.uniform() < 0.5 ? -1 : 1;
    fringe = { cx: side * faceRx * 0.25, cy: -faceRy * 0.85, rx: faceRx * 0.95, ry: faceRy * 0.4, angle: side * 0.35 };
    const [fx, fy] = at(fringe.cx, fringe.cy);
    canvas.ellipse({ ...fringe, cx: fx, cy: fy, angle: tilt + side * 0.35 }, hair);
  } else {
    // Cropped hair: a thin shadow along the hairline, clipped to the head.
    const [fx, fy] = at(0, -faceRy * 0.7);
    canvas.ellipse({ cx: fx, cy: fy, rx: faceRx * 0.92, ry: faceRy * 0.32, angle: tilt, yMax: 0.1 }, hair, 0.45);
  }

  // Cheeks: a faint blush.
  const blush = mix(skin, [220, 90, 90], 0.35);
  for (const s of [-1, 1]) {
    const [bx, by] = at(s * faceRx * 0.55, faceRy * 0.22);
    canvas.ellipse({ cx: bx, cy: by, rx: faceRx * 0.22, ry: faceRy * 0.12, angle: tilt }, blush, u(0.1, 0.35));
  }

  // Eyes and brows.
  const eyeDx = faceRx * u(0.36, 0.46);
  const eyeDy = -faceRy * u(0.12, 0.22);
  const eyeRx = faceRx * u(0.16, 0.22);
  const eyeRy = eyeRx * u(0.38, 0.6);
  const iris = pick(IRIS);
  const gazeX = u(-0.3, 0.3) * eyeRx;
  const browColor = scale(hair, 0.8);
  const browLift = eyeRy * u(1.6, 2.6);
  const browTilt = u(-0.25, 0.25);
  const browThick = faceRy * u(0.025, 0.05);
  const glasses = rng.uniform() < 0.12;
  for (const s of [-1, 1]) {
    const [ex, ey] = at(s * eyeDx, eyeDy);
    canvas.ellipse({ cx: ex, cy: ey, rx: eyeRx, ry: eyeRy, angle: tilt }, [240, 238, 232]);
    const [ix, iy] = at(s * eyeDx + gazeX, eyeDy);
    canvas.ellipse({ cx: ix, cy: iy, rx: eyeRy * 0.95, ry: eyeRy * 0.95 }, iris);
    canvas.ellipse({ cx: ix, cy: iy, rx: eyeRy * 0.45, ry: eyeRy * 0.45 }, [12, 10, 10]);
    // Inner and outer ends, mirrored: a positive tilt lifts the inner ends (a worried look).
    const [a0x, a0y] = at(s * (eyeDx - eyeRx * 0.9), eyeDy - browLift - browTilt * eyeRx * 0.5);
    const [a1x, a1y] = at(s * (eyeDx + eyeRx * 0.9), eyeDy - browLift + browTilt * eyeRx * 0.5);
    canvas.capsule(a0x, a0y, a1x, a1y, browThick, browColor);
    if (glasses) {
      canvas.ring({ cx: ex, cy: ey, rx: eyeRx * 1.45, ry: eyeRx * 1.15, angle: tilt }, faceRx * 0.05, [25, 25, 30]);
    }
  }
  if (glasses) {
    const [b0x, b0y] = at(-eyeDx + eyeRx * 1.4, eyeDy);
    const [b1x, b1y] = at(eyeDx - eyeRx * 1.4, eyeDy);
    canvas.capsule(b0x, b0y, b1x, b1y, faceRx * 0.025, [25, 25, 30]);
  }

  // Nose: a shadow down the middle and a darker tip.
  const [n0x, n0y] = at(faceRx * 0.05, eyeDy + faceRy * 0.1);
  const [n1x, n1y] = at(faceRx * 0.04, faceRy * 0.2);
  canvas.capsule(n0x, n0y, n1x, n1y, faceRx * 0.05, scale(skin, 0.88), 0.6);
  const [tx, ty] = at(0, faceRy * 0.22);
  canvas.ellipse({ cx: tx, cy: ty, rx: faceRx * 0.16, ry: faceRy * 0.06, angle: tilt }, scale(skin, 0.8), 0.7);

  // Beard (some faces), then the mouth over it.
  const mouthY = faceRy * u(0.42, 0.52);
  const beard = rng.uniform() < 0.12;
  if (beard) {
    canvas.ellipse({ cx: jx, cy: jy, rx: jawRx, ry: faceRy * 0.7, angle: tilt, yMin: 0.2 }, hair, u(0.6, 0.95));
  }
  const [mx, my] = at(0, mouthY);
  const mouthRx = faceRx * u(0.3, 0.45);
  const lips = mix(skin, [170, 50, 60], u(0.35, 0.7));
  const mood = rng.int(3); // 0 closed, 1 smile, 2 open
  if (mood === 0) {
    canvas.ellipse({ cx: mx, cy: my, rx: mouthRx, ry: faceRy * u(0.04, 0.07), angle: tilt }, lips);
    canvas.capsule(...at(-mouthRx * 0.9, mouthY), ...at(mouthRx * 0.9, mouthY), faceRy * 0.008, scale(lips, 0.6));
  } else if (mood === 1) {
    canvas.ellipse({ cx: mx, cy: my, rx: mouthRx, ry: faceRy * u(0.08, 0.14), angle: tilt, yMin: 0 }, lips);
    canvas.ellipse({ cx: mx, cy: my, rx: mouthRx * 0.85, ry: faceRy * 0.06, angle: tilt, yMin: 0 }, [245, 242, 235]);
  } else {
    canvas.ellipse({ cx: mx, cy: my, rx: mouthRx * 0.8, ry: faceRy * u(0.08, 0.12), angle: tilt }, lips);
    canvas.ellipse({ cx: mx, cy: my, rx: mouthRx * 0.6, ry: faceRy * 0.06, angle: tilt }, [70, 20, 25]);
  }

  canvas.downsample(size, out, offset);
  return { hair, bangs: fringe !== null && covers(fringe, 0, -faceRy * FOREHEAD_MIDDLE), glasses, beard, mouth: mood, skin };
}

export interface SyntheticOptions {
  count: number;
  out: string;
  size: number;
  seed: number;
  overwrite?: boolean;
  /** Keep only these of SYNTHETIC_ATTRIBUTES, in this order; default all of them. */
  attrSubset?: readonly string[];
  /** Called once the output is known to be writable, before drawing starts. */
  onStart?: () => void;
  onProgress?: (p: { prepared: number; total: number }) => void;
  /** Abort (Ctrl-C): stops after the current chunk, removes the temporary file, throws E_ABORTED. */
  signal?: AbortSignal;
}

export interface SyntheticResult {
  out: string;
  header: DatasetHeader;
  seed: number;
  seconds: number;
  /** The attributes each image is labelled with, in order. */
  attributes: readonly string[];
}

const SYNTH_CHUNK = 512;

/** The columns of SYNTHETIC_ATTRIBUTES that `subset` keeps (all by default). */
function syntheticColumns(subset: readonly string[] | undefined): number[] {
  if (subset === undefined) return SYNTHETIC_ATTRIBUTES.map((_, i) => i);
  if (subset.length === 0) throw new UsageError('E_BAD_ARGUMENT', '--attr-subset names no attributes', { hint: 'Name one or more, e.g. --attr-subset Smiling,Eyeglasses.' });
  return subset.map((name) => {
    const c = SYNTHETIC_ATTRIBUTES.indexOf(name);
    if (c < 0) {
      throw new UsageError('E_ATTR_UNKNOWN', `--attr-subset names ${name}, which synthetic faces do not carry`, {
        hint: `Synthetic faces carry: ${SYNTHETIC_ATTRIBUTES.join(', ')}.`,
      });
    }
    return c;
  });
}

/** Draw images start..start+n-1 into `pixels` and their labels (the kept columns) into `labels`. */
function drawChunk(seed: number, start: number, n: number, size: number, columns: readonly number[], pixels: Uint8Array, labels: Int8Array): void {
  const imageBytes = size * size * 3;
  const all = new Int8Array(SYNTHETIC_ATTRIBUTES.length);
  for (let k = 0; k < n; k++) {
    renderLabelledFace(seed, start + k, size, pixels, k * imageBytes, all, 0);
    columns.forEach((c, j) => (labels[k * columns.length + j] = all[c]!));
  }
}

/** The checked count, size, seed and attribute columns (with their CelebA names) of a synthetic set. */
function checkSyntheticOptions(opts: SyntheticOptions): { count: number; size: number; seed: number; columns: number[]; names: string[] } {
  const count = assertInteger('--synthetic', opts.count, 1, 10_000_000);
  const size = assertInteger('--size', opts.size, 4, 1024);
  const seed = assertInteger('--seed', opts.seed, 0, 0xffffffff);
  const columns = syntheticColumns(opts.attrSubset);
  return { count, size, seed, columns, names: columns.map((c) => SYNTHETIC_ATTRIBUTES[c]!) };
}

/**
 * Write a synthetic data set (header flag `synthetic` set), labelled with the attributes each
 * face was drawn with. Drawing runs on the main thread in chunks, yielding between them so
 * progress can be shown; drawing is cheaper than decoding JPEGs, so it needs no worker threads.
 */
export async function prepareSynthetic(opts: SyntheticOptions): Promise<SyntheticResult> {
  const started = performance.now();
  const { count, size, seed, columns, names } = checkSyntheticOptions(opts);
  prepareOutput(opts.out, opts.overwrite ?? false);
  opts.onStart?.();
  const imageBytes = size * size * 3;
  const writer = new DatasetWriter(opts.out, size, size, 3, true, seed, names);
  try {
    const chunk = new Uint8Array(SYNTH_CHUNK * imageBytes);
    const labels = new Int8Array(SYNTH_CHUNK * columns.length);
    for (let start = 0; start < count; start += SYNTH_CHUNK) {
      if (opts.signal?.aborted) throw abortedError(opts.out);
      const n = Math.min(SYNTH_CHUNK, count - start);
      drawChunk(seed, start, n, size, columns, chunk, labels);
      writer.append(chunk.subarray(0, n * imageBytes), labels.subarray(0, n * columns.length));
      opts.onProgress?.({ prepared: start + n, total: count });
      await new Promise((resolve) => setImmediate(resolve));
    }
    const header = writer.finish();
    return { out: opts.out, header, seed, seconds: (performance.now() - started) / 1000, attributes: names };
  } finally {
    writer.abort(); // no-op after finish()
  }
}

/** `000001.png`: CelebA's 1-based, zero-padded names (6 digits, more for over 999,999 images). */
function syntheticImageName(index: number, count: number): string {
  return `${String(index + 1).padStart(Math.max(6, String(count).length), '0')}.png`;
}

export interface SyntheticFolderResult {
  out: string;
  count: number;
  seed: number;
  seconds: number;
  attributes: readonly string[];
  /** The attribute file written beside the images. */
  attributeFile: string;
}

/**
 * `prepare --synthetic N --out <folder>/`: the same faces as PNGs (`000001.png`, ...) plus a
 * `list_attr_celeba.txt` in CelebA's exact format, the interchange form any CelebA tool reads;
 * `prepare --input <folder>` turns it back into a labelled data set with the same labels.
 *
 * Atomic like every write that matters: everything goes into a temporary folder beside `out`
 * (each file fsynced), renamed into place at the end. `out` may be missing or empty; a folder
 * with files in it is replaced only with `overwrite` and only when it is an earlier export (it
 * holds a list_attr_celeba.txt), so --force cannot delete an unrelated folder.
 */
export async function exportSyntheticFolder(opts: SyntheticOptions): Promise<SyntheticFolderResult> {
  const started = performance.now();
  const { count, size, seed, columns, names } = checkSyntheticOptions(opts);
  const out = opts.out.replace(/[\\/]+$/, '') || opts.out;
  const replacing = checkFolderOutput(out, opts.overwrite ?? false);
  ensureFolder(dirname(out), 'create the output folder');
  opts.onStart?.();
  const tmp = tempPathFor(out);
  try {
    mkdirSync(tmp);
  } catch (err) {
    throw fileError(err, out, 'create');
  }
  try {
    const imageBytes = size * size * 3;
    const chunk = new Uint8Array(SYNTH_CHUNK * imageBytes);
    const labels = new Int8Array(count * columns.length); // K bytes per image, for the attribute file
    const imageNames: string[] = [];
    for (let start = 0; start < count; start += SYNTH_CHUNK) {
      if (opts.signal?.aborted) throw abortedError(out);
      const n = Math.min(SYNTH_CHUNK, count - start);
      drawChunk(seed, start, n, size, columns, chunk, labels.subarray(start * columns.length));
      const pngs = await Promise.all(
        Array.from({ length: n }, (_, k) => sharp(chunk.subarray(k * imageBytes, (k + 1) * imageBytes), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer()),
      );
      pngs.forEach((png, k) => {
        const name = syntheticImageName(start + k, count);
        imageNames.push(name);
        writeDurable(join(tmp, name), png, join(out, name));
      });
      opts.onProgress?.({ prepared: start + n, total: count });
    }
    writeDurable(join(tmp, ATTRIBUTE_FILE_NAME), formatAttributeFile(names, imageNames, labels), join(out, ATTRIBUTE_FILE_NAME));
    fsyncDir(tmp);
    moveIntoPlace(tmp, out, replacing);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { out, count, seed, seconds: (performance.now() - started) / 1000, attributes: names, attributeFile: join(out, ATTRIBUTE_FILE_NAME) };
}

/** Whether `out` is an earlier export to replace; throws E_OUTPUT_EXISTS for a folder it must not touch. */
function checkFolderOutput(out: string, overwrite: boolean): boolean {
  if (!existsSync(out)) return false;
  if (!statSync(out).isDirectory()) {
    throw new UsageError('E_OUTPUT_EXISTS', `--out ${out} is a file, but a folder of images was asked for (the trailing slash)`, {
      hint: 'Choose a new folder, or leave out the trailing slash to write a .cgds data set.',
    });
  }
  const entries = readdirSync(out);
  if (entries.length === 0) return false;
  if (!overwrite || !entries.includes(ATTRIBUTE_FILE_NAME)) {
    throw new UsageError('E_OUTPUT_EXISTS', `--out ${out} is a folder that already holds ${entries.length} file${entries.length === 1 ? '' : 's'}`, {
      hint: overwrite
        ? `--force replaces only an earlier export (a folder with ${ATTRIBUTE_FILE_NAME}); choose a new or empty folder.`
        : 'Choose a new or empty folder, or pass --force to replace an earlier export.',
    });
  }
  return true;
}

function writeDurable(path: string, data: string | Uint8Array, shown: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (err) {
    throw fileError(err, shown, 'write');
  }
  try {
    writeAllSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    throw fileError(err, shown, 'write');
  } finally {
    closeSync(fd);
  }
}

/** Rename the finished temporary folder to `out`; an earlier export is set aside first and deleted after. */
function moveIntoPlace(tmp: string, out: string, replacing: boolean): void {
  try {
    if (replacing) {
      const old = `${tmp}.old`;
      renameSync(out, old);
      renameSync(tmp, out);
      fsyncDir(dirname(out));
      rmSync(old, { recursive: true, force: true });
    } else {
      if (existsSync(out)) rmdirSync(out); // empty (checked): rename cannot replace a folder everywhere
      renameSync(tmp, out);
    }
  } catch (err) {
    throw fileError(err, out, 'write');
  }
  fsyncDir(dirname(out));
}
