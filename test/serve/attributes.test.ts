import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { attributeDraw } from '../../src/inference/attributes.js';
import { generateImages } from '../../src/inference/generate.js';
import { latentsFor } from '../../src/inference/latents.js';
import { LIMITS } from '../../src/serve/app.js';
import { RequestDraws } from '../../src/serve/attributes.js';
import { TEST_ATTRIBUTES } from '../engines/labels.js';
import { CONDITIONAL_FREQUENCIES, serveTiny, untar, type Served } from './helpers.js';

/**
 * attr= on a conditional model (issue 20 §3): the face, grid, batch and interpolate routes draw
 * each face's label row as `generate --attr` does (generateImages with an attributeDraw, the
 * path the CLI takes), so the bytes are the same; the ETag carries the canonical request; bad
 * requests are 400s with the registry's code and the model's attribute names.
 */

let s: Served;
let plain: Served;
before(async () => {
  s = await serveTiny({ conditional: true });
  plain = await serveTiny();
});
after(async () => {
  await s?.stop();
  await plain?.stop();
});

/** generateImages (what `generate --attr` runs) into a fresh folder: file name -> bytes. */
async function generated(opts: {
  seed: number;
  index: number;
  n: number;
  attr?: string;
  format?: 'png' | 'webp';
  upscale?: number;
}): Promise<Map<string, Buffer>> {
  const outDir = join(s.dir, `gen-${Math.random().toString(36).slice(2)}`);
  const { info } = s.session;
  await generateImages(s.session, {
    outDir,
    seed: opts.seed,
    startIndex: opts.index,
    n: opts.n,
    format: opts.format,
    upscale: opts.upscale,
    attributes: attributeDraw(info.attributes, opts.attr, info.modelPath),
  });
  const files = readdirSync(outDir).filter((f) => f.startsWith('face-'));
  return new Map(files.map((f) => [f, readFileSync(join(outDir, f))]));
}

const raw = async (png: Buffer): Promise<Buffer> => sharp(png).raw().toBuffer();

describe('GET /v1/faces with attr=: the bytes generate --attr writes', () => {
  const cases: { url: string; seed: number; index: number; attr?: string; format?: 'png' | 'webp'; upscale?: number }[] = [
    { url: '/v1/faces/7/3.png?attr=Smiling,-Eyeglasses', seed: 7, index: 3, attr: 'Smiling,-Eyeglasses' },
    { url: '/v1/faces/7/3.png?attr=-Smiling', seed: 7, index: 3, attr: '-Smiling' },
    { url: '/v1/faces/11/0.webp?attr=Blond_Hair&upscale=2', seed: 11, index: 0, attr: 'Blond_Hair', format: 'webp', upscale: 2 },
    // No attr= on a conditional model: every attribute drawn from the training rows, as generate without --attr.
    { url: '/v1/faces/7/3.png', seed: 7, index: 3 },
  ];
  for (const c of cases) {
    test(c.url, async () => {
      const res = await s.app.inject(c.url);
      assert.equal(res.statusCode, 200, res.body);
      const files = await generated({ ...c, n: 1 });
      assert.deepEqual(res.rawPayload, [...files.values()][0]);
    });
  }

  test('the attributes act: Smiling and -Smiling of one face differ, and a request names its attributes in any order', async () => {
    const on = await s.app.inject('/v1/faces/7/3.png?attr=Smiling,-Eyeglasses');
    const off = await s.app.inject('/v1/faces/7/3.png?attr=-Smiling,-Eyeglasses');
    assert.notDeepEqual(await raw(on.rawPayload), await raw(off.rawPayload));
    const reordered = await s.app.inject('/v1/faces/7/3.png?attr=-Eyeglasses,%20%2BSmiling');
    assert.equal(reordered.statusCode, 200, reordered.body);
    assert.deepEqual(reordered.rawPayload, on.rawPayload);
    // The same canonical request is the same resource: one ETag.
    assert.equal(reordered.headers.etag, on.headers.etag);
  });

  test('the ETag depends on the canonical request; If-None-Match with it gives 304', async () => {
    const urls = ['/v1/faces/7/1.png', '/v1/faces/7/1.png?attr=Smiling', '/v1/faces/7/1.png?attr=-Smiling', '/v1/faces/7/1.png?attr=Smiling,Blond_Hair'];
    const tags = await Promise.all(urls.map(async (url) => (await s.app.inject({ url, method: 'HEAD' })).headers.etag as string));
    assert.equal(new Set(tags).size, urls.length);
    // attr= naming nothing draws every attribute, as no attr= does: the same face, the same tag.
    assert.equal((await s.app.inject({ url: '/v1/faces/7/1.png?attr=', method: 'HEAD' })).headers.etag, tags[0]);
    const again = await s.app.inject({ url: '/v1/faces/7/1.png?attr=Smiling', headers: { 'if-none-match': tags[1]! } });
    assert.equal(again.statusCode, 304);
  });
});

