import { UsageError, expected } from '../errors.js';
import { Rng } from '../util/rng.js';

/**
 * Latent vectors for generation. Image `i` of seed `S` always gets the same z: its values come
 * from an Rng keyed by (S, 'latent', i) alone, never from a stream shared across the batch, so
 * a face is the same whatever the batch size, and `--index 417` regenerates face 417 by itself.
 *
 * Truncation (the "truncation trick": trade variety for quality by staying near the centre):
 * - normal N(0, 1): each value with |z| > t is redrawn (up to MAX_REDRAWS times, then clamped
 *   to [-t, t]), i.e. a normal truncated to [-t, t]; typical t: 0.5 to 2.
 * - uniform U(-1, 1): the range shrinks to U(-t, t), t in (0, 1].
 */

export type LatentKind = 'uniform' | 'normal';

/**
 * The one range of seeds and face indices, for generate, interpolate, serve and the web page:
 * 0 .. 2^32-1 each. An index is an Rng key (exact as a double far beyond this), and the largest
 * face any command makes or serves is index MAX_FACE_INDEX (so a run of n faces from --index i
 * needs i + n - 1 <= MAX_FACE_INDEX).
 */
export const MAX_SEED = 2 ** 32 - 1;
export const MAX_FACE_INDEX = 2 ** 32 - 1;

/** Redraws per value before clamping; only matters for tiny t (t = 0.1 accepts 8% of draws). */
const MAX_REDRAWS = 64;

/** Faces start .. start+n-1 must all have valid indices; the error names the largest allowed start. */
export function assertFaceRange(start: number, n: number, names: { index: string; n: string } = { index: 'index', n: 'n' }): void {
  if (start + n - 1 <= MAX_FACE_INDEX) return;
  const largest = MAX_FACE_INDEX - n + 1;
  throw new UsageError(
    'E_BAD_ARGUMENT',
    `${expected(`a start of at most ${largest} for ${n} faces`, names.index, start)}: the last face index would be ${start + n - 1}, beyond ${MAX_FACE_INDEX}`,
    {
      hint: `Face indices go from 0 to ${MAX_FACE_INDEX}: pass --${names.index} ${largest} or less, or a smaller --${names.n}.`,
    },
  );
}

export function checkTruncation(latent: LatentKind, truncation: number | undefined): number | undefined {
  if (truncation === undefined) return undefined;
  const max = latent === 'uniform' ? 1 : 10;
  if (typeof truncation !== 'number' || !Number.isFinite(truncation) || truncation <= 0 || truncation > max) {
    throw new UsageError('E_BAD_ARGUMENT', expected(`number > 0 and <= ${max} (latent is ${latent})`, 'truncation', truncation), {
      hint:
        latent === 'uniform'
          ? 'For U(-1, 1) latents, --truncation t draws from U(-t, t): try 0.8.'
          : 'For N(0, 1) latents, --truncation t redraws values beyond +-t: try 1.5.',
    });
  }
  return truncation;
}

/** z for images start .. start+n-1 of `seed`: [n, zDim] float32, row i = image start+i. */
export function latentsFor(seed: number, startIndex: number, n: number, zDim: number, latent: LatentKind, truncation?: number): Float32Array {
  const t = checkTruncation(latent, truncation);
  const out = new Float32Array(n * zDim);
  for (let row = 0; row < n; row++) {
    const rng = new Rng(seed, 'latent', startIndex + row);
    const z = out.subarray(row * zDim, (row + 1) * zDim);
    if (latent === 'uniform') {
      rng.fillUniform(z, -(t ?? 1), t ?? 1);
    } else {
      for (let k = 0; k < zDim; k++) {
        let v = rng.normal();
        if (t !== undefined) {
          for (let tries = 0; Math.abs(v) > t && tries < MAX_REDRAWS; tries++) v = rng.normal();
          if (v > t) v = t;
          else if (v < -t) v = -t;
        }
        z[k] = v;
      }
    }
  }
  return out;
}
