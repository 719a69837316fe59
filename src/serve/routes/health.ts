import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { RouteContext } from '../context.js';
import { errorBody } from '../errors.js';

/** /healthz (the process answers), /readyz (it can take work now) and /metrics. */
export function registerHealthRoutes(app: FastifyInstance, ctx: RouteContext, registry: Registry, draining: () => boolean): void {
  const { session, batcher } = ctx;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (draining()) return reply.code(503).header('Retry-After', '1').send(errorBody('E_SHUTTING_DOWN', 'the server is shutting down'));
    const failure = session.failure;
    if (failure) return reply.code(503).send(errorBody(failure.code, failure.message, failure.hint));
    if (batcher.saturated)
      return reply
        .code(503)
        .header('Retry-After', '1')
        .send(errorBody('E_QUEUE_FULL', `the queue is full (${batcher.queued} images)`));
    return { status: 'ready', queued: batcher.queued };
  });
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
