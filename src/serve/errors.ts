import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { UsageCode } from '../error-codes.js';
import { CelebaGanError, UsageError } from '../errors.js';
import { QueueFullError } from './batcher.js';
import { LIMITS } from './limits.js';

/**
 * One shape for every error the server sends, the CLI's: `{ error: { code: "E_...", message,
 * hint } }`. Schema failures, the app's own errors and Fastify's 4xx all pass through here.
 */

export interface ErrorBody {
  error: { code: string; message: string; hint?: string; [detail: string]: unknown };
}

export function errorBody(code: string, message: string, hint?: string, details?: Readonly<Record<string, unknown>>): ErrorBody {
  return { error: { ...details, code, message, ...(hint === undefined ? {} : { hint }) } };
}

/**
 * A usage error with fields a client can read beside code, message and hint (attr=: the model's
 * attribute names, so a client can correct its request without parsing the message).
 */
export class DetailedUsageError extends UsageError {
  constructor(
    err: CelebaGanError,
    readonly details: Readonly<Record<string, unknown>>,
  ) {
    super(err.code as UsageCode, err.message, { hint: err.hint, cause: err });
  }
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

/** Fastify's own request errors, as the app's codes. */
const FASTIFY_4XX: Readonly<Record<string, { code: string; hint: string }>> = Object.freeze({
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'E_BAD_REQUEST', hint: 'Send JSON; NaN and Infinity are not JSON numbers.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'E_BAD_REQUEST', hint: 'Send a JSON body, e.g. {"z": [[...]]}.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'E_UNSUPPORTED_MEDIA_TYPE', hint: 'Send the body as Content-Type: application/json.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'E_BAD_REQUEST', hint: 'The Content-Length header must match the body.' },
});

/**
 * Errors Node's HTTP parser meets before Fastify sees a request (a header block over the size
 * limit, a slow client past --headers-timeout-ms / --request-timeout-ms, bytes that are not
 * HTTP): answered in the same shape on the raw socket, which is then closed.
 */
function clientErrorAnswer(err: NodeJS.ErrnoException): { status: number; body: ErrorBody } {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return {
      status: 431,
      body: errorBody(
        'E_HEADERS_TOO_LARGE',
        'the request headers (the URL included) are larger than this server accepts',
        "Send a shorter URL and fewer or smaller headers (Node's limit: 16 KiB in all).",
      ),
    };
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return {
      status: 408,
      body: errorBody(
        'E_REQUEST_TIMEOUT',
        'the request did not arrive in time',
        'Send the whole request promptly, or start `celeba-gan serve` with a larger --headers-timeout-ms / --request-timeout-ms.',
      ),
    };
  }
  return { status: 400, body: errorBody('E_BAD_REQUEST', `the request is not valid HTTP (${err.code ?? err.message})`, 'Send an HTTP/1.1 request.') };
}

export function handleClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const { status, body } = clientErrorAnswer(err);
    const text = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy(err);
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, _request, reply) => {
    if (err.validation) {
      const first = err.validation[0];
      const extra = first?.keyword === 'additionalProperties' ? (first.params as { additionalProperty?: string }).additionalProperty : undefined;
      const message = extra === undefined ? err.message : `${err.validationContext} has an unknown parameter "${extra}"`;
      return reply.code(400).send(errorBody('E_BAD_ARGUMENT', message, "See GET /v1/model for the limits, and docs/serve.md for each route's parameters."));
    }
    if (err instanceof QueueFullError) {
      reply.header('Retry-After', String(err.retryAfterSeconds));
      return reply.code(503).send(errorBody(err.code, err.message, err.hint));
    }
    if (err instanceof CelebaGanError) {
      const status = STATUS_BY_CODE[err.code] ?? (err.kind === 'usage' ? 400 : 500);
      if (status === 503) reply.header('Retry-After', '1');
      const details = err instanceof DetailedUsageError ? err.details : undefined;
      return reply.code(status).send(errorBody(err.code, err.message, err.hint, details));
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply
        .code(413)
        .send(
          errorBody('E_BODY_TOO_LARGE', `the request body is larger than ${LIMITS.bodyBytes} bytes`, `Send at most ${LIMITS.maxImages} latents per request.`),
        );
    }
    const fastify4xx = FASTIFY_4XX[err.code];
    if (fastify4xx !== undefined) return reply.code(err.statusCode ?? 400).send(errorBody(fastify4xx.code, err.message, fastify4xx.hint));
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send(errorBody('E_BAD_REQUEST', err.message, 'See docs/serve.md for the routes and their parameters.'));
    }
    reply.log.error(err);
    return reply.code(500).send(errorBody('E_INTERNAL', `internal error: ${err.message}`, 'See the server log; run `celeba-gan serve --verbose` for details.'));
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(
        errorBody(
          'E_NOT_FOUND',
          `no route ${request.method} ${request.url.split('?')[0]}`,
          'The API is under /v1/ (GET /v1/model lists it); the page is at /.',
        ),
      );
  });
}