describe('grid, batch and interpolate with attr=', () => {
  test('GET /v1/batch: the files generate --attr writes, by name and bytes', async () => {
    const res = await s.app.inject('/v1/batch?seed=7&start=2&n=5&attr=Eyeglasses');
    assert.equal(res.statusCode, 200, res.body);
    const files = untar(res.rawPayload);
    const expected = await generated({ seed: 7, index: 2, n: 5, attr: 'Eyeglasses' });
    assert.deepEqual(
      files.map((f) => f.name),
      [...expected.keys()].sort(),
    );
    for (const f of files) assert.deepEqual(f.data, expected.get(f.name), f.name);
  });

  test('GET /v1/grid: tile i is face i of the same request', async () => {
    const res = await s.app.inject('/v1/grid?seed=7&n=4&upscale=1&cols=2&attr=-Smiling,Blond_Hair');
    assert.equal(res.statusCode, 200, res.body);
    const { data, info } = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    const face = await raw((await s.app.inject('/v1/faces/7/3.png?attr=-Smiling,Blond_Hair')).rawPayload);
    const x0 = 2 + 30;
    const y0 = 2 + 30;
    for (let y = 0; y < 28; y++) {
      const tileRow = data.subarray(((y0 + y) * info.width + x0) * 3, ((y0 + y) * info.width + x0 + 28) * 3);
      assert.deepEqual(tileRow, face.subarray(y * 28 * 3, (y + 1) * 28 * 3), `row ${y} of tile 3`);
    }
    const other = await s.app.inject('/v1/grid?seed=7&n=4&upscale=1&cols=2&attr=Smiling,Blond_Hair');
    assert.notDeepEqual(other.rawPayload, res.rawPayload);
  });

  test('GET /v1/interpolate: the strip starts and ends with the two faces of the request; its ETag carries attr=', async () => {
    const url = '/v1/interpolate?from=7:1&to=9:2&steps=5&upscale=1&format=png&attr=Smiling';
    const strip = await s.app.inject(url);
    assert.equal(strip.statusCode, 200, strip.body);
    const { data, info } = await sharp(strip.rawPayload).raw().toBuffer({ resolveWithObject: true });
    const frame = (k: number): Buffer =>
      Buffer.concat(Array.from({ length: 28 }, (_, y) => data.subarray((y * info.width + k * 28) * 3, (y * info.width + (k + 1) * 28) * 3)));
    assert.deepEqual(frame(0), await raw((await s.app.inject('/v1/faces/7/1.png?attr=Smiling')).rawPayload));
    assert.deepEqual(frame(4), await raw((await s.app.inject('/v1/faces/9/2.png?attr=Smiling')).rawPayload));
    const plainWalk = await s.app.inject(url.replace('&attr=Smiling', '&attr=-Smiling'));
    assert.notEqual(plainWalk.headers.etag, strip.headers.etag);
    assert.notDeepEqual(plainWalk.rawPayload, strip.rawPayload);
  });

  test('GET /v1/interpolate?walk=NAME: one face with NAME going from -1 to +1; the ends are the faces with it off and on', async () => {
    const url = '/v1/interpolate?from=7:1&walk=Smiling&steps=5&upscale=1&format=png&attr=-Eyeglasses,Blond_Hair';
    const strip = await s.app.inject(url);
    assert.equal(strip.statusCode, 200, strip.body);
    const { data, info } = await sharp(strip.rawPayload).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [5 * 28, 28]);
    const frame = (k: number): Buffer =>
      Buffer.concat(Array.from({ length: 28 }, (_, y) => data.subarray((y * info.width + k * 28) * 3, (y * info.width + (k + 1) * 28) * 3)));
    // Every attribute named, so the face route's row is the walk's end row exactly.
    assert.deepEqual(frame(0), await raw((await s.app.inject('/v1/faces/7/1.png?attr=-Smiling,-Eyeglasses,Blond_Hair')).rawPayload));
    assert.deepEqual(frame(4), await raw((await s.app.inject('/v1/faces/7/1.png?attr=Smiling,-Eyeglasses,Blond_Hair')).rawPayload));
    assert.notDeepEqual(frame(2), frame(0));
    assert.notDeepEqual(frame(2), frame(4));
    const looped = await s.app.inject(`${url}&loop=true`);
    assert.equal((await sharp(looped.rawPayload).metadata()).width, 8 * 28);
    assert.notEqual(looped.headers.etag, strip.headers.etag);
    const other = await s.app.inject(url.replace('walk=Smiling', 'walk=Eyeglasses').replace('-Eyeglasses', '-Smiling'));
    assert.equal(other.statusCode, 200, other.body);
    assert.notEqual(other.headers.etag, strip.headers.etag);
  });

  test('POST /v1/generate takes a label row per latent: the face of GET /v1/faces for the same z and row', async () => {
    const { info } = s.session;
    const z = Array.from(latentsFor(7, 3, 1, info.zDim, info.latent));
    const row = Array.from(attributeDraw(info.attributes, 'Smiling,-Eyeglasses')!.rowsFor(7, 3, 1));
    const res = await s.app.inject({ method: 'POST', url: '/v1/generate', payload: { z: [z], attributes: [row] } });
    assert.equal(res.statusCode, 200, res.body);
    const face = await s.app.inject('/v1/faces/7/3.png?attr=Smiling,-Eyeglasses');
    assert.deepEqual(Buffer.from((JSON.parse(res.body) as { images: string[] }).images[0]!, 'base64'), face.rawPayload);
  });
});

