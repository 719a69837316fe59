import type { FastifyInstance } from 'fastify';
import { encodeImage, isPlainPng, pngOfFace, type ImageFormat, type ResizeKernel } from '../../inference/encode.js';
import { MAX_FACE_INDEX, checkTruncation, latentsFor } from '../../inference/latents.js';
import { floatNchwToUint8Hwc } from '../../util/image.js';
import { MIME, etagOf, faceInputs, notModified, type RouteContext } from '../context.js';
import { checkCost } from '../limits.js';
import { accessTokenSchema, attrSchema, resizeSchema, seedSchema, truncationSchema, upscaleSchema } from './schemas.js';

const FORMAT_OF_EXT: Readonly<Record<'png' | 'jpg' | 'webp', ImageFormat>> = Object.freeze({ png: 'png', jpg: 'jpeg', webp: 'webp' });

/** GET /v1/faces/:seed/:index.:ext — the face `generate --seed S --index I [--attr A]` writes, same bytes. */
export function registerFaceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { info } = ctx.session;
  const { channels: c, height: h, width: w } = info.image;
  app.get<{
    Params: { seed: number; index: number; ext: 'png' | 'jpg' | 'webp' };
    Querystring: { upscale: number; truncation?: number; resize: ResizeKernel; attr?: string };
  }>(
    '/v1/faces/:seed/:index.:ext',
    {
      schema: {
        params: {
          type: 'object',
          properties: {
            seed: seedSchema,
            index: { type: 'integer', minimum: 0, maximum: MAX_FACE_INDEX },
            ext: { type: 'string', enum: ['png', 'jpg', 'webp'] },
          },
          required: ['seed', 'index', 'ext'],
        },
        querystring: {
          type: 'object',
          properties: {
            upscale: upscaleSchema(1),
            truncation: truncationSchema,
            resize: resizeSchema,
            attr: attrSchema,
            access_token: accessTokenSchema,
          },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { seed, index, ext } = request.params;
      const { upscale, resize } = request.query;
      const truncation = checkTruncation(info.latent, request.query.truncation);
      const draw = ctx.draws.get(request.query.attr);
      const format = FORMAT_OF_EXT[ext];
      checkCost('this face', h * w * upscale * upscale, format, ctx.maxPixels);
      const etag = etagOf(ctx, 'face', seed, index, format, upscale, resize, truncation ?? null, draw?.request.text ?? null);
      if (notModified(request, reply, etag)) return reply.code(304).send();
      const signal = ctx.work.signal(reply);
      const input = faceInputs(info, latentsFor(seed, index, 1, info.zDim, info.latent, truncation), draw?.rowsFor(seed, index, 1), 1);
      const [out] = await ctx.batcher.submit([input], { signal });
      // A plain PNG at the model's size: one synchronous pass here (tens of µs); the rest is sharp's.
      if (isPlainPng(c, { format, upscale })) return reply.type(MIME.png).send(pngOfFace(out!, 0, h, w));
      const pixels = floatNchwToUint8Hwc(out!, 1, c, h, w);
      const bytes = await ctx.work.run(signal, () => encodeImage(pixels, h, w, c, { format, upscale, resize }));
      return reply.type(MIME[format]).send(bytes);
    },
  );
}
