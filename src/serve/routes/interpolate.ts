import type { FastifyInstance } from 'fastify';
import { formatFaceRef, parseFaceRef, renderFrames, walkFrameCount, walkLatents, type WalkFormat } from '../../inference/interpolate.js';
import { UsageError } from '../../errors.js';
import { checkTruncation } from '../../inference/latents.js';
import { attributeWalkRows, faceWalkRows, heldLatents } from '../../inference/interpolate.js';
import { MIME, etagOf, notModified, runBatched, type RouteContext } from '../context.js';
import { encodeWalkAbortable } from '../encode.js';
import { LIMITS, checkCost, type EncodedKind } from '../limits.js';
import { accessTokenSchema, attrSchema, faceRefSchema, truncationSchema, upscaleSchema } from './schemas.js';

interface WalkQuery {
  from: string;
  to?: string;
  walk?: string;
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
 * On a conditional model each keyframe face carries its label row for attr=, and the rows walk
 * with the latents; or, with walk=NAME instead of to=, the face `from` stays and attribute NAME
 * goes from -1 to +1 (src/serve/attributes.ts).
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
            walk: attrSchema,
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
          required: ['from'],
          // A walk goes to another face (to=) or along an attribute (walk=): one of them.
          oneOf: [{ required: ['to'] }, { required: ['walk'] }],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const walk = planWalk(ctx, q);
      const { height: h, width: w } = info.image;
      const frameCount = walk.frames;
      checkCost(`a walk of ${frameCount} frames at upscale ${q.upscale}`, frameCount * h * w * q.upscale * q.upscale, ENCODED[q.format], ctx.maxPixels);
      if (notModified(request, reply, etagOf(ctx, 'walk', walk.key, q.format, q.upscale, q.delay))) return reply.code(304).send();
      const signal = ctx.work.signal(reply);
      const { z, labels } = walk.inputs();
      const frames = await renderFrames(runBatched(ctx, signal), z, info.zDim, info.image, { batchSize: LIMITS.maxImages, signal, labels });
      const encode = { format: q.format, upscale: q.upscale, resize: 'lanczos', delayMs: q.delay } as const;
      const bytes = await ctx.work.run(signal, () => encodeWalkAbortable(frames, info.image, encode, signal));
      return reply.type(MIME[q.format]).send(bytes);
    },
  );
}

interface WalkPlan {
  frames: number;
  /** Everything that decides the frames (for the ETag). */
  key: unknown[];
  /** The frames' latents and (conditional models) label rows, made once the request is known to need them. */
  inputs(): { z: Float32Array; labels: Float32Array | undefined };
}

/** The frames of a walk between faces (to=) or along an attribute (walk=), checked. */
function planWalk(ctx: RouteContext, q: WalkQuery): WalkPlan {
  const { info } = ctx.session;
  const from = parseFaceRef(q.from, 'from');
  const truncation = checkTruncation(info.latent, q.truncation);
  const draw = ctx.draws.get(q.attr);
  const request = draw?.request.text ?? null;
  if (q.walk !== undefined) {
    const walked = ctx.draws.walked(q.walk, draw?.request);
    if (q.slerp !== undefined) {
      throw new UsageError('E_BAD_ARGUMENT', 'slerp= shapes a walk between two faces (to=); an attribute walk (walk=) keeps one latent', {
        hint: 'Leave slerp out of an attribute walk.',
      });
    }
    const frames = walkFrameCount(2, q.steps, q.loop);
    return {
      frames,
      key: ['attribute', formatFaceRef(from), walked.name, q.steps, q.loop, truncation ?? null, request],
      inputs: () => ({
        z: heldLatents(from, frames, info.zDim, info.latent, truncation),
        labels: attributeWalkRows(draw!, from, walked.index, q.steps, q.loop),
      }),
    };
  }
  const keys = [from, parseFaceRef(q.to!, 'to')];
  const walk = { steps: q.steps, slerp: q.slerp, loop: q.loop, truncation };
  const frames = walkFrameCount(keys.length, q.steps, q.loop);
  return {
    frames,
    key: [keys.map(formatFaceRef), walk, request],
    inputs: () => ({ z: walkLatents(keys, info.zDim, info.latent, walk), labels: draw && faceWalkRows(draw, keys, q.steps, q.loop) }),
  };
}
