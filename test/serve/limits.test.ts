import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GATED_WORKER, Gate } from '../inference/gate.js';
import { cli } from '../support/in-process.js';
import { errorCode, serveTiny, untar, type Served } from './helpers.js';

/**
 * Every request bounded and every error in one shape: strict decimal integers, the cost ceiling,
 * the deadline over computing, Fastify's and Node's own 4xx, a malformed cookie, the batch
 * route's tar, and the connection limits against slow clients (real sockets on 127.0.0.1, a few
 * connections, each wait on its event with a deadline).
 */

let s: Served;
before(async () => {
  s = await serveTiny({ maxPixels: 64 * 28 * 28 });
});
after(async () => {
  await s?.stop();
});

interface ErrorAnswer {
  error: { code: string; message: string; hint?: string };
}

describe('ERROR PATH - integers are plain decimal: each face has one URL', () => {
  const table: [string, RegExp][] = [
    ['/v1/faces/7/1e3.png', /params\/index must be a plain decimal integer .* received "1e3"/],
    ['/v1/faces/7/0x10.png', /params\/index must be a plain decimal integer .* received "0x10"/],
    ['/v1/faces/07/1.png', /params\/seed must be a plain decimal integer .* received "07"/],
    ['/v1/faces/+7/1.png', /params\/seed/],
    ['/v1/faces/7/1.png?upscale=2.0', /querystring\/upscale must be a plain decimal integer/],
    ['/v1/faces/7/1.png?upscale=%202', /querystring\/upscale must be a plain decimal integer/],
    ['/v1/grid?seed=1&n=1e1', /querystring\/n must be a plain decimal integer/],
    ['/v1/grid?seed=1&n=2&n=3', /querystring\/n must be a plain decimal integer .* received 2 values/],
    ['/v1/interpolate?from=07:1&to=7:2', /querystring\/from must match pattern/],
    ['/v1/batch?seed=1&n=0x2', /querystring\/n must be a plain decimal integer/],
  ];
  for (const [url, message] of table) {
    test(`ERROR PATH - ${url} is 400 E_BAD_ARGUMENT`, async () => {
      const res = await s.app.inject(url);
      assert.equal(res.statusCode, 400, res.body);
      const body = JSON.parse(res.body) as ErrorAnswer;
      assert.equal(body.error.code, 'E_BAD_ARGUMENT');
      assert.match(body.error.message, message);
    });
  }

  test('the plain spellings of the same faces answer 200', async () => {
    for (const url of ['/v1/faces/7/1000.png', '/v1/faces/7/16.png', '/v1/faces/0/0.png', '/v1/faces/4294967295/4294967295.png']) {
      assert.equal((await s.app.inject(url)).statusCode, 200, url);
    }
  });
});

