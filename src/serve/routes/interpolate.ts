import type { FastifyInstance } from 'fastify';
import { encodeWalk, formatFaceRef, parseFaceRef, renderFrames, walkLatents, type WalkFormat } from '../../inference/interpolate.js';
import { checkTruncation } from '../../inference/latents.js';
import { MIME, clientGone, etagOf, notModified, runBatched, type RouteContext } from '../context.js';
import { LIMITS } from '../limits.js';
import { accessTokenSchema, faceRefSchema, truncationSchema, upscaleSchema } from './schemas.js';

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
}

/** GET /v1/interpolate — the latent walk `celeba-gan interpolate` makes, as one animation or strip. */
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
      const walk = { steps: q.steps, slerp: q.slerp, loop: q.loop, truncation };
      if (notModified(request, reply, etagOf(ctx, 'walk', keys.map(formatFaceRef), walk, q.format, q.upscale, q.delay))) return reply.code(304).send();
      const z = walkLatents(keys, info.zDim, info.latent, walk);
      const frames = await renderFrames(runBatched(ctx, clientGone(reply)), z, info.zDim, info.image, { batchSize: LIMITS.maxImages });
      const bytes = await encodeWalk(frames, info.image, { format: q.format, upscale: q.upscale, resize: 'lanczos', delayMs: q.delay });
      return reply.type(MIME[q.format]).send(bytes);
    },
  );
}
