import { featureSet, frechetDistance, gaussianStats, type FeatureSet } from './metrics.js';
import { CHANNELS, checkImageSet, type ImageSet } from './swd.js';

/**
 * The colour companion of SWD. SWD normalises each set's descriptors per channel, so it cannot
 * see a global colour cast or a contrast change (by design: Karras et al. want it to measure
 * structure). This distance sees exactly that.
 *
 * Each image becomes six numbers: its mean and its standard deviation in R, G and B (pixel
 * values / 255). The distance is the Fréchet distance between Gaussians fitted to the two sets
 * of these vectors, x1e3 (the same formula as FID, on 6 interpretable features). Why this one:
 * - the mean term catches a colour cast or a brightness shift, the std part a loss of contrast
 *   or saturation, and the covariance term a loss of colour variety (every face the same tint),
 *   which a histogram of pooled pixels would miss;
 * - 6 dimensions need no weights and are estimated stably from a few hundred images, where a
 *   256-bin histogram distance is dominated by sampling noise at small n.
 *
 * It measures colour, not structure: a strong blur lowers contrast and so moves it more than a
 * fine checkerboard does. docs/eval.md gives its valid range.
 */

export interface ColourDistance {
  /** Fréchet distance of per-image colour statistics, x1e3. */
  value: number;
  /** ||mu1 - mu2||^2 part, x1e3: mostly a colour cast. */
  meanTerm: number;
  /** Covariance part, x1e3: colour variety. */
  covTerm: number;
  n: number;
}

/** Per image: mean R, G, B and standard deviation R, G, B of pixel values / 255. [n, 6]. */
export function colourStatistics(set: ImageSet): FeatureSet {
  checkImageSet(set, 'colour statistics');
  const { n, height, width, data } = set;
  const pixels = height * width;
  // `]!` in the pixel loop: base + p * CHANNELS + c < n * pixels * CHANNELS, an ImageSet's size.
  const out = new Float32Array(n * 2 * CHANNELS);
  for (let i = 0; i < n; i++) {
    const base = i * pixels * CHANNELS;
    for (let c = 0; c < CHANNELS; c++) {
      let sum = 0;
      let sq = 0;
      for (let p = 0; p < pixels; p++) {
        const v = data[base + p * CHANNELS + c]! / 255;
        sum += v;
        sq += v * v;
      }
      const mean = sum / pixels;
      out[i * 2 * CHANNELS + c] = mean;
      out[i * 2 * CHANNELS + CHANNELS + c] = Math.sqrt(Math.max(0, sq / pixels - mean * mean));
    }
  }
  return featureSet(out, n, 2 * CHANNELS);
}

/** Colour-statistics distance x1e3 between two image sets (any sizes; at least 2 images each). */
export function colourDistance(a: ImageSet, b: ImageSet): ColourDistance {
  if (a.n < 2 || b.n < 2) throw new RangeError(`colourDistance: need at least 2 images per set (received ${a.n} and ${b.n}) to fit a covariance`);
  const f = frechetDistance(gaussianStats(colourStatistics(a)), gaussianStats(colourStatistics(b)));
  return { value: f.fid * 1e3, meanTerm: f.meanTerm * 1e3, covTerm: f.covTerm * 1e3, n: Math.min(a.n, b.n) };
}
