import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { latentsFor } from '../../src/inference/latents.js';
import { LIMITS } from '../../src/serve/app.js';
import { cli } from '../support/in-process.js';
import { errorCode, serveTiny, type Served } from './helpers.js';
import { waitFor } from '../support/wait.js';

/** The HTTP API through inject(): same bytes as `generate`, caching, validation, metrics, auth, static files. */

let s: Served;
before(async () => {
  s = await serveTiny();
});
after(async () => {
  await s?.stop();
});

/** `celeba-gan generate` into a fresh folder; returns the one face file's bytes. */
async function generated(args: string[]): Promise<Buffer> {
  const out = join(s.dir, `gen-${Math.random().toString(36).slice(2)}`);
  const r = await cli('generate', '--model', s.modelPath, '--out', out, '--provider', 'cpu', ...args);
  assert.equal(r.code, 0, r.stderr);
  const files = readdirSync(out).filter((f) => f.startsWith('face-'));
  assert.equal(files.length, 1);
  return readFileSync(join(out, files[0]!));
}

describe('GET /v1/faces: the same bytes as generate --seed S --index I', () => {
  const cases: [string, string[]][] = [
    ['/v1/faces/7/417.png', ['--seed', '7', '--index', '417']],
    ['/v1/faces/7/3.jpg?upscale=2', ['--seed', '7', '--index', '3', '--format', 'jpeg', '--upscale', '2']],
    [
      '/v1/faces/12345/0.webp?upscale=3&resize=nearest&truncation=0.5',
      ['--seed', '12345', '--index', '0', '--format', 'webp', '--upscale', '3', '--resize', 'nearest', '--truncation', '0.5'],
    ],
    ['/v1/faces/4294967295/4294967295.png?upscale=2', ['--seed', '4294967295', '--index', '4294967295', '--upscale', '2']],
  ];
  for (const [url, args] of cases) {
    test(url, async () => {
      const res = await s.app.inject(url);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.rawPayload, await generated(args));
    });
  }

  test('faces of different indices differ (the model is not constant)', async () => {
    const a = await s.app.inject('/v1/faces/7/0.png');
    const b = await s.app.inject('/v1/faces/7/1.png');
    assert.notDeepEqual(a.rawPayload, b.rawPayload);
  });
});

