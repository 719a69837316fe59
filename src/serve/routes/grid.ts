import type { FastifyInstance } from 'fastify';
import { checkTruncation, latentsFor } from '../../inference/latents.js';
import { floatNchwToUint8Hwc } from '../../util/image.js';
import { MIME, etagOf, notModified, runBatched, type RouteContext } from '../context.js';
import { encodeGridPng } from '../encode.js';
import { LIMITS, checkCost } from '../limits.js';
import { accessTokenSchema, attrSchema, seedSchema, truncationSchema, upscaleSchema } from './schemas.js';

/** GET /v1/grid — a contact sheet of faces index 0..n-1 of a seed (with attr=, of that request). */
export function registerGridRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { info } = ctx.session;
  const { channels: c, height: h, width: w } = info.image;
  app.get<{ Querystring: { seed: number; n: number; upscale: number; truncation?: number; cols?: number; attr?: string } }>(
    '/v1/grid',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            seed: seedSchema,
            n: { type: 'integer', minimum: 1, maximum: LIMITS.maxImages, default: 16 },
            upscale: upscaleSchema(2),
            truncation: truncationSchema,
            cols: { type: 'integer', minimum: 1, maximum: LIMITS.maxImages },
            attr: attrSchema,
            access_token: accessTokenSchema,
          },
          required: ['seed'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { seed, n, upscale, cols } = request.query;
      const truncation = checkTruncation(info.latent, request.query.truncation);
      const draw = ctx.draws.get(request.query.attr);
      checkCost(`a grid of ${n} faces at upscale ${upscale}`, n * h * w * upscale * upscale, 'png', ctx.maxPixels);
      const etag = etagOf(ctx, 'grid', seed, n, upscale, cols ?? null, truncation ?? null, draw?.request.text ?? null);
      if (notModified(request, reply, etag)) return reply.code(304).send();
      const signal = ctx.work.signal(reply);
      const images = await runBatched(ctx, signal)(latentsFor(seed, 0, n, info.zDim, info.latent, truncation), n, draw?.rowsFor(seed, 0, n));
      const faces = floatNchwToUint8Hwc(images, n, c, h, w);
      const png = await ctx.work.run(signal, () => encodeGridPng(faces, n, info.image, upscale, cols, signal));
      return reply.type(MIME.png).send(png);
    },
  );
}