describe('RequestDraws: one draw per canonical request, the most recent ones kept', () => {
  test('the same request in any spelling is the same draw object; the least recently used one leaves first', () => {
    const draws = new RequestDraws(s.session.info, 2);
    const smiling = draws.get('Smiling,-Eyeglasses');
    assert.equal(draws.get(' -Eyeglasses , +Smiling'), smiling);
    const blond = draws.get('Blond_Hair');
    assert.equal(draws.get('Smiling,-Eyeglasses'), smiling); // now the most recently used
    const everything = draws.get(undefined);
    assert.equal(draws.get(''), everything, 'no attr= and an empty one are one request');
    assert.equal(draws.get('Smiling,-Eyeglasses'), smiling, 'still kept: used after Blond_Hair');
    assert.notEqual(draws.get('Blond_Hair'), blond, 'evicted when a third request came while two were kept');
    assert.equal(new RequestDraws(plain.session.info).get(undefined), undefined);
  });
});

describe('GET /v1/model lists the attributes', () => {
  test('names, frequencies and training rows for a conditional model; null for an unconditional one', async () => {
    const body = JSON.parse((await s.app.inject('/v1/model')).body) as {
      attributes: { names: string[]; frequencies: number[]; rows: { images: number; rows: string; counts: number[] } };
      limits: { maxAttrLength: number };
    };
    assert.deepEqual(body.attributes.names, TEST_ATTRIBUTES);
    assert.deepEqual(body.attributes.frequencies, CONDITIONAL_FREQUENCIES);
    assert.equal(body.attributes.rows.images, 200);
    assert.equal(
      body.attributes.rows.counts.reduce((a, b) => a + b, 0),
      200,
    );
    assert.equal(body.limits.maxAttrLength, LIMITS.maxAttrLength);
    const none = JSON.parse((await plain.app.inject('/v1/model')).body) as { attributes: unknown };
    assert.equal(none.attributes, null);
  });
});

