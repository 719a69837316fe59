import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CelebaGanError } from '../errors.js';
import type { ImageFormat } from '../inference/encode.js';
import type { RunModel } from '../inference/interpolate.js';
import type { GeneratorInfo, GeneratorSession } from '../inference/session.js';
import type { RequestDraws } from './attributes.js';
import type { Batcher } from './batcher.js';
import type { InFlight } from './in-flight.js';

/**
 * What every route shares: the model's facts, the one batcher, the requests in flight (their
 * deadline, disconnect and shutdown signal), the cost ceiling, and the caching helpers.
 */

export const MIME: Readonly<Record<ImageFormat | 'gif' | 'tar', string>> = Object.freeze({
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  tar: 'application/x-tar',
});
const IMMUTABLE = 'public, max-age=31536000, immutable';

export interface RouteContext {
  session: GeneratorSession & { readonly failure?: CelebaGanError | null };
  /** One item per face: its model input (faceInputs). */
  batcher: Batcher<Float32Array, Float32Array>;
  /** attr= requests -> label row draws (src/serve/attributes.ts). */
  draws: RequestDraws;
  work: InFlight;
  /** PNG-equivalent pixels one request may cost (limits.ts checkCost). */
  maxPixels: number;
}

/**
 * Values per face the batcher carries: its z, then, for a conditional model, its label row
 * (the model call splits them again, app.ts). One array per face keeps the batcher and its
 * splitting of big requests unaware of conditioning.
 */
export function inputWidth(info: Pick<GeneratorInfo, 'zDim' | 'attributes'>): number {
  return info.zDim + (info.attributes?.names.length ?? 0);
}

/** Latents [n, zDim] and label rows [n, K] (conditional models) -> model inputs [n, zDim + K]. */
export function faceInputs(info: Pick<GeneratorInfo, 'zDim' | 'attributes'>, z: Float32Array, labels: Float32Array | undefined, n: number): Float32Array {
  if (labels === undefined) return z;
  const { zDim } = info;
  const k = labels.length / n;
  const out = new Float32Array(n * (zDim + k));
  for (let i = 0; i < n; i++) {
    out.set(z.subarray(i * zDim, (i + 1) * zDim), i * (zDim + k));
    out.set(labels.subarray(i * k, (i + 1) * k), i * (zDim + k) + zDim);
  }
  return out;
}

/** The model's file name: what messages and /v1/model show (never the server's folders). */
export function modelFileName(info: Pick<GeneratorInfo, 'modelPath'>): string {
  return info.modelPath.split(/[\\/]/).pop()!;
}

/**
 * Latents [n, zDim] and a conditional model's label rows [n, K] through the batcher -> images
 * [n, C, H, W]: a RunModel with session.run's arguments (the interpolation's and the grid's).
 */
export function runBatched(ctx: RouteContext, signal: AbortSignal): RunModel {
  const { info } = ctx.session;
  const width = inputWidth(info);
  const size = info.image.channels * info.image.height * info.image.width;
  return async (z, n, labels) => {
    const inputs = faceInputs(info, z, labels, n);
    const rows = Array.from({ length: n }, (_, i) => inputs.subarray(i * width, (i + 1) * width));
    const outs = await ctx.batcher.submit(rows, { signal });
    const images = new Float32Array(n * size);
    outs.forEach((o, i) => images.set(o, i * size));
    return images;
  };
}

/**
 * A strong ETag from the model's bytes and everything that decides the response's bytes: the
 * model's sha256 (first 160 bits) and the options themselves, written out (JSON, URI-escaped into
 * ETag characters) rather than hashed per request, since the bytes they name are deterministic.
 */
export function etagOf(ctx: RouteContext, ...parts: unknown[]): string {
  return `"${ctx.session.info.modelSha256.slice(0, 40)}.${encodeURIComponent(JSON.stringify(parts))}"`;
}

/** Sets the caching headers; true when the client already has these bytes (answer 304). */
export function notModified(request: FastifyRequest, reply: FastifyReply, etag: string): boolean {
  reply.header('ETag', etag).header('Cache-Control', IMMUTABLE);
  const inm = request.headers['if-none-match'];
  if (typeof inm !== 'string') return false;
  return inm.trim() === '*' || inm.split(',').some((t) => t.trim() === etag);
}
