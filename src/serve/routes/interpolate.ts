import type { FastifyInstance } from 'fastify';
import { formatFaceRef, parseFaceRef, renderFrames, walkFrameCount, walkLatents, type WalkFormat } from '../../inference/interpolate.js';
import { checkTruncation } from '../../inference/latents.js';
import { walkLabels } from '../attributes.js';
import { MIME, etagOf, faceInputs, inputWidth, notModified, runBatched, type RouteContext } from '../context.js';
import { encodeWalkAbortable } from '../encode.js';
import { LIMITS, checkCost, type EncodedKind } from '../limits.js';
import { accessTokenSchema, attrSchema, faceRefSchema, truncationSchema, upscaleSchema } from './schemas.js';

interface WalkQuery {
  from: string;
  to: string;
  steps: number;
  format: WalkFormat;
  upscale: number;
  truncation?: number;
  slerp?: boolean;
  loop: boolean;
  delay: number;
  attr?: string;
}

const ENCODED: Readonly<Record<WalkFormat, EncodedKind>> = Object.freeze({ png: 'png', gif: 'gif', webp: 'webp-animated' });

/**
 * GET /v1/interpolate — the latent walk `celeba-gan interpolate` makes, as one animation or strip.
 * On a conditional model each keyframe face carries its label row for attr= (attributes.ts
 * walkLabels), and the rows walk with the latents.
 */
export function registerInterpolateRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { info } = ctx.session;
  app.get<{ Querystring: WalkQuery }>(
    '/v1/interpolate',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            from: faceRefSchema,
            to: faceRefSchema,
            steps: { type: 'integer', minimum: 2, maximum: LIMITS.maxSteps, default: 16 },
            format: { type: 'string', enum: ['webp', 'gif', 'png'], default: 'webp' },
            upscale: upscaleSchema(2),
            truncation: truncationSchema,
            slerp: { type: 'boolean' },
            loop: { type: 'boolean', default: false },
            delay: { type: 'integer', minimum: 10, maximum: 5000, default: 80 },
            attr: attrSchema,
            access_token: accessTokenSchema,
          },
          required: ['from', 'to'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const keys = [parseFaceRef(q.from, 'from'), parseFaceRef(q.to, 'to')];
      const truncation = checkTruncation(info.latent, q.truncation);
      const draw = ctx.draws.get(q.attr);
      const walk = { steps: q.steps, slerp: q.slerp, loop: q.loop, truncation };
      const frameCount = walkFrameCount(keys.length, q.steps, q.loop);
      const { height: h, width: w } = info.image;
      checkCost(`a walk of ${frameCount} frames at upscale ${q.upscale}`, frameCount * h * w * q.upscale * q.upscale, ENCODED[q.format], ctx.maxPixels);
      const etag = etagOf(ctx, 'walk', keys.map(formatFaceRef), walk, q.format, q.upscale, q.delay, draw?.request.text ?? null);
      if (notModified(request, reply, etag)) return reply.code(304).send();
      const signal = ctx.work.signal(reply);
      const z = walkLatents(keys, info.zDim, info.latent, walk);
      const inputs = faceInputs(info, z, draw && walkLabels(draw, keys, q.steps, q.loop), frameCount);
      const frames = await renderFrames(runBatched(ctx, signal), inputs, inputWidth(info), info.image, { batchSize: LIMITS.maxImages, signal });
      const encode = { format: q.format, upscale: q.upscale, resize: 'lanczos', delayMs: q.delay } as const;
      const bytes = await ctx.work.run(signal, () => encodeWalkAbortable(frames, info.image, encode, signal));
      return reply.type(MIME[q.format]).send(bytes);
    },
  );
}