describe('caching: strong ETag, immutable, 304', () => {
  test('the ETag is strong, depends on every option, and If-None-Match gives 304 without generating', async () => {
    const first = await s.app.inject('/v1/faces/7/1.png?upscale=2');
    const etag = first.headers.etag as string;
    // The model's sha256 (160 bits) and the options, in ETag characters (RFC 9110: %x21 / %x23-7E).
    assert.match(etag, new RegExp(`^"${s.session.info.modelSha256.slice(0, 40)}\\.[!#-~]+"$`));
    assert.equal(first.headers['cache-control'], 'public, max-age=31536000, immutable');
    const others = [
      '/v1/faces/7/1.png',
      '/v1/faces/7/2.png?upscale=2',
      '/v1/faces/8/1.png?upscale=2',
      '/v1/faces/7/1.webp?upscale=2',
      '/v1/faces/7/1.png?upscale=2&truncation=0.5',
      '/v1/faces/7/1.png?upscale=2&resize=nearest',
    ];
    const tags = new Set([etag]);
    for (const url of others) tags.add((await s.app.inject({ url, method: 'HEAD' })).headers.etag as string);
    assert.equal(tags.size, others.length + 1);
    const before = await metric('celeba_gan_images_generated_total');
    const again = await s.app.inject({ url: '/v1/faces/7/1.png?upscale=2', headers: { 'if-none-match': `"other", ${etag}` } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.rawPayload.length, 0);
    assert.equal(again.headers.etag, etag);
    assert.equal(await metric('celeba_gan_images_generated_total'), before);
    assert.equal((await s.app.inject({ url: '/v1/faces/7/1.png?upscale=2', headers: { 'if-none-match': '"other"' } })).statusCode, 200);
  });
});

async function metric(name: string, labels = ''): Promise<number> {
  const text = (await s.app.inject('/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('BAD CALL - every bad parameter is a 400 naming it, in the CLI error shape', () => {
  const table: [string, string, RegExp][] = [
    ['seed below 0', '/v1/faces/-1/0.png', /params\/seed/],
    ['seed above 2^32-1', '/v1/faces/4294967296/0.png', /params\/seed must be <= 4294967295/],
    ['index not an integer', '/v1/faces/7/1.5.png', /params\/index/],
    ['index too large', '/v1/faces/7/99999999999.png', /params\/index must be <= 4294967295/],
    ['unknown image format', '/v1/faces/7/0.gif', /params\/ext/],
    ['upscale 0', '/v1/faces/7/0.png?upscale=0', /querystring\/upscale must be >= 1/],
    ['upscale above the cap', `/v1/faces/7/0.png?upscale=${LIMITS.maxUpscale + 1}`, /querystring\/upscale must be <= 8/],
    ['truncation 0', '/v1/faces/7/0.png?truncation=0', /querystring\/truncation must be > 0/],
    ['truncation not a number', '/v1/faces/7/0.png?truncation=abc', /querystring\/truncation must be number/],
    ['truncation beyond uniform latents', '/v1/faces/7/0.png?truncation=2', /for truncation but received 2/],
    ['resize unknown', '/v1/faces/7/0.png?resize=cubic', /querystring\/resize/],
    ['unknown parameter', '/v1/faces/7/0.png?upscal=4', /unknown parameter "upscal"/],
    ['grid without seed', '/v1/grid', /querystring must have required property 'seed'/],
    ['grid n above the cap', '/v1/grid?seed=1&n=65', /querystring\/n must be <= 64/],
    ['grid n 0', '/v1/grid?seed=1&n=0', /querystring\/n must be >= 1/],
    ['interpolate from malformed', '/v1/interpolate?from=7-1&to=7:2', /querystring\/from must match pattern/],
    ['interpolate to missing', '/v1/interpolate?from=7:1', /required property 'to'/],
    ['interpolate face seed too large', '/v1/interpolate?from=4294967296:0&to=7:2', /seed:index .* for from but received "4294967296:0"/],
    ['interpolate steps 1', '/v1/interpolate?from=7:1&to=7:2&steps=1', /querystring\/steps must be >= 2/],
    ['interpolate steps above the cap', '/v1/interpolate?from=7:1&to=7:2&steps=65', /querystring\/steps must be <= 64/],
    ['interpolate format', '/v1/interpolate?from=7:1&to=7:2&format=mp4', /querystring\/format/],
  ];
  for (const [name, url, message] of table) {
    test(`BAD CALL - ${name}: ${url}`, async () => {
      const res = await s.app.inject(url);
      assert.equal(res.statusCode, 400, res.body);
      const body = JSON.parse(res.body) as { error: { code: string; message: string; hint: string } };
      assert.equal(body.error.code, 'E_BAD_ARGUMENT');
      assert.match(body.error.message, message);
      assert.ok(body.error.hint.length > 0);
    });
  }
});

describe('POST /v1/generate: caller-supplied latents', () => {
  const zDim = 100;
  const post = (payload: unknown) =>
    s.app.inject({
      method: 'POST',
      url: '/v1/generate',
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
      headers: { 'content-type': 'application/json' },
    });

  test('the latents of faces 7:0 and 7:5 give the bytes of /v1/faces/7/0.png and /v1/faces/7/5.png', async () => {
    const z = [...latentsFor(7, 0, 1, zDim, 'uniform'), ...latentsFor(7, 5, 1, zDim, 'uniform')];
    const res = await post({ z: [z.slice(0, zDim), z.slice(zDim)] });
    assert.equal(res.statusCode, 200, res.body);
    const body = JSON.parse(res.body) as { format: string; images: string[] };
    assert.equal(body.format, 'png');
    assert.equal(body.images.length, 2);
    assert.deepEqual(Buffer.from(body.images[0]!, 'base64'), (await s.app.inject('/v1/faces/7/0.png')).rawPayload);
    assert.deepEqual(Buffer.from(body.images[1]!, 'base64'), (await s.app.inject('/v1/faces/7/5.png')).rawPayload);
  });

  const row = Array.from({ length: zDim }, () => 0.5);
  const bad: [string, unknown, number, string, RegExp][] = [
    ['z missing', {}, 400, 'E_BAD_ARGUMENT', /required property 'z'/],
    ['no latents', { z: [] }, 400, 'E_BAD_ARGUMENT', /body\/z must NOT have fewer than 1 items/],
    ['too many latents', { z: Array.from({ length: LIMITS.maxImages + 1 }, () => row) }, 400, 'E_BAD_ARGUMENT', /body\/z must NOT have more than 64 items/],
    ['a latent too short for the model (z_dim 100)', { z: [row.slice(1)] }, 400, 'E_BAD_ARGUMENT', /body\/z\/0 must NOT have fewer than 100 items/],
    ['a latent too long', { z: [row, [...row, 1]] }, 400, 'E_BAD_ARGUMENT', /body\/z\/1 must NOT have more than 100 items/],
    ['a string in a latent', { z: [[...row.slice(1), 'x']] }, 400, 'E_BAD_ARGUMENT', /body\/z\/0\/99 must be number/],
    // JSON cannot say Infinity, but 1e999 parses to it; the schema refuses non-finite numbers.
    ['Infinity (1e999 in JSON)', `{"z": [[${[...row.slice(1), '1e999'].join(',')}]]}`, 400, 'E_BAD_ARGUMENT', /body\/z\/0\/99 must be number/],
    ['-Infinity', `{"z": [[${['-1e999', ...row.slice(1)].join(',')}]]}`, 400, 'E_BAD_ARGUMENT', /body\/z\/0\/0 must be number/],
    ['a huge finite value', { z: [[...row.slice(1), 1e300]] }, 400, 'E_BAD_ARGUMENT', /body\/z\/0\/99 must be <= 1000000/],
    ['NaN (not JSON)', `{"z": [[NaN${',0'.repeat(zDim - 1)}]]}`, 400, 'E_BAD_REQUEST', /JSON/],
    ['unknown field', { z: [row], seed: 3 }, 400, 'E_BAD_ARGUMENT', /unknown parameter "seed"/],
    ['body over the size cap', `{"z": [[${'0,'.repeat(LIMITS.bodyBytes / 2)}0]]}`, 413, 'E_BODY_TOO_LARGE', /larger than 1048576 bytes/],
  ];
  for (const [name, payload, status, code, message] of bad) {
    test(`BAD CALL - ${name}`, async () => {
      const res = await post(payload);
      assert.equal(res.statusCode, status, res.body);
      const body = JSON.parse(res.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, code);
      assert.match(body.error.message, message);
    });
  }
});

describe('grid and interpolation', () => {
  test('/v1/grid is a PNG contact sheet of faces 0..n-1 whose tiles are the faces', async () => {
    const res = await s.app.inject('/v1/grid?seed=7&n=6&upscale=1&cols=3');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'image/png');
    const { data, info } = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [3 * 28 + 4 * 2, 2 * 28 + 3 * 2]);
    // Tile 4 (row 1, col 1) is face 7:4.
    const face = await sharp((await s.app.inject('/v1/faces/7/4.png')).rawPayload)
      .raw()
      .toBuffer();
    const x0 = 2 + 1 * 30;
    const y0 = 2 + 1 * 30;
    for (let y = 0; y < 28; y++) {
      const tileRow = data.subarray(((y0 + y) * info.width + x0) * 3, ((y0 + y) * info.width + x0 + 28) * 3);
      assert.deepEqual(tileRow, face.subarray(y * 28 * 3, (y + 1) * 28 * 3));
    }
  });

  test('/v1/interpolate: an animated WebP of `steps` frames; its PNG strip starts and ends with the two faces', async () => {
    const anim = await s.app.inject('/v1/interpolate?from=7:1&to=9:2&steps=5&upscale=1');
    assert.equal(anim.statusCode, 200, anim.body);
    assert.equal(anim.headers['content-type'], 'image/webp');
    const meta = await sharp(anim.rawPayload, { animated: true }).metadata();
    assert.equal(meta.pages, 5);
    assert.equal(meta.pageHeight, 28);
    const strip = await s.app.inject('/v1/interpolate?from=7:1&to=9:2&steps=5&upscale=1&format=png');
    const { data, info } = await sharp(strip.rawPayload).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [5 * 28, 28]);
    const frame = (k: number): Buffer => {
      const rows: Buffer[] = [];
      for (let y = 0; y < 28; y++) rows.push(data.subarray((y * info.width + k * 28) * 3, (y * info.width + (k + 1) * 28) * 3));
      return Buffer.concat(rows);
    };
    assert.deepEqual(
      frame(0),
      await sharp((await s.app.inject('/v1/faces/7/1.png')).rawPayload)
        .raw()
        .toBuffer(),
    );
    assert.deepEqual(
      frame(4),
      await sharp((await s.app.inject('/v1/faces/9/2.png')).rawPayload)
        .raw()
        .toBuffer(),
    );
    assert.notDeepEqual(frame(2), frame(0));
  });

  test('/v1/interpolate GIF is animated too', async () => {
    const res = await s.app.inject('/v1/interpolate?from=7:1&to=9:2&steps=3&format=gif');
    assert.equal(res.headers['content-type'], 'image/gif');
    assert.equal((await sharp(res.rawPayload, { animated: true }).metadata()).pages, 3);
  });
});

