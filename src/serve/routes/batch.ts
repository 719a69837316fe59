import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { encodeImage, isPlainPng, pngOfFace, type ImageFormat, type ResizeKernel } from '../../inference/encode.js';
import { imageFileName } from '../../inference/generate.js';
import { MAX_FACE_INDEX, checkTruncation, latentsFor } from '../../inference/latents.js';
import { UsageError } from '../../errors.js';
import { floatNchwToUint8Hwc } from '../../util/image.js';
import type { AttributeDraw } from '../../inference/attributes.js';
import { MIME, etagOf, faceInputs, inputWidth, notModified, type RouteContext } from '../context.js';
import { LIMITS, checkCost } from '../limits.js';
import { TAR_END, tarFiles } from '../tar.js';
import { accessTokenSchema, attrSchema, resizeSchema, seedSchema, truncationSchema, upscaleSchema } from './schemas.js';

interface BatchQuery {
  seed: number;
  start: number;
  n: number;
  format: ImageFormat;
  upscale: number;
  resize: ResizeKernel;
  truncation?: number;
  attr?: string;
}

/**
 * GET /v1/batch — faces start .. start+n-1 of a seed (with attr=, of that request) as one tar
 * stream of the files `generate` writes (same names, same bytes), so a client that wants thousands of faces pays one request.
 * The archive streams as it is made: chunks of --max-batch faces go through the batcher, two
 * chunks queued ahead while this one encodes, and the stream's backpressure paces both.
 * A failure after the first bytes ends the connection without the archive's end blocks, so a
 * client never mistakes a cut archive for a whole one.
 */
export function registerBatchRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { info } = ctx.session;
  const { channels: c, height: h, width: w } = info.image;
  app.get<{ Querystring: BatchQuery }>(
    '/v1/batch',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            seed: seedSchema,
            start: { type: 'integer', minimum: 0, maximum: MAX_FACE_INDEX, default: 0 },
            n: { type: 'integer', minimum: 1, maximum: LIMITS.maxBatchFaces },
            format: { type: 'string', enum: ['png', 'jpeg', 'webp'], default: 'png' },
            upscale: upscaleSchema(1),
            resize: resizeSchema,
            truncation: truncationSchema,
            attr: attrSchema,
            access_token: accessTokenSchema,
          },
          required: ['seed', 'n'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const truncation = checkTruncation(info.latent, q.truncation);
      const draw = ctx.draws.get(q.attr);
      if (q.start + q.n - 1 > MAX_FACE_INDEX) {
        throw new UsageError('E_BAD_ARGUMENT', `faces ${q.start} .. ${q.start + q.n - 1} go past the last face index ${MAX_FACE_INDEX}`, {
          hint: `Ask for at most ${MAX_FACE_INDEX - q.start + 1} faces from start ${q.start}.`,
        });
      }
      checkCost(`a batch of ${q.n} faces at upscale ${q.upscale}`, q.n * h * w * q.upscale * q.upscale, q.format, ctx.maxPixels);
      const etag = etagOf(ctx, 'batch', q.seed, q.start, q.n, q.format, q.upscale, q.resize, truncation ?? null, draw?.request.text ?? null);
      if (notModified(request, reply, etag)) return reply.code(304).send();
      const signal = ctx.work.signal(reply);
      const last = q.start + q.n - 1;
      reply.header('Content-Disposition', `attachment; filename="faces-${q.seed}-${q.start}-${last}.tar"`);
      return reply.type(MIME.tar).send(Readable.from(tarOfFaces(ctx, { ...q, truncation }, draw, signal), { objectMode: false }));
    },
  );

  async function* tarOfFaces(ctx: RouteContext, q: BatchQuery, draw: AttributeDraw | undefined, signal: AbortSignal): AsyncGenerator<Buffer> {
    const chunk = Math.min(ctx.batcher.opts.maxBatch, ctx.batcher.opts.maxQueue);
    const width = inputWidth(info);
    const submit = (first: number): Promise<Float32Array[]> => {
      const m = Math.min(chunk, q.n - first);
      const z = latentsFor(q.seed, q.start + first, m, info.zDim, info.latent, q.truncation);
      const inputs = faceInputs(info, z, draw?.rowsFor(q.seed, q.start + first, m), m);
      const p = ctx.batcher.submit(
        Array.from({ length: m }, (_, i) => inputs.subarray(i * width, (i + 1) * width)),
        { signal },
      );
      // Awaited below; until then a rejection (the client left) must not count as unhandled.
      p.catch(() => undefined);
      return p;
    };
    const encode = { format: q.format, upscale: q.upscale, resize: q.resize };
    // Plain PNGs are made here, synchronously (tens of µs each, a chunk a few ms); others in sharp.
    const files = (outs: Float32Array[]): Buffer[] | Promise<Buffer[]> =>
      isPlainPng(c, encode)
        ? outs.map((o) => pngOfFace(o, 0, h, w))
        : ctx.work.run(signal, () => Promise.all(outs.map((o) => encodeImage(floatNchwToUint8Hwc(o, 1, c, h, w), h, w, c, encode))));
    // Two chunks queued ahead: the model has the next one while this one is encoded and sent.
    const ahead: Promise<Float32Array[]>[] = [];
    let queued = 0;
    const fill = (): void => {
      for (; ahead.length < 2 && queued < q.n; queued += chunk) ahead.push(submit(queued));
    };
    fill();
    for (let first = 0; first < q.n; first += chunk) {
      const outs = await ahead.shift()!;
      fill();
      signal.throwIfAborted();
      const bytes = await files(outs);
      yield tarFiles(bytes.map((data, i) => ({ name: imageFileName(q.start + first + i, q.format), data })));
    }
    yield TAR_END;
  }
}
