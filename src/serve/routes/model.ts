import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { MAX_FACE_INDEX, MAX_SEED } from '../../inference/latents.js';
import type { BatcherOptions } from '../batcher.js';
import { modelFileName, notModified, type RouteContext } from '../context.js';
import { ENCODER_EFFORT, LIMITS } from '../limits.js';
import { accessTokenSchema } from './schemas.js';

/**
 * GET /v1/model (what the model is and what the server accepts) and /v1/model.onnx (the generator
 * itself). `attributes` is a conditional model's names (input order), training frequencies and
 * training label rows, what the page's attributeDraw needs; null for an unconditional model.
 */
export function registerModelRoutes(app: FastifyInstance, ctx: RouteContext, batching: BatcherOptions): void {
  const { session } = ctx;
  const { info } = session;
  app.get('/v1/model', { schema: { querystring: { type: 'object', properties: { access_token: accessTokenSchema } } } }, async () => ({
    preset: info.preset,
    width: info.width,
    zDim: info.zDim,
    latent: info.latent,
    image: info.image,
    outputRange: info.outputRange,
    step: info.step,
    model: modelFileName(info),
    modelSha256: info.modelSha256,
    version: info.version,
    attributes: info.attributes,
    metadata: info.metadata,
    provider: session.providerUsed,
    batching,
    limits: {
      ...LIMITS,
      maxPixels: ctx.maxPixels,
      encoderEffort: ENCODER_EFFORT,
      maxSeed: MAX_SEED,
      maxIndex: MAX_FACE_INDEX,
      truncation: info.latent === 'uniform' ? '(0, 1]' : '(0, 10]',
    },
  }));

  // The page's in-browser generation loads this.
  app.get('/v1/model.onnx', async (request, reply) => {
    if (notModified(request, reply, `"${info.modelSha256}"`)) return reply.code(304).send();
    return reply.type('application/octet-stream').send(createReadStream(info.modelPath));
  });
}
