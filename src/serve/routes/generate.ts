import type { FastifyInstance } from 'fastify';
import { encodeImage, type ImageFormat } from '../../inference/encode.js';
import { floatNchwToUint8Hwc } from '../../util/image.js';
import { UsageError } from '../../errors.js';
import { faceInputs, inputWidth, modelFileName, type RouteContext } from '../context.js';
import { DetailedUsageError } from '../errors.js';
import { LIMITS, checkCost } from '../limits.js';
import { upscaleSchema } from './schemas.js';

/**
 * POST /v1/generate — faces from caller-supplied latents; a conditional model also takes each
 * face's label row (`attributes`: K values in [-1, 1], the model's attribute order, as GET
 * /v1/model lists it; values between -1 and +1 are allowed, as an attribute walk makes them).
 */
export function registerGenerateRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { info } = ctx.session;
  const { zDim, image } = info;
  const k = inputWidth(info) - zDim;
  const { channels: c, height: h, width: w } = image;
  const names = info.attributes?.names ?? [];

  /** A conditional model needs a row per latent; an unconditional one takes none. */
  const checkAttributeRows = (rows: number[][] | undefined, n: number): void => {
    if (k === 0 && rows !== undefined) {
      throw new DetailedUsageError(
        new UsageError('E_NOT_CONDITIONAL', `body/attributes was sent, but the model ${modelFileName(info)} is unconditional: it has no attributes`, {
          hint: 'Leave attributes out of the body.',
        }),
        { attributes: names },
      );
    }
    if (k > 0 && rows?.length !== n) {
      const got = rows === undefined ? 'no body/attributes' : `${rows.length} rows of body/attributes`;
      throw new DetailedUsageError(
        new UsageError(
          'E_NO_LABELS',
          `the model ${modelFileName(info)} is conditional on ${k} attributes (${names.join(', ')}): ${n} latents need ${n} label rows, but the request has ${got}`,
          {
            hint: `Send "attributes": one row of ${k} numbers per latent, in the order GET /v1/model lists them: +1 has the attribute, -1 has not.`,
          },
        ),
        { attributes: names },
      );
    }
  };

  app.post<{ Body: { z: number[][]; attributes?: number[][]; format: ImageFormat; upscale: number } }>(
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
            // An unconditional model has no attributes: the handler refuses them as E_NOT_CONDITIONAL.
            attributes:
              k === 0
                ? { type: 'array' }
                : {
                    type: 'array',
                    minItems: 1,
                    maxItems: LIMITS.maxImages,
                    items: { type: 'array', minItems: k, maxItems: k, items: { type: 'number', minimum: -1, maximum: 1 } },
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
      const { z, attributes, format, upscale } = request.body;
      checkAttributeRows(attributes, z.length);
      checkCost(`${z.length} faces at upscale ${upscale}`, z.length * h * w * upscale * upscale, format, ctx.maxPixels);
      const signal = ctx.work.signal(reply);
      const outs = await ctx.batcher.submit(
        z.map((row, i) => faceInputs(info, Float32Array.from(row), attributes && Float32Array.from(attributes[i]!), 1)),
        { signal },
      );
      const encode = (o: Float32Array): Promise<Buffer> => encodeImage(floatNchwToUint8Hwc(o, 1, c, h, w), h, w, c, { format, upscale, resize: 'lanczos' });
      const images = await ctx.work.run(signal, () => Promise.all(outs.map(encode)));
      return { format, images: images.map((b) => b.toString('base64')) };
    },
  );
}
