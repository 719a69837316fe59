import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { CelebaGanError } from '../errors.js';
import type { GeneratorSession } from '../inference/session.js';
import { registerAuth } from './auth.js';
import { Batcher, type BatcherOptions } from './batcher.js';
import { RequestDraws } from './attributes.js';
import { inputWidth, type RouteContext } from './context.js';
import { handleClientError, registerErrorHandling } from './errors.js';
import { registerHttpMetrics } from './http-metrics.js';
import { InFlight } from './in-flight.js';
import { DEFAULT_DEADLINE_MS, DEFAULT_MAX_PIXELS, LIMITS } from './limits.js';
import { registerBatchRoutes } from './routes/batch.js';
import { registerFaceRoutes } from './routes/faces.js';
import { registerGenerateRoutes } from './routes/generate.js';
import { registerGridRoutes } from './routes/grid.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerInterpolateRoutes } from './routes/interpolate.js';
import { registerModelRoutes } from './routes/model.js';
import { registerPageRoutes } from './routes/page.js';
import { registerStrictIntegers } from './strict-input.js';

/**
 * The HTTP app of `celeba-gan serve`, built by one function so tests drive it with inject().
 * Each route is a JSON schema plus a handler (src/serve/routes/, one file per resource); bad
 * parameters are refused by the schema with a 400 naming them, in the CLI's error shape
 * (src/serve/errors.ts). Every image goes through the one batcher and the one encoder
 * `generate` uses.
 */

export { DEFAULT_DEADLINE_MS, DEFAULT_MAX_PIXELS, LIMITS } from './limits.js';

/**
 * Connection limits, set on purpose (Node's defaults allow a minute for headers and five for a
 * request): a slow or silent client is answered 408 and dropped, and sockets beyond
 * maxConnections are closed at once, so idle connections cannot exhaust file descriptors.
 */
export interface ConnectionLimits {
  /** Milliseconds to receive a request's headers. */
  headersTimeoutMs: number;
  /** Milliseconds to receive a whole request (headers and body); at least headersTimeoutMs. */
  requestTimeoutMs: number;
  /** Open sockets at once; more are closed as they arrive. */
  maxConnections: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 1024,
});

export interface AppOptions {
  /** The model (serve hosts it in a worker thread: `failure` is set when that thread died). */
  session: GeneratorSession & { readonly failure?: CelebaGanError | null };
  batcher: BatcherOptions;
  /** Bearer token required on every route but /healthz. */
  authToken?: string;
  /** Per-request deadline, from arrival to the last byte encoded (queued and computing alike). */
  deadlineMs?: number;
  /** PNG-equivalent pixels one request may cost (limits.ts). */
  maxPixels?: number;
  connections?: Partial<ConnectionLimits>;
  logger?: boolean;
}

export interface ServeApp {
  app: FastifyInstance;
  batcher: Batcher<Float32Array, Float32Array>;
  registry: Registry;
  /**
   * Stop accepting, finish in-flight requests and any work they left running (an abandoned
   * request's encode), then release nothing else (the caller owns the session).
   */
  close(): Promise<void>;
  /** Abort every request still in flight (a drain past its limit); returns how many there were. */
  cutOff(): number;
}

/**
 * The model call: a list of faces' inputs in (z, then a conditional model's label row:
 * context.ts faceInputs), a list of images out. It does not know it is batched.
 */
function modelBatcher(session: GeneratorSession, opts: BatcherOptions, registry: Registry): Batcher<Float32Array, Float32Array> {
  const { zDim, image } = session.info;
  const k = inputWidth(session.info) - zDim;
  const size = image.channels * image.height * image.width;
  return new Batcher<Float32Array, Float32Array>(
    async (rows) => {
      const z = new Float32Array(rows.length * zDim);
      const labels = k > 0 ? new Float32Array(rows.length * k) : undefined;
      rows.forEach((row, i) => {
        z.set(row.subarray(0, zDim), i * zDim);
        labels?.set(row.subarray(zDim), i * k);
      });
      const out = await session.run(z, rows.length, labels);
      return rows.map((_, i) => out.subarray(i * size, (i + 1) * size));
    },
    opts,
    registry,
  );
}

export async function buildApp(opts: AppOptions): Promise<ServeApp> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const batcher = modelBatcher(opts.session, opts.batcher, registry);
  const work = new InFlight(opts.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const draws = new RequestDraws(opts.session.info);
  const ctx: RouteContext = { session: opts.session, batcher, draws, work, maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS };
  const conn = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connections };

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: LIMITS.bodyBytes,
    forceCloseConnections: 'idle',
    requestTimeout: conn.requestTimeoutMs,
    // Node checks the two timeouts on this interval (default 30 s): a quarter of the shorter one.
    http: {
      headersTimeout: conn.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(10, Math.floor(Math.min(conn.headersTimeoutMs, conn.requestTimeoutMs) / 4)),
    },
    clientErrorHandler: handleClientError,
    // An unknown parameter (a typo such as ?upscal=4) is an error, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  });
  app.server.maxConnections = conn.maxConnections;
  app.addHook('onRequest', async (_request, reply) => {
    work.open(reply);
  });
  registerHttpMetrics(app, registry);
  if (opts.authToken) registerAuth(app, opts.authToken);
  registerErrorHandling(app);
  registerStrictIntegers(app);

  let draining = false;
  registerFaceRoutes(app, ctx);
  registerGridRoutes(app, ctx);
  registerInterpolateRoutes(app, ctx);
  registerGenerateRoutes(app, ctx);
  registerBatchRoutes(app, ctx);
  registerModelRoutes(app, ctx, opts.batcher);
  registerHealthRoutes(app, ctx, registry, () => draining);
  await registerPageRoutes(app);

  const close = async (): Promise<void> => {
    draining = true;
    // Requests already in flight still need the batcher; it stops taking work after them.
    await app.close();
    await batcher.drain();
    await work.idle();
  };
  return { app, batcher, registry, close, cutOff: () => work.cutOff() };
}