describe('model, health, readiness, metrics', () => {
  test('/v1/model gives the metadata, the sha256 and the limits', async () => {
    const body = JSON.parse((await s.app.inject('/v1/model')).body) as Record<string, unknown>;
    assert.equal(body.zDim, 100);
    assert.equal(body.latent, 'uniform');
    assert.deepEqual(body.image, { channels: 3, height: 28, width: 28 });
    assert.equal(body.modelSha256, s.session.info.modelSha256);
    assert.equal(body.step, 1234);
    assert.equal((body.limits as { maxImages: number }).maxImages, LIMITS.maxImages);
  });

  test('/v1/model.onnx is the model file, with its sha256 as ETag', async () => {
    const res = await s.app.inject('/v1/model.onnx');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.rawPayload, readFileSync(s.modelPath));
    assert.equal(res.headers.etag, `"${s.session.info.modelSha256}"`);
    assert.equal((await s.app.inject({ url: '/v1/model.onnx', headers: { 'if-none-match': res.headers.etag } })).statusCode, 304);
  });

  test('/healthz and /readyz', async () => {
    assert.deepEqual(JSON.parse((await s.app.inject('/healthz')).body), { status: 'ok' });
    const ready = await s.app.inject('/readyz');
    assert.equal(ready.statusCode, 200);
    assert.equal((JSON.parse(ready.body) as { status: string }).status, 'ready');
  });

  test('/metrics counts requests by route and status, batch sizes and images', async () => {
    const before = await metric('celeba_gan_images_generated_total');
    await s.app.inject('/v1/grid?seed=99&n=5');
    await s.app.inject('/v1/faces/7/0.png?upscale=0');
    const text = (await s.app.inject('/metrics')).body;
    assert.equal(await metric('celeba_gan_images_generated_total'), before + 5);
    assert.match(text, /celeba_gan_http_requests_total\{route="\/v1\/grid",method="GET",status="200"\} \d+/);
    assert.match(text, /celeba_gan_http_requests_total\{route="\/v1\/faces\/:seed\/:index\.:ext",method="GET",status="400"\} \d+/);
    assert.match(text, /celeba_gan_batch_size_bucket\{le="8"\} \d+/);
    assert.match(text, /celeba_gan_queue_depth 0/);
    assert.match(text, /celeba_gan_http_request_duration_seconds_bucket\{le="0.1",route="\/v1\/grid"\} \d+/);
  });

  test('unknown routes are 404 in the error shape', async () => {
    const res = await s.app.inject('/v2/faces/1/2.png');
    assert.equal(res.statusCode, 404);
    assert.equal(errorCode(res.body), 'E_NOT_FOUND');
  });
});