describe('ERROR PATH - the cost ceiling: 400 E_COST_LIMIT naming the limit and --max-pixels', () => {
  // This server allows 64 x 28 x 28 = 50176 PNG-equivalent pixels per request.
  const table: [string, string, RegExp][] = [
    [
      'a grid over it',
      '/v1/grid?seed=1&n=17&upscale=2',
      /a grid of 17 faces at upscale 2 needs 53312 pixels encoded as png, over this server's limit of 50176 \(--max-pixels\)/,
    ],
    [
      'a GIF weighted by its encoder effort',
      '/v1/interpolate?from=7:1&to=7:2&steps=8&upscale=1&format=gif',
      /a walk of 8 frames .* \(gif costs 36x PNG per pixel: 225792 PNG-equivalent pixels/,
    ],
    ['a face at a large upscale', '/v1/faces/7/1.webp?upscale=8', /this face needs 50176 pixels encoded as webp \(webp costs 3x PNG/],
    ['a batch over it', '/v1/batch?seed=1&n=65', /a batch of 65 faces at upscale 1 needs 50960 pixels/],
  ];
  for (const [name, url, message] of table) {
    test(`ERROR PATH - ${name}: ${url}`, async () => {
      const res = await s.app.inject(url);
      assert.equal(res.statusCode, 400, res.body);
      const body = JSON.parse(res.body) as ErrorAnswer;
      assert.equal(body.error.code, 'E_COST_LIMIT');
      assert.match(body.error.message, message);
      assert.match(body.error.hint ?? '', /--max-pixels \d+ or more/);
    });
  }

  test('requests at the limit are served; /v1/model reports it', async () => {
    assert.equal((await s.app.inject('/v1/grid?seed=1&n=16&upscale=2')).statusCode, 200);
    assert.equal((await s.app.inject('/v1/interpolate?from=7:1&to=7:2&steps=64&upscale=1&format=png')).statusCode, 200);
    const limits = (JSON.parse((await s.app.inject('/v1/model')).body) as { limits: { maxPixels: number } }).limits;
    assert.equal(limits.maxPixels, 64 * 28 * 28);
  });
});

describe("ERROR PATH - Fastify's own errors have the app's shape", () => {
  const post = (headers: Record<string, string>, payload: string) => s.app.inject({ method: 'POST', url: '/v1/generate', headers, payload });
  const table: [string, () => ReturnType<typeof post>, number, string][] = [
    ['415: a body that is not JSON', () => post({ 'content-type': 'application/xml' }, '<z/>'), 415, 'E_UNSUPPORTED_MEDIA_TYPE'],
    ['400: an empty JSON body', () => post({ 'content-type': 'application/json' }, ''), 400, 'E_BAD_REQUEST'],
    ['400: broken JSON', () => post({ 'content-type': 'application/json' }, '{"z": ['), 400, 'E_BAD_REQUEST'],
    ['404: no such route', () => s.app.inject('/v2/faces'), 404, 'E_NOT_FOUND'],
    ['404: a method the route does not take', () => s.app.inject({ method: 'DELETE', url: '/v1/grid' }), 404, 'E_NOT_FOUND'],
  ];
  for (const [name, call, status, code] of table) {
    test(`ERROR PATH - ${name}`, async () => {
      const res = await call();
      assert.equal(res.statusCode, status, res.body);
      assert.equal(errorCode(res.body), code, res.body);
    });
  }
});

describe('ERROR PATH - a malformed cookie is no token', () => {
  test('ERROR PATH - Cookie: celeba_gan_token=%E0%A4%A gets 401 E_UNAUTHORIZED, not 500', async () => {
    const t = await serveTiny({ authToken: 's3cret' });
    try {
      const res = await t.app.inject({ url: '/v1/model', headers: { cookie: 'celeba_gan_token=%E0%A4%A' } });
      assert.equal(res.statusCode, 401, res.body);
      assert.equal(errorCode(res.body), 'E_UNAUTHORIZED');
      assert.match(res.body, /needs an auth token/);
      const ok = await t.app.inject({ url: '/v1/model', headers: { cookie: 'other=%E0%A4%A; celeba_gan_token=s3cret' } });
      assert.equal(ok.statusCode, 200, ok.body);
    } finally {
      await t.stop();
    }
  });
});

describe('GET /v1/batch: many faces in one tar stream, the bytes generate writes', () => {
  test('faces start..start+n-1 named and encoded as generate writes them, across several model calls', async () => {
    const b = await serveTiny({ batcher: { maxBatch: 4, maxDelayMs: 1, maxQueue: 16 } });
    try {
      const res = await b.app.inject('/v1/batch?seed=7&start=5&n=10');
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['content-type'], 'application/x-tar');
      assert.match(String(res.headers['content-disposition']), /faces-7-5-14\.tar/);
      const files = untar(res.rawPayload);
      assert.deepEqual(
        files.map((f) => f.name),
        Array.from({ length: 10 }, (_, i) => `face-${String(5 + i).padStart(6, '0')}.png`),
      );
      for (const f of files) {
        const index = Number(/face-(\d+)/.exec(f.name)![1]);
        assert.deepEqual(f.data, (await b.app.inject(`/v1/faces/7/${index}.png`)).rawPayload, f.name);
      }
      const out = join(b.dir, 'gen');
      const r = await cli('generate', '--model', b.modelPath, '--out', out, '--provider', 'cpu', '--seed', '7', '--index', '5', '-n', '10');
      assert.equal(r.code, 0, r.stderr);
      for (const f of files) assert.deepEqual(f.data, readFileSync(join(out, f.name)), `${f.name} equals generate's`);
      assert.ok(readdirSync(out).length >= 10);
    } finally {
      await b.stop();
    }
  });

  test('ERROR PATH - a client that leaves mid-archive stops the batch: the rest is never made', async () => {
    const b = await serveTiny({ batcher: { maxBatch: 16, maxDelayMs: 1, maxQueue: 64 } });
    let made: number;
    try {
      const port = Number(new URL(await b.app.listen({ host: '127.0.0.1', port: 0 })).port);
      const { socket, answer } = talk(port, 'GET /v1/batch?seed=1&n=5000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 30_000);
      await new Promise((resolve) => socket.once('data', resolve));
      socket.destroy();
      await answer;
    } finally {
      // stop() drains: it returns once the batch's work has stopped; the count is final then.
      await b.stop();
      made = Number(/celeba_gan_images_generated_total (\d+)/.exec(await b.registry.getSingleMetricAsString('celeba_gan_images_generated_total'))?.[1] ?? NaN);
    }
    assert.ok(made < 5000, `the model made ${made} of 5000 faces for a client that left`);
  });

  test('ERROR PATH - a batch past the last face index is 400 naming it', async () => {
    const res = await s.app.inject('/v1/batch?seed=7&start=4294967295&n=2');
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.body, /go past the last face index 4294967295/);
  });
});

describe('ERROR PATH - the deadline covers computing, not only queueing', () => {
  test('ERROR PATH - a request whose model call outlives --deadline-ms gets 503 E_DEADLINE with Retry-After', async () => {
    const t = await serveTiny({ deadlineMs: 200, workerEntry: GATED_WORKER });
    const gate = new Gate(t.modelPath);
    try {
      const face = t.app.inject('/v1/faces/7/1.png');
      const run = await gate.next();
      // The model call is in flight (held in the worker): the deadline answers anyway.
      const res = await face;
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(errorCode(res.body), 'E_DEADLINE');
      assert.match(res.body, /within its 200 ms deadline \(queued and computing\)/);
      assert.ok(Number(res.headers['retry-after']) >= 1);
      gate.release(run);
    } finally {
      gate.close();
      await t.stop();
    }
  });
});

/** Open a socket to 127.0.0.1:port; resolves with all it received once the server closes it (or rejects past `deadlineMs`). */
function talk(port: number, send: string, deadlineMs: number): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  if (send) socket.write(send);
  let text = '';
  socket.on('data', (d) => (text += String(d)));
  const answer = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${deadlineMs} ms; received: ${text.slice(0, 200)}`));
    }, deadlineMs);
    socket.on('close', () => (clearTimeout(timer), resolve(text)));
    socket.on('error', () => undefined);
  });
  return { socket, answer };
}

function errorOf(answer: string): { status: number; code: string | undefined } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
  return { status, code: errorCode(answer.slice(answer.indexOf('\r\n\r\n') + 4)) };
}

describe('ERROR PATH - slow and greedy clients (real sockets)', () => {
  test('ERROR PATH - headers that never finish get 408 E_REQUEST_TIMEOUT; so does a body that never finishes', async () => {
    const t = await serveTiny({ connections: { headersTimeoutMs: 200, requestTimeoutMs: 400, maxConnections: 8 } });
    try {
      const port = Number(new URL(await t.app.listen({ host: '127.0.0.1', port: 0 })).port);
      const slowHeaders = talk(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', 10_000);
      const slowBody = talk(
        port,
        'POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"z":',
        10_000,
      );
      assert.deepEqual(errorOf(await slowHeaders.answer), { status: 408, code: 'E_REQUEST_TIMEOUT' });
      assert.deepEqual(errorOf(await slowBody.answer), { status: 408, code: 'E_REQUEST_TIMEOUT' });
    } finally {
      await t.stop();
    }
  });

  test('ERROR PATH - a 100 kB URL gets 431 E_HEADERS_TOO_LARGE in the app shape', async () => {
    const t = await serveTiny();
    try {
      const port = Number(new URL(await t.app.listen({ host: '127.0.0.1', port: 0 })).port);
      const big = talk(port, `GET /v1/faces/7/1.png?x=${'a'.repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 10_000);
      assert.deepEqual(errorOf(await big.answer), { status: 431, code: 'E_HEADERS_TOO_LARGE' });
    } finally {
      await t.stop();
    }
  });

  test('ERROR PATH - connections beyond --max-connections are closed at once; the open ones are still served', async () => {
    const t = await serveTiny({ connections: { headersTimeoutMs: 20_000, requestTimeoutMs: 20_000, maxConnections: 2 } });
    try {
      const port = Number(new URL(await t.app.listen({ host: '127.0.0.1', port: 0 })).port);
      const held = [talk(port, '', 30_000), talk(port, '', 30_000)];
      await Promise.all(held.map((h) => new Promise((resolve) => h.socket.once('connect', resolve))));
      // Both are accepted once the server has counted them; a third is then closed with no answer.
      // Accepting is asynchronous: until both held sockets are counted, a third may still get in (a few tries).
      let answer = 'none yet';
      for (let tries = 0; answer !== '' && tries < 20; tries++) {
        answer = await talk(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 10_000).answer;
      }
      assert.equal(answer, '', 'the connection over the limit was answered');
      held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      assert.match(await held[0]!.answer, /^HTTP\/1\.1 200 /);
      held[1]!.socket.destroy();
    } finally {
      await t.stop();
    }
  });
});