describe('ERROR PATH - bad attr= values are 400s with the code and the model attribute names', () => {
  const names = [...TEST_ATTRIBUTES];
  const cases: { name: string; attr: string; code: string; message: RegExp }[] = [
    {
      name: 'an unknown name',
      attr: 'Smiling,Bald',
      code: 'E_ATTR_UNKNOWN',
      message: /has no attribute "Bald"; its attributes: Smiling, Eyeglasses, Blond_Hair/,
    },
    { name: 'a wrong case', attr: 'smiling', code: 'E_ATTR_UNKNOWN', message: /did you mean "Smiling"/ },
    { name: 'an empty item', attr: 'Smiling,,Eyeglasses', code: 'E_ATTR_REQUEST', message: /attribute 2 of the request "Smiling,,Eyeglasses" is empty/ },
    { name: 'a double sign', attr: '--Smiling', code: 'E_ATTR_REQUEST', message: /is "--Smiling"/ },
    { name: 'a name twice', attr: 'Smiling,Smiling', code: 'E_ATTR_DUPLICATE', message: /names Smiling twice/ },
    { name: 'a name both ways', attr: 'Smiling,-Smiling', code: 'E_ATTR_CONFLICT', message: /asks for both Smiling and -Smiling/ },
  ];
  const routes = ['/v1/faces/7/1.png?', '/v1/grid?seed=7&', '/v1/batch?seed=7&n=2&', '/v1/interpolate?from=7:1&to=7:2&'];
  for (const c of cases) {
    test(`${c.name}: ${c.code} on every route`, async () => {
      for (const route of routes) {
        const res = await s.app.inject(`${route}attr=${encodeURIComponent(c.attr)}`);
        assert.equal(res.statusCode, 400, `${route}: ${res.body}`);
        const { error } = JSON.parse(res.body) as { error: { code: string; message: string; hint: string; attributes: string[] } };
        assert.equal(error.code, c.code, route);
        assert.match(error.message, c.message);
        assert.match(error.message, /cond\.onnx|request/);
        assert.doesNotMatch(error.message, new RegExp(s.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the server folder stays private');
        assert.deepEqual(error.attributes, names);
        assert.ok(error.hint.length > 0);
      }
    });
  }

  test('attr= on an unconditional model is E_NOT_CONDITIONAL on every route, with no attributes listed', async () => {
    for (const route of routes) {
      for (const attr of ['Smiling', '']) {
        const res = await plain.app.inject(`${route}attr=${attr}`);
        assert.equal(res.statusCode, 400, res.body);
        const { error } = JSON.parse(res.body) as { error: { code: string; message: string; attributes: string[] } };
        assert.equal(error.code, 'E_NOT_CONDITIONAL');
        assert.match(error.message, /tiny\.onnx is unconditional: it has no attributes/);
        assert.deepEqual(error.attributes, []);
      }
    }
  });

  test('walk= names one attribute of a conditional model, unsigned, not set by attr=, instead of to=', async () => {
    const cases: [Served, string, string, RegExp][] = [
      [s, 'walk=Bald', 'E_ATTR_UNKNOWN', /has no attribute "Bald"; its attributes: Smiling, Eyeglasses, Blond_Hair/],
      [s, 'walk=-Smiling', 'E_ATTR_REQUEST', /walk= names one attribute, without a sign, but received "-Smiling"/],
      [s, 'walk=Smiling,Eyeglasses', 'E_ATTR_REQUEST', /walk= names one attribute/],
      [s, 'walk=', 'E_ATTR_REQUEST', /walk= names one attribute/],
      [
        s,
        'walk=Smiling&attr=Blond_Hair,-Smiling',
        'E_ATTR_CONFLICT',
        /walk=Smiling walks Smiling from -1 to \+1, but attr= "-Smiling,Blond_Hair" also sets it/,
      ],
      [s, 'walk=Smiling&to=7:2', 'E_BAD_ARGUMENT', /querystring must match exactly one schema in oneOf/],
      [s, 'walk=Smiling&slerp=true', 'E_BAD_ARGUMENT', /an attribute walk \(walk=\) keeps one latent/],
      [plain, 'walk=Smiling', 'E_NOT_CONDITIONAL', /tiny\.onnx is unconditional/],
    ];
    for (const [server, query, code, message] of cases) {
      const res = await server.app.inject(`/v1/interpolate?from=7:1&${query}`);
      assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
      const { error } = JSON.parse(res.body) as { error: { code: string; message: string } };
      assert.equal(error.code, code, query);
      assert.match(error.message, message, query);
    }
  });

  test(`attr= longer than ${LIMITS.maxAttrLength} characters is refused by the schema before it is parsed`, async () => {
    const long = Array.from({ length: 200 }, () => 'Smiling').join(',');
    assert.ok(long.length > LIMITS.maxAttrLength);
    const res = await s.app.inject(`/v1/faces/7/1.png?attr=${long}`);
    assert.equal(res.statusCode, 400);
    const { error } = JSON.parse(res.body) as { error: { code: string; message: string } };
    assert.equal(error.code, 'E_BAD_ARGUMENT');
    assert.match(error.message, new RegExp(`querystring/attr must NOT have more than ${LIMITS.maxAttrLength} characters`));
  });

  test('POST /v1/generate: a conditional model needs one row per latent; an unconditional one takes none', async () => {
    const { info } = s.session;
    const z = Array.from(latentsFor(7, 3, 1, info.zDim, info.latent));
    const missing = await s.app.inject({ method: 'POST', url: '/v1/generate', payload: { z: [z] } });
    assert.equal(missing.statusCode, 400);
    assert.match(missing.body, /"code":"E_NO_LABELS".*conditional on 3 attributes \(Smiling, Eyeglasses, Blond_Hair\): 1 latents need 1 label rows/);
    const short = await s.app.inject({ method: 'POST', url: '/v1/generate', payload: { z: [z, z], attributes: [[1, 1, 1]] } });
    assert.match(short.body, /"code":"E_NO_LABELS".*but the request has 1 rows of body\/attributes/);
    const outOfRange = await s.app.inject({ method: 'POST', url: '/v1/generate', payload: { z: [z], attributes: [[1, 2, 1]] } });
    assert.match(outOfRange.body, /"code":"E_BAD_ARGUMENT".*body\/attributes\/0\/1 must be <= 1/);
    const wrongWidth = await s.app.inject({ method: 'POST', url: '/v1/generate', payload: { z: [z], attributes: [[1, 1]] } });
    assert.match(wrongWidth.body, /"code":"E_BAD_ARGUMENT".*body\/attributes\/0 must NOT have fewer than 3 items/);
    const pz = Array.from(latentsFor(7, 3, 1, plain.session.info.zDim, plain.session.info.latent));
    const unconditional = await plain.app.inject({ method: 'POST', url: '/v1/generate', payload: { z: [pz], attributes: [[1]] } });
    assert.equal(unconditional.statusCode, 400);
    assert.match(unconditional.body, /"code":"E_NOT_CONDITIONAL".*tiny\.onnx is unconditional/);
  });
});
