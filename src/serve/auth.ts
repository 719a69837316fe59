import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { UsageError } from '../errors.js';
import { errorBody } from './errors.js';

/**
 * The bearer token: one optional secret; every route but /healthz needs it. Browsers cannot put
 * a header on <img> or module loads, so the page is opened once as `/?access_token=T`; the
 * server then sets an HttpOnly, SameSite=Strict cookie carrying the same token.
 */

const TOKEN_COOKIE = 'celeba_gan_token';

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
function tokenMatches(given: string, token: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** The token a request carries: `Authorization: Bearer T`, the page's cookie, or `?access_token=T`. */
function presentedToken(headers: Record<string, string | string[] | undefined>, query: unknown): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const cookie = headers.cookie;
  if (typeof cookie === 'string') {
    for (const part of cookie.split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === TOKEN_COOKIE) {
        // A malformed escape (%E0%A4%A) is no token at all: the request is then unauthorised, not a 500.
        try {
          return decodeURIComponent(v.join('='));
        } catch {
          break;
        }
      }
    }
  }
  const q = query as { access_token?: unknown } | undefined;
  return typeof q?.access_token === 'string' ? q.access_token : undefined;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false;
}

/** A server reachable from other machines must have a token, unless the user says --insecure. */
export function checkBindSafety(host: string, token: string | undefined, insecure: boolean): void {
  if (isLoopback(host) || token || insecure) return;
  throw new UsageError('E_INSECURE_BIND', `refusing to serve on ${host} without an auth token: anyone who can reach this machine could use it`, {
    hint: 'Set --auth-token T (or env CELEBA_GAN_TOKEN), bind --host 127.0.0.1, or pass --insecure if the network is yours.',
  });
}

/** Every route but /healthz needs `token`; the page's first visit (?access_token=) also gets it as a cookie. */
export function registerAuth(app: FastifyInstance, token: string): void {
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url === '/healthz') return;
    const given = presentedToken(request.headers, request.query);
    if (given === undefined || !tokenMatches(given, token)) {
      reply.header('WWW-Authenticate', 'Bearer realm="celeba-gan"');
      return reply
        .code(401)
        .send(
          errorBody(
            'E_UNAUTHORIZED',
            given === undefined ? 'this server needs an auth token' : 'the auth token is wrong',
            'Send `Authorization: Bearer <token>` (the --auth-token of `celeba-gan serve`); open the page as /?access_token=<token>.',
          ),
        );
    }
    // The page's images and scripts cannot send headers: remember the token in a cookie.
    if ((request.query as { access_token?: unknown }).access_token !== undefined) {
      reply.header('Set-Cookie', `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`);
    }
  });
}
