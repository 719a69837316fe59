import { createReadStream, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CelebaGanError } from '../errors.js';
import { encodeImage, type ImageFormat, type ResizeKernel } from '../inference/encode.js';
import { MAX_SEED, encodeWalk, formatFaceRef, parseFaceRef, renderFrames, walkLatents, type WalkFormat } from '../inference/interpolate.js';
import { MAX_FACE_INDEX, checkTruncation, latentsFor } from '../inference/latents.js';
import type { GeneratorSession } from '../inference/session.js';
import { floatNchwToUint8Hwc, gridPixels } from '../util/image.js';
import { TOKEN_COOKIE, presentedToken, tokenMatches } from './auth.js';
import { Batcher, QueueFullError, type BatcherOptions } from './batcher.js';
import { sha256Hex } from '../util/hash.js';

/**
 * The HTTP app of `celeba-gan serve`, built by one function so tests drive it with inject().
 * Each route is a JSON schema plus a handler; bad parameters are refused by the schema with a
 * 400 naming them, in the CLI's error shape: `{ error: { code: "E_...", message, hint } }`.
 * Every image goes through the one batcher and the one encoder `generate` uses.
 */

export const LIMITS = Object.freeze({
  /** Faces in a /v1/grid contact sheet and latents in one POST /v1/generate. */
  maxImages: 64,
  maxUpscale: 8,
  /** Frames from one face to the next in /v1/interpolate. */
  maxSteps: 64,
  /** POST body bytes. */
  bodyBytes: 1024 * 1024,
  /** |z| in POST /v1/generate (finite latents; JSON's 1e999 parses to Infinity). */
  maxLatent: 1e6,
});

export const DEFAULT_DEADLINE_MS = 30_000;

export interface AppOptions {
  /** The model (serve hosts it in a worker thread: `failure` is set when that thread died). */
  session: GeneratorSession & { readonly failure?: CelebaGanError | null };
  batcher: BatcherOptions;
  /** Bearer token required on every route but /healthz. */
  authToken?: string;
  /** Per-request deadline for getting into a model call. */
  deadlineMs?: number;
  logger?: boolean;
}

export interface ServeApp {
  app: FastifyInstance;
  batcher: Batcher<Float32Array, Float32Array>;
  registry: Registry;
  /** Stop accepting, finish in-flight requests, then release nothing else (the caller owns the session). */
  close(): Promise<void>;
}

/** The repository / package root (holds package.json), from src/serve or dist/src/serve. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('celeba-gan: package.json not found above src/serve');
    dir = up;
  }
  return dir;
}

function onnxruntimeWebDir(): string {
  return dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
}

export const PAGE_DIRS = Object.freeze({
  /** index.html, style.css */
  public: join(packageRoot(), 'web', 'public'),
  /** the page's compiled TypeScript (npm run build:web) */
  compiled: join(packageRoot(), 'dist', 'web'),
});

interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}

function errorBody(code: string, message: string, hint?: string): ErrorBody {
  return { error: hint === undefined ? { code, message } : { code, message, hint } };
}

const STATUS_BY_CODE: Readonly<Record<string, number>> = Object.freeze({
  E_QUEUE_FULL: 503,
  E_SHUTTING_DOWN: 503,
  E_DEADLINE: 503,
  E_UNAUTHORIZED: 401,
  E_NOT_FOUND: 404,
  // nginx's "client closed request": only the metrics and logs ever see it.
  E_CLIENT_GONE: 499,
});

