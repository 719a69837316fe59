import { availableParallelism } from 'node:os';
import { UsageError } from '../errors.js';

/**
 * What one request may ask of the server. The fixed caps a route's schema enforces live here,
 * beside the cost ceiling the operator sets (`--max-pixels`), so the schemas, GET /v1/model and
 * the tests read them from one place.
 *
 * Cost: the pixels a request makes the server encode (faces x pixels, grid cells x pixels,
 * frames x pixels), weighted by the encoder's effort per pixel relative to PNG, measured with
 * sharp on one core (docs: serve.md "Limits"). One GET of a 64-frame GIF at upscale 8 was 105
 * CPU-s before this ceiling; the default below bounds any request to about 0.4 CPU-s of encoding.
 */

export const LIMITS = Object.freeze({
  /** Faces in a /v1/grid contact sheet and latents in one POST /v1/generate. */
  maxImages: 64,
  maxUpscale: 8,
  /** Frames from one face to the next in /v1/interpolate. */
  maxSteps: 64,
  /** POST body bytes. */
  bodyBytes: 1024 * 1024,
  /** |z| in POST /v1/generate (finite latents; JSON's 1e999 parses to Infinity). */
  maxLatent: 1e6,
  /** Faces in one GET /v1/batch (the cost ceiling usually binds first). */
  maxBatchFaces: 1_000_000,
  /**
   * Characters of an attr= request (`Smiling,-Male`), so its parsing is bounded; naming every one
   * of CelebA's 40 attributes with a sign takes 503.
   */
  maxAttrLength: 1024,
});

export const DEFAULT_DEADLINE_MS = 30_000;
/**
 * PNG-equivalent pixels one request may cost by default: 8 Mi, about 0.4 CPU-s of encoding on one
 * core of the machine in docs serve.md; it admits the largest grid (3.2 Mpx) and the page's
 * longest walk (64 frames of 56x56 as animated WebP, 6 M) for a 28x28 model.
 */
export const DEFAULT_MAX_PIXELS = 8 * 1024 * 1024;

/** What the encoder makes: a still image, or an animation (every frame of it). */
export type EncodedKind = 'png' | 'jpeg' | 'webp' | 'gif' | 'webp-animated';

/**
 * CPU per pixel relative to PNG (about 50 ns a pixel), measured with sharp on one core on 16
 * frames of 112x112 (docs serve.md "Limits"), rounded up; JPEG measured cheaper and counts as 1.
 */
export const ENCODER_EFFORT: Readonly<Record<EncodedKind, number>> = Object.freeze({
  png: 1,
  jpeg: 1,
  webp: 3,
  'webp-animated': 30,
  gif: 36,
});

/** Refuse a request whose encode would cost more than `maxPixels` PNG-equivalent pixels. */
export function checkCost(what: string, pixels: number, kind: EncodedKind, maxPixels: number): void {
  const cost = pixels * ENCODER_EFFORT[kind];
  if (cost <= maxPixels) return;
  const weighed = ENCODER_EFFORT[kind] === 1 ? '' : ` (${kind} costs ${ENCODER_EFFORT[kind]}x PNG per pixel: ${cost} PNG-equivalent pixels)`;
  throw new UsageError('E_COST_LIMIT', `${what} needs ${pixels} pixels encoded as ${kind}${weighed}, over this server's limit of ${maxPixels} (--max-pixels)`, {
    hint: `Ask for fewer faces, frames or a smaller upscale${kind === 'gif' || kind === 'webp-animated' ? ', or format=png for a strip' : ''}; or start \`celeba-gan serve\` with --max-pixels ${cost} or more.`,
  });
}

/**
 * onnxruntime intra-op threads unless --threads says otherwise: all the cores. The model runs in
 * its own thread (src/inference/worker-session.ts), so while a batch computes the HTTP thread
 * only waits, and a second onnxruntime thread nearly doubles a wide model's speed. Between
 * batches the HTTP work needs the cores back, so serve also turns off the pool threads' spinning
 * (they would otherwise busy-wait for the next run). docs/benchmarks.md has the measurements.
 */
export function defaultServeThreads(cores = availableParallelism()): number {
  return Math.max(1, cores);
}
