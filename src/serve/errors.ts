import type { FastifyError, FastifyInstance } from 'fastify';
import { CelebaGanError } from '../errors.js';
import { QueueFullError } from './batcher.js';
import { LIMITS } from './limits.js';

/**
 * One shape for every error the server sends, the CLI's: `{ error: { code: "E_...", message,
 * hint } }`. Schema failures, the app's own errors and Fastify's 4xx all pass through here.
 */

export interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}

export function errorBody(code: string, message: string, hint?: string): ErrorBody {
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

export function registerErrorHandling(app: FastifyInstance): void {
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
}
