import { pyramidSizes, SWD_DEFAULTS } from './swd.js';

/**
 * What the validation ladder (issue 10) established about the two default metrics, by image
 * size: which degradations each one ranks in order. The ladder is
 *   same distribution ≈ real-halves baseline < blur σ1 < blur σ2 < checkerboard ±24 (1-px cells)
 *   < uniform noise < flat grey,
 * measured on synthetic faces and on real face photos (test/eval/ladder.ts) by
 * test/eval/ladder.test.ts and `npm run bench:metrics`; docs/eval.md "Valid range of each metric" has
 * the figures. One table, read by `eval`'s report and by the tests, so what is printed is what
 * is tested.
 *
 * SWD: ProGAN's mean over Laplacian levels gives each octave the same weight. A fine 1-px
 * checkerboard lives in the finest level only, where the per-level normalisation makes any
 * pattern that dominates the band as far from real as it can be; uniform noise is far at every
 * level. So where the checkerboard lands depends on the number of levels:
 * - 1 level (images below 23 px): the level is the raw image, nothing separates fine texture from
 *   the face's structure, and the checkerboard ranks below blur. SWD is not offered.
 * - 2 or 3 levels (23 to 88 px): everything in order except the checkerboard against uniform
 *   noise: within chance of it on synthetic faces at 28-32 px, above it on real photos at 28-64
 *   px. Offered (the default), with that said beside the number: not a ranking of fine texture.
 * - 4 levels or more (89 px and up): the whole ladder, measured at 96 and 128 px (on photos the
 *   checkerboard stays below noise by only 5-10%).
 *
 * The colour distance is SWD's colour check, not a quality ranking at any size: it sees colour
 * casts and contrast changes (which SWD normalises away by design) and cannot see a zero-mean
 * texture such as the checkerboard, which leaves each image's mean and spread nearly as they were.
 */

export type LadderRung = 'baseline' | 'same distribution' | 'blur σ1' | 'blur σ2' | 'checkerboard ±24' | 'uniform noise' | 'flat grey';

export interface SwdValidity {
  /** Pyramid levels at this size. */
  levels: number;
  /** 'full': the whole ladder in order; 'no-fine-texture': all but the checkerboard against uniform noise. */
  ranks: 'full' | 'no-fine-texture';
  /** Printed beside SWD by `eval`. */
  note: string;
}

/** SWD is offered from 2 pyramid levels (a band-pass level over a residual). */
export const SWD_MIN_LEVELS = 2;
/** From 4 pyramid levels SWD ranks the whole ladder. */
export const SWD_FULL_LADDER_LEVELS = 4;

/** The smallest square image side with `levels` pyramid levels (23 px for 2, 89 px for 4, by default). */
export function smallestSideWithLevels(levels: number, minResolution: number = SWD_DEFAULTS.minResolution): number {
  let side = 1;
  while (pyramidSizes(side, side, minResolution).length < levels) side++;
  return side;
}

/** What SWD ranks at this image size; null where it is not offered (fewer than SWD_MIN_LEVELS levels). */
export function swdValidity(height: number, width: number, minResolution: number = SWD_DEFAULTS.minResolution): SwdValidity | null {
  const levels = pyramidSizes(height, width, minResolution).length;
  if (levels < SWD_MIN_LEVELS) return null;
  if (levels >= SWD_FULL_LADDER_LEVELS) {
    return { levels, ranks: 'full', note: `validated at this size: ranks blur, a fine checkerboard, noise and flat grey in order (docs/eval.md)` };
  }
  const full = smallestSideWithLevels(SWD_FULL_LADDER_LEVELS, minResolution);
  return {
    levels,
    ranks: 'no-fine-texture',
    note: `not a ranking of fine texture below ${full} px: it ranks blur, noise and flat grey in order, but a 1-px checkerboard scores as high as uniform noise or higher (docs/eval.md)`,
  };
}

/** The ladder rungs SWD is asserted to order at a size with this validity (the checkerboard left out where it is not ranked). */
export function swdRankedRungs(v: SwdValidity): LadderRung[] {
  return v.ranks === 'full'
    ? ['baseline', 'blur σ1', 'blur σ2', 'checkerboard ±24', 'uniform noise', 'flat grey']
    : ['baseline', 'blur σ1', 'blur σ2', 'uniform noise', 'flat grey'];
}

export const COLOUR_CHECK_NOTE =
  'a colour check, not a quality ranking: catches colour casts and contrast changes that SWD cannot see; blind to fine texture (docs/eval.md)';