const FORMAT_OF_EXT: Readonly<Record<'png' | 'jpg' | 'webp', ImageFormat>> = Object.freeze({ png: 'png', jpg: 'jpeg', webp: 'webp' });
const MIME: Readonly<Record<ImageFormat | 'gif', string>> = Object.freeze({ png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif' });
const IMMUTABLE = 'public, max-age=31536000, immutable';

const seedSchema = { type: 'integer', minimum: 0, maximum: MAX_SEED } as const;
const upscaleSchema = (dflt: number) => ({ type: 'integer', minimum: 1, maximum: LIMITS.maxUpscale, default: dflt }) as const;
const truncationSchema = { type: 'number', exclusiveMinimum: 0, maximum: 10 } as const;
const resizeSchema = { type: 'string', enum: ['lanczos', 'nearest'], default: 'lanczos' } as const;
const faceRefSchema = { type: 'string', pattern: '^[0-9]{1,10}:[0-9]{1,10}$' } as const;

export async function buildApp(opts: AppOptions): Promise<ServeApp> {
  const { session } = opts;
  const { info } = session;
  const { zDim } = info;
  const image = info.image;
  const { channels: c, height: h, width: w } = image;
  const deadlineMs = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // The model call: a list of latents in, a list of images out. It does not know it is batched.
  const batcher = new Batcher<Float32Array, Float32Array>(
    async (rows) => {
      const z = new Float32Array(rows.length * zDim);
      rows.forEach((row, i) => z.set(row, i * zDim));
      const out = await session.run(z, rows.length);
      const size = c * h * w;
      return rows.map((_, i) => out.subarray(i * size, (i + 1) * size));
    },
    opts.batcher,
    registry,
  );

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: LIMITS.bodyBytes,
    forceCloseConnections: 'idle',
    // An unknown parameter (a typo such as ?upscal=4) is an error, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  });

  const requests = new Counter({ name: 'celeba_gan_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'method', 'status'], registers: [registry] });
  const latency = new Histogram({
    name: 'celeba_gan_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    latency.observe({ route }, reply.elapsedTime / 1000);
  });
  // A client that went away gets no response (no onResponse): count it as nginx's 499.
  app.addHook('onRequestAbort', async (request) => {
    requests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: '499' });
  });

  if (opts.authToken) {
    const token = opts.authToken;
    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.url === '/healthz') return;
      const given = presentedToken(request.headers, request.query);
      if (given === undefined || !tokenMatches(given, token)) {
        reply.header('WWW-Authenticate', 'Bearer realm="celeba-gan"');
        return reply.code(401).send(
          errorBody('E_UNAUTHORIZED', given === undefined ? 'this server needs an auth token' : 'the auth token is wrong', 'Send `Authorization: Bearer <token>` (the --auth-token of `celeba-gan serve`); open the page as /?access_token=<token>.'),
        );
      }
      // The page's images and scripts cannot send headers: remember the token in a cookie.
      if ((request.query as { access_token?: unknown }).access_token !== undefined) {
        reply.header('Set-Cookie', `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`);
      }
    });
  }

  app.setErrorHandler((err: FastifyError, _request, reply) => {
    if (err.validation) {
      const first = err.validation[0];
      const extra = first?.keyword === 'additionalProperties' ? (first.params as { additionalProperty?: string }).additionalProperty : undefined;
      const message = extra === undefined ? err.message : `${err.validationContext} has an unknown parameter "${extra}"`;
      return reply.code(400).send(errorBody('E_BAD_ARGUMENT', message, 'See GET /v1/model for the limits, and README "serve" for each route\'s parameters.'));
    }
    if (err instanceof QueueFullError) {
      reply.header('Retry-After', String(err.retryAfterSeconds));
      return reply.code(503).send(errorBody(err.code, err.message, err.hint));
    }
    if (err instanceof CelebaGanError) {
      const status = STATUS_BY_CODE[err.code] ?? (err.kind === 'usage' ? 400 : 500);
      if (status === 503) reply.header('Retry-After', '1');
      return reply.code(status).send(errorBody(err.code, err.message, err.hint));
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(errorBody('E_BODY_TOO_LARGE', `the request body is larger than ${LIMITS.bodyBytes} bytes`, `Send at most ${LIMITS.maxImages} latents per request.`));
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      const hint = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'Send JSON; NaN and Infinity are not JSON numbers.' : undefined;
      return reply.code(err.statusCode).send(errorBody('E_BAD_REQUEST', err.message, hint));
    }
    reply.log.error(err);
    return reply.code(500).send(errorBody('E_INTERNAL', `internal error: ${err.message}`, 'See the server log; run `celeba-gan serve --verbose` for details.'));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody('E_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`, 'The API is under /v1/ (GET /v1/model lists it); the page is at /.'));
  });

  /** Abort a request's queued work when its client goes away before the answer is sent. */
  const clientGone = (reply: FastifyReply): AbortSignal => {
    const ac = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) ac.abort(new CelebaGanError('E_CLIENT_GONE', 'the client disconnected'));
    });
    return ac.signal;
  };

  /** z [n, zDim] through the batcher -> images [n, C, H, W] (the interpolation's RunModel). */
  const runBatched =
    (signal: AbortSignal) =>
    async (z: Float32Array, n: number): Promise<Float32Array> => {
      const rows = Array.from({ length: n }, (_, i) => z.slice(i * zDim, (i + 1) * zDim));
      const outs = await batcher.submit(rows, { signal, deadlineMs });
      const size = c * h * w;
      const images = new Float32Array(n * size);
      outs.forEach((o, i) => images.set(o, i * size));
      return images;
    };

  /** A strong ETag from the model's bytes and everything that decides the response's bytes. */
  const etagOf = (...parts: unknown[]): string => `"${sha256Hex([Buffer.from(JSON.stringify([info.modelSha256, ...parts]))]).slice(0, 40)}"`;
  /** Sets the caching headers; true when the client already has these bytes (answer 304). */
  const notModified = (request: FastifyRequest, reply: FastifyReply, etag: string): boolean => {
    reply.header('ETag', etag).header('Cache-Control', IMMUTABLE);
    const inm = request.headers['if-none-match'];
    if (typeof inm !== 'string') return false;
    return inm.trim() === '*' || inm.split(',').some((t) => t.trim() === etag);
  };

  // GET /v1/faces/:seed/:index.:ext — the face `generate --seed S --index I` writes, same bytes.
  app.get<{ Params: { seed: number; index: number; ext: 'png' | 'jpg' | 'webp' }; Querystring: { upscale: number; truncation?: number; resize: ResizeKernel } }>(
    '/v1/faces/:seed/:index.:ext',
    {
      schema: {
        params: {
          type: 'object',
          properties: { seed: seedSchema, index: { type: 'integer', minimum: 0, maximum: MAX_FACE_INDEX }, ext: { type: 'string', enum: ['png', 'jpg', 'webp'] } },
          required: ['seed', 'index', 'ext'],
        },
        querystring: { type: 'object', properties: { upscale: upscaleSchema(1), truncation: truncationSchema, resize: resizeSchema, access_token: { type: 'string' } }, additionalProperties: false },
      },
    },
    async (request, reply) => {
      const { seed, index, ext } = request.params;
      const { upscale, resize } = request.query;
      const truncation = checkTruncation(info.latent, request.query.truncation);
      const format = FORMAT_OF_EXT[ext];
      if (notModified(request, reply, etagOf('face', seed, index, format, upscale, resize, truncation ?? null))) return reply.code(304).send();
      const [out] = await batcher.submit([latentsFor(seed, index, 1, zDim, info.latent, truncation)], { signal: clientGone(reply), deadlineMs });
      const pixels = floatNchwToUint8Hwc(out!, 1, c, h, w);
      const bytes = await encodeImage(pixels, h, w, c, { format, upscale, resize });
      return reply.type(MIME[format]).send(bytes);
    },
  );

  // GET /v1/grid — a contact sheet of faces index 0..n-1 of a seed.
  app.get<{ Querystring: { seed: number; n: number; upscale: number; truncation?: number; cols?: number } }>(
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
            access_token: { type: 'string' },
          },
          required: ['seed'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { seed, n, upscale, cols } = request.query;
      const truncation = checkTruncation(info.latent, request.query.truncation);
      if (notModified(request, reply, etagOf('grid', seed, n, upscale, cols ?? null, truncation ?? null))) return reply.code(304).send();
      const images = await runBatched(clientGone(reply))(latentsFor(seed, 0, n, zDim, info.latent, truncation), n);
      const g = gridPixels(floatNchwToUint8Hwc(images, n, c, h, w), n, h, w, c, { upscale, cols });
      const png = await encodeImage(g.data, g.height, g.width, c, { format: 'png', upscale: 1, resize: 'nearest' });
      return reply.type('image/png').send(png);
    },
  );

  // GET /v1/interpolate — the latent walk `celeba-gan interpolate` makes, as one animation or strip.
  app.get<{ Querystring: { from: string; to: string; steps: number; format: WalkFormat; upscale: number; truncation?: number; slerp?: boolean; loop: boolean; delay: number } }>(
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
            access_token: { type: 'string' },
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
      if (notModified(request, reply, etagOf('walk', keys.map(formatFaceRef), walk, q.format, q.upscale, q.delay))) return reply.code(304).send();
      const z = walkLatents(keys, zDim, info.latent, walk);
      const frames = await renderFrames(runBatched(clientGone(reply)), z, zDim, image, { batchSize: LIMITS.maxImages });
      const bytes = await encodeWalk(frames, image, { format: q.format, upscale: q.upscale, resize: 'lanczos', delayMs: q.delay });
      return reply.type(MIME[q.format]).send(bytes);
    },
  );

  // POST /v1/generate — faces from caller-supplied latents.
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
      const outs = await batcher.submit(
        z.map((row) => Float32Array.from(row)),
        { signal: clientGone(reply), deadlineMs },
      );
      const images = await Promise.all(outs.map((o) => encodeImage(floatNchwToUint8Hwc(o, 1, c, h, w), h, w, c, { format, upscale, resize: 'lanczos' })));
      return { format, images: images.map((b) => b.toString('base64')) };
    },
  );

  // GET /v1/model — what the model is and what the server accepts.
  app.get('/v1/model', { schema: { querystring: { type: 'object', properties: { access_token: { type: 'string' } } } } }, async () => ({
    preset: info.preset,
    width: info.width,
    zDim,
    latent: info.latent,
    image: info.image,
    outputRange: info.outputRange,
    step: info.step,
    model: info.modelPath.split(/[\\/]/).pop(),
    modelSha256: info.modelSha256,
    version: info.version,
    metadata: info.metadata,
    provider: session.providerUsed,
    batching: opts.batcher,
    limits: { ...LIMITS, maxSeed: MAX_SEED, maxIndex: MAX_FACE_INDEX, truncation: info.latent === 'uniform' ? '(0, 1]' : '(0, 10]' },
  }));

  // GET /v1/model.onnx — the generator itself, for the page's in-browser generation.
  app.get('/v1/model.onnx', async (request, reply) => {
    if (notModified(request, reply, `"${info.modelSha256}"`)) return reply.code(304).send();
    return reply.type('application/octet-stream').send(createReadStream(info.modelPath));
  });

  let draining = false;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (draining) return reply.code(503).header('Retry-After', '1').send(errorBody('E_SHUTTING_DOWN', 'the server is shutting down'));
    const failure = session.failure;
    if (failure) return reply.code(503).send(errorBody(failure.code, failure.message, failure.hint));
    if (batcher.saturated) return reply.code(503).header('Retry-After', '1').send(errorBody('E_QUEUE_FULL', `the queue is full (${batcher.queued} images)`));
    return { status: 'ready', queued: batcher.queued };
  });
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  // The page and onnxruntime-web's wasm files, read from their folders only.
  if (!existsSync(join(PAGE_DIRS.compiled, 'web', 'src', 'main.js'))) {
    throw new CelebaGanError('E_PAGE_NOT_BUILT', `the web page is not built (${join(PAGE_DIRS.compiled, 'web', 'src', 'main.js')} is missing)`, { hint: 'Run `npm run build` (it compiles the page with `tsc -p web`).' });
  }
  await app.register(fastifyStatic, { root: PAGE_DIRS.public, prefix: '/', index: 'index.html', wildcard: false });
  await app.register(fastifyStatic, { root: PAGE_DIRS.compiled, prefix: '/app/', decorateReply: false, allowedPath: (path) => path.endsWith('.js') });
  await app.register(fastifyStatic, { root: onnxruntimeWebDir(), prefix: '/ort/', decorateReply: false, allowedPath: (path) => /^\/ort[\w.-]*\.(mjs|wasm|js)$/.test(path) });

  const close = async (): Promise<void> => {
    draining = true;
    // Requests already in flight still need the batcher; it stops taking work after them.
    await app.close();
    await batcher.drain();
  };
  return { app, batcher, registry, close };
}