describe('static files: the page and onnxruntime-web, nothing else', () => {
  test('the page, its script and the wasm runtime are served', async () => {
    const page = await s.app.inject('/');
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<main id="grid"/);
    assert.equal((await s.app.inject('/app/web/src/main.js')).statusCode, 200);
    assert.equal((await s.app.inject('/app/src/inference/latents.js')).statusCode, 200);
    const wasm = await s.app.inject({ url: '/ort/ort-wasm-simd-threaded.wasm', method: 'HEAD' });
    assert.equal(wasm.statusCode, 200);
    assert.equal(wasm.headers['content-type'], 'application/wasm');
  });

  const escapes = [
    '/../package.json',
    '/%2e%2e/package.json',
    '/%2E%2E%2Fpackage.json',
    '/..%2fpackage.json',
    '/..%5cpackage.json',
    '/app/../../package.json',
    '/app/..%2f..%2fpackage.json',
    '/app/%2e%2e/%2e%2e/package.json',
    '/app/web/src/main.js.map/../../../../package.json',
    '/ort/..%2fpackage.json',
    '/ort/%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json',
    '/ort/../../package.json',
    '/ort/ort.node.min.mjs/..%2f..%2f..%2fpackage.json',
    '/%252e%252e/package.json',
    '/app/web/src/main.ts',
    '/ort/../package.json',
  ];
  for (const url of escapes) {
    test(`ERROR PATH - ${url} does not escape`, async () => {
      const res = await s.app.inject(url);
      assert.ok([400, 403, 404].includes(res.statusCode), `${url}: ${res.statusCode}`);
      assert.doesNotMatch(res.body, /"name": "celeba-gan"|"dependencies"/);
    });
  }
});

