import type { FastifyInstance } from 'fastify';
import { encodeImage, type ImageFormat } from '../../inference/encode.js';
import { floatNchwToUint8Hwc } from '../../util/image.js';
import type { RouteContext } from '../context.js';
import { LIMITS, checkCost } from '../limits.js';
import { upscaleSchema } from './schemas.js';

/** POST /v1/generate — faces from caller-supplied latents. */
export function registerGenerateRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { zDim, image } = ctx.session.info;
  const { channels: c, height: h, width: w } = image;
  app.post<{ Body: { z: number[][]; format: ImageFormat; upscale: number } }>(
    '/v1/generate',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            z: {
              type: 'array',
              minItems: 1,
              maxItems: LIMITS.maxImages,
              items: { type: 'array', minItems: zDim, maxItems: zDim, items: { type: 'number', minimum: -LIMITS.maxLatent, maximum: LIMITS.maxLatent } },
            },
            format: { type: 'string', enum: ['png', 'jpeg', 'webp'], default: 'png' },
            upscale: upscaleSchema(1),
          },
          required: ['z'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { format: { type: 'string' }, images: { type: 'array', items: { type: 'string' } } },
          },
        },
      },
    },
    async (request, reply) => {
      const { z, format, upscale } = request.body;
      checkCost(`${z.length} faces at upscale ${upscale}`, z.length * h * w * upscale * upscale, format, ctx.maxPixels);
      const signal = ctx.work.signal(reply);
      const outs = await ctx.batcher.submit(
        z.map((row) => Float32Array.from(row)),
        { signal },
      );
      const encode = (o: Float32Array): Promise<Buffer> => encodeImage(floatNchwToUint8Hwc(o, 1, c, h, w), h, w, c, { format, upscale, resize: 'lanczos' });
      const images = await ctx.work.run(signal, () => Promise.all(outs.map(encode)));
      return { format, images: images.map((b) => b.toString('base64')) };
    },
  );
}
