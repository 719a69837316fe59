import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MANIFEST_NAME } from '../../src/inference/manifest.js';
import { serveTiny, type Served } from '../serve/helpers.js';
import { cli } from '../support/in-process.js';
import { writeTinyModel } from './fixtures.js';

/**
 * `generate --attr` and `interpolate --attr / --walk` on a conditional model (issue 20 §3): the
 * CLI's bytes equal the server's for the same request (the server's equal generateImages', see
 * test/serve/attributes.test.ts), the batch size does not change them, and bad requests are
 * usage errors naming the model's attributes.
 */

let s: Served;
let plainModel: string;
before(async () => {
  s = await serveTiny({ conditional: true });
  plainModel = writeTinyModel(join(s.dir, 'models'), 'plain.onnx');
});
after(async () => {
  await s?.stop();
});

function faces(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.png') && f.startsWith('face-'))
    .sort();
}

describe('generate --attr', () => {
  test('the faces are the server faces for the same attr=, whatever the batch size; the manifest keeps the canonical request', async () => {
    const a = join(s.dir, 'gen-a');
    const b = join(s.dir, 'gen-b');
    const r = await cli('generate', '--model', s.modelPath, '--out', a, '--seed', '7', '--n', '5', '--attr=-Eyeglasses, +Smiling');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /attributes Smiling,-Eyeglasses \(the others drawn from the training rows\)/);
    const r2 = await cli('generate', '--model', s.modelPath, '--out', b, '--seed', '7', '--n', '5', '--batch-size', '2', '--attr', 'Smiling,-Eyeglasses');
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(faces(a), faces(b));
    for (const [i, name] of faces(a).entries()) {
      const bytes = readFileSync(join(a, name));
      assert.deepEqual(readFileSync(join(b, name)), bytes, `${name}: batch size 2 vs the default`);
      const served = await s.app.inject(`/v1/faces/7/${i}.png?attr=Smiling,-Eyeglasses`);
      assert.equal(served.statusCode, 200, served.body);
      assert.deepEqual(served.rawPayload, bytes, `${name}: the server's face ${i} for the same request`);
    }
    const manifest = readFileSync(join(a, MANIFEST_NAME), 'utf8');
    assert.match(manifest, /"attr":"Smiling,-Eyeglasses"/);
  });

  test('another request gives other faces from the same latents; no --attr draws every attribute (as the server without attr=)', async () => {
    const on = join(s.dir, 'gen-on');
    const off = join(s.dir, 'gen-off');
    const any = join(s.dir, 'gen-any');
    assert.equal((await cli('generate', '--model', s.modelPath, '--out', on, '--seed', '3', '--n', '2', '--attr', 'Smiling')).code, 0);
    assert.equal((await cli('generate', '--model', s.modelPath, '--out', off, '--seed', '3', '--n', '2', '--attr=-Smiling')).code, 0);
    assert.equal((await cli('generate', '--model', s.modelPath, '--out', any, '--seed', '3', '--n', '2')).code, 0);
    assert.notDeepEqual(readFileSync(join(on, 'face-000000.png')), readFileSync(join(off, 'face-000000.png')));
    const served = await s.app.inject('/v1/faces/3/1.png');
    assert.deepEqual(served.rawPayload, readFileSync(join(any, 'face-000001.png')));
  });

  test('ERROR PATH - --attr on an unconditional model, an unknown name, a name twice, both ways: usage errors listing the attributes', async () => {
    const cases: [string, string, RegExp][] = [
      [plainModel, 'Smiling', /\[E_NOT_CONDITIONAL\]: attributes were asked for \("Smiling"\), but model plain\.onnx is unconditional/],
      [s.modelPath, 'Bald', /\[E_ATTR_UNKNOWN\]: .*"Bald".*its attributes: Smiling, Eyeglasses, Blond_Hair/],
      [s.modelPath, 'Smiling,Smiling', /\[E_ATTR_DUPLICATE\]/],
      [s.modelPath, 'Smiling,-Smiling', /\[E_ATTR_CONFLICT\]/],
      [s.modelPath, 'Smiling,,Eyeglasses', /\[E_ATTR_REQUEST\]/],
    ];
    for (const [model, attr, message] of cases) {
      const out = join(s.dir, 'gen-bad');
      const r = await cli('generate', '--model', model, '--out', out, '--seed', '1', '--n', '2', `--attr=${attr}`);
      assert.equal(r.code, 2, `${attr}: ${r.stderr}`);
      assert.match(r.stderr, message, attr);
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('interpolate --attr and --walk', () => {
  test('--walk NAME on one face: the strip is the server walk=NAME strip; the first and last frames hold the attribute off and on', async () => {
    const out = join(s.dir, 'walk.png');
    const r = await cli(
      'interpolate',
      '7:3',
      '--walk',
      'Smiling',
      '--attr=-Eyeglasses',
      '--model',
      s.modelPath,
      '--out',
      out,
      '--steps',
      '4',
      '--upscale',
      '1',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /7:3 with Smiling from -1 to \+1, attributes -Eyeglasses, 4 frames/);
    const served = await s.app.inject('/v1/interpolate?from=7:3&walk=Smiling&steps=4&upscale=1&format=png&attr=-Eyeglasses');
    assert.equal(served.statusCode, 200, served.body);
    assert.deepEqual(readFileSync(out), served.rawPayload);
  });

  test('a walk between faces with --attr is the server walk with attr=; frame 0 is generate --attr face', async () => {
    const out = join(s.dir, 'faces-walk.png');
    const frames = join(s.dir, 'frames');
    const r = await cli(
      'interpolate',
      '7:1',
      '7:2',
      '--attr',
      'Blond_Hair',
      '--model',
      s.modelPath,
      '--out',
      out,
      '--steps',
      '3',
      '--upscale',
      '1',
      '--frames',
      frames,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /frame 0 is cond\.onnx's face: celeba-gan generate --seed 7 --index 1 --attr=Blond_Hair/);
    const served = await s.app.inject('/v1/interpolate?from=7:1&to=7:2&steps=3&upscale=1&format=png&attr=Blond_Hair');
    assert.deepEqual(readFileSync(out), served.rawPayload);
    const face = await s.app.inject('/v1/faces/7/1.png?attr=Blond_Hair');
    assert.deepEqual(readFileSync(join(frames, 'frame-000000.png')), face.rawPayload);
  });

  test('ERROR PATH - --walk with two faces, a signed or unknown name, a name --attr sets, --slerp, or an unconditional model', async () => {
    const cases: [string[], RegExp][] = [
      [['7:1', '7:2', '--walk', 'Smiling'], /\[E_BAD_ARGUMENT\]: --walk Smiling walks an attribute on one face, but 2 faces were named/],
      [['7:1', '--walk=-Smiling'], /\[E_ATTR_REQUEST\]: --walk names one attribute, without a sign, but received "-Smiling"/],
      [['7:1', '--walk', 'Bald'], /\[E_ATTR_UNKNOWN\]: .*its attributes: Smiling, Eyeglasses, Blond_Hair/],
      [['7:1', '--walk', 'Smiling', '--attr=-Smiling'], /\[E_ATTR_CONFLICT\]: --walk Smiling walks Smiling from -1 to \+1, but --attr "-Smiling" also sets it/],
      [['7:1', '--walk', 'Smiling', '--slerp'], /\[E_BAD_ARGUMENT\]: --slerp shapes a walk between faces/],
    ];
    for (const [args, message] of cases) {
      const r = await cli('interpolate', ...args, '--model', s.modelPath, '--out', join(s.dir, 'bad.webp'), '--steps', '2');
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    const plain = await cli('interpolate', '7:1', '--walk', 'Smiling', '--model', plainModel, '--out', join(s.dir, 'bad.webp'));
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /\[E_NOT_CONDITIONAL\]/);
  });
});
