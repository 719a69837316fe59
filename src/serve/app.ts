import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { CelebaGanError } from '../errors.js';
import type { GeneratorSession } from '../inference/session.js';
import { registerAuth } from './auth.js';
import { Batcher, type BatcherOptions } from './batcher.js';
import type { RouteContext } from './context.js';
import { registerErrorHandling } from './errors.js';
import { registerHttpMetrics } from './http-metrics.js';
import { DEFAULT_DEADLINE_MS, LIMITS } from './limits.js';
import { registerFaceRoutes } from './routes/faces.js';
import { registerGenerateRoutes } from './routes/generate.js';
import { registerGridRoutes } from './routes/grid.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerInterpolateRoutes } from './routes/interpolate.js';
import { registerModelRoutes } from './routes/model.js';
import { registerPageRoutes } from './routes/page.js';

/**
 * The HTTP app of `celeba-gan serve`, built by one function so tests drive it with inject().
 * Each route is a JSON schema plus a handler (src/serve/routes/, one file per resource); bad
 * parameters are refused by the schema with a 400 naming them, in the CLI's error shape
 * (src/serve/errors.ts). Every image goes through the one batcher and the one encoder
 * `generate` uses.
 */

export { DEFAULT_DEADLINE_MS, LIMITS } from './limits.js';

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

/** The model call: a list of latents in, a list of images out. It does not know it is batched. */
function modelBatcher(session: GeneratorSession, opts: BatcherOptions, registry: Registry): Batcher<Float32Array, Float32Array> {
  const { zDim, image } = session.info;
  const size = image.channels * image.height * image.width;
  return new Batcher<Float32Array, Float32Array>(
    async (rows) => {
      const z = new Float32Array(rows.length * zDim);
      rows.forEach((row, i) => z.set(row, i * zDim));
      const out = await session.run(z, rows.length);
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
  const ctx: RouteContext = { session: opts.session, batcher, deadlineMs: opts.deadlineMs ?? DEFAULT_DEADLINE_MS };

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: LIMITS.bodyBytes,
    forceCloseConnections: 'idle',
    // An unknown parameter (a typo such as ?upscal=4) is an error, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  });
  registerHttpMetrics(app, registry);
  if (opts.authToken) registerAuth(app, opts.authToken);
  registerErrorHandling(app);

  let draining = false;
  registerFaceRoutes(app, ctx);
  registerGridRoutes(app, ctx);
  registerInterpolateRoutes(app, ctx);
  registerGenerateRoutes(app, ctx);
  registerModelRoutes(app, ctx, opts.batcher);
  registerHealthRoutes(app, ctx, registry, () => draining);
  await registerPageRoutes(app);

  const close = async (): Promise<void> => {
    draining = true;
    // Requests already in flight still need the batcher; it stops taking work after them.
    await app.close();
    await batcher.drain();
  };
  return { app, batcher, registry, close };
}