describe('auth token', () => {
  let t: Served;
  before(async () => {
    t = await serveTiny({ authToken: 's3cret-token' });
  });
  after(async () => {
    await t?.stop();
  });

  test('every route but /healthz needs the token; a wrong one is refused the same way', async () => {
    for (const url of [
      '/v1/faces/1/2.png',
      '/v1/model',
      '/v1/model.onnx',
      '/metrics',
      '/readyz',
      '/',
      '/app/web/src/main.js',
      '/ort/ort.wasm.min.mjs',
      '/v1/nothing',
    ]) {
      const none = await t.app.inject(url);
      assert.equal(none.statusCode, 401, url);
      assert.equal(errorCode(none.body), 'E_UNAUTHORIZED');
      assert.equal(none.headers['www-authenticate'], 'Bearer realm="celeba-gan"');
      const wrong = await t.app.inject({ url, headers: { authorization: 'Bearer s3cret-tokem' } });
      assert.equal(wrong.statusCode, 401, url);
      const right = await t.app.inject({ url, headers: { authorization: 'Bearer s3cret-token' } });
      assert.notEqual(right.statusCode, 401, url);
    }
    assert.equal((await t.app.inject('/healthz')).statusCode, 200);
  });

  test('the page opened with ?access_token= sets an HttpOnly cookie that then authorises', async () => {
    const page = await t.app.inject('/?access_token=s3cret-token');
    assert.equal(page.statusCode, 200);
    const cookie = String(page.headers['set-cookie']);
    assert.match(cookie, /^celeba_gan_token=s3cret-token; Path=\/; HttpOnly; SameSite=Strict$/);
    const face = await t.app.inject({ url: '/v1/faces/1/2.png', headers: { cookie: cookie.split(';')[0]! } });
    assert.equal(face.statusCode, 200);
    assert.equal((await t.app.inject({ url: '/v1/model', headers: { cookie: 'celeba_gan_token=nope' } })).statusCode, 401);
  });
});

describe('a full queue', () => {
  test('ERROR PATH - a full queue answers 503 E_QUEUE_FULL with Retry-After, /readyz says not ready; queued work still completes', async () => {
    const q = await serveTiny({ batcher: { maxBatch: 64, maxDelayMs: 60_000, maxQueue: 2 } });
    try {
      const waiting = q.app.inject('/v1/grid?seed=1&n=2');
      await waitFor(() => q.batcher.queued >= 2, { timeoutMs: 30_000, what: 'the grid of 2 in the queue' });
      assert.equal(q.batcher.queued, 2);
      const full = await q.app.inject('/v1/faces/7/0.png');
      assert.equal(full.statusCode, 503);
      assert.equal(errorCode(full.body), 'E_QUEUE_FULL');
      assert.match(String(full.headers['retry-after']), /^[1-9]\d*$/);
      const ready = await q.app.inject('/readyz');
      assert.equal(ready.statusCode, 503);
      assert.equal(errorCode(ready.body), 'E_QUEUE_FULL');
      assert.equal((await q.app.inject('/healthz')).statusCode, 200);
      // Shutting down flushes the queue at once instead of waiting for the 60 s delay.
      const closing = q.close();
      assert.equal((await waiting).statusCode, 200);
      await closing;
    } finally {
      await q.stop();
    }
  });
});
