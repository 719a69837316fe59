import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import { latentsFor } from '../../src/inference/latents.js';
import { parseFaceRef, walkFrameCount, walkLatents } from '../../src/inference/interpolate.js';
import { cli } from '../support/in-process.js';
import { tempDir, writeTinyModel } from './fixtures.js';

/** Latent walks (src/inference/interpolate.ts) and `celeba-gan interpolate`. */

const dir = tempDir('cg-interp-');
const model = writeTinyModel(join(dir, 'models'));
const normalModel = writeTinyModel(join(dir, 'models'), 'normal.onnx', { preset: 'dcgan64' });
after(() => rmSync(dir, { recursive: true, force: true }));

const norm = (v: Float32Array): number => Math.hypot(...v);

describe('walkLatents', () => {
  test("keyframes are exact copies of the faces' latents; frame counts with and without loop", () => {
    const keys = [parseFaceRef('7:3', 'a'), parseFaceRef('9:0', 'b'), parseFaceRef('1:42', 'c')];
    const z = walkLatents(keys, 100, 'uniform', { steps: 5 });
    assert.equal(z.length / 100, walkFrameCount(3, 5, false));
    assert.equal(walkFrameCount(3, 5, false), 9);
    assert.deepEqual(z.subarray(0, 100), latentsFor(7, 3, 1, 100, 'uniform'));
    assert.deepEqual(z.subarray(4 * 100, 5 * 100), latentsFor(9, 0, 1, 100, 'uniform'));
    assert.deepEqual(z.subarray(8 * 100, 9 * 100), latentsFor(1, 42, 1, 100, 'uniform'));
    const loop = walkLatents(keys, 100, 'uniform', { steps: 5, loop: true });
    assert.equal(loop.length / 100, 12);
    // The loop's last frame is one step before the first keyframe again, not a copy of it.
    assert.notDeepEqual(loop.subarray(11 * 100), latentsFor(7, 3, 1, 100, 'uniform'));
  });

  test('truncation applies to the keyframes as generate applies it', () => {
    const z = walkLatents([parseFaceRef('7:3', 'a'), parseFaceRef('7:4', 'b')], 100, 'uniform', { steps: 2, truncation: 0.5 });
    assert.deepEqual(z.subarray(0, 100), latentsFor(7, 3, 1, 100, 'uniform', 0.5));
  });

  test('lerp goes in a straight line; slerp keeps normal latents on their shell', () => {
    const keys = [parseFaceRef('7:3', 'a'), parseFaceRef('7:4', 'b')];
    const a = latentsFor(7, 3, 1, 100, 'normal');
    const b = latentsFor(7, 4, 1, 100, 'normal');
    const lerp = walkLatents(keys, 100, 'normal', { steps: 3, slerp: false }).subarray(100, 200);
    for (let i = 0; i < 100; i++) assert.ok(Math.abs(lerp[i]! - (a[i]! + b[i]!) / 2) < 1e-6);
    // Default for normal latents: slerp. Its midpoint's norm stays near the ends' (~10 for z_dim 100);
    // a straight line's midpoint falls to ~7 for two near-orthogonal latents.
    const slerp = walkLatents(keys, 100, 'normal', { steps: 3 }).subarray(100, 200);
    const ends = (norm(a) + norm(b)) / 2;
    assert.ok(Math.abs(norm(slerp) - ends) < 0.05 * ends, `slerp ${norm(slerp)} vs ${ends}`);
    assert.ok(norm(lerp) < 0.85 * ends, `lerp ${norm(lerp)} vs ${ends}`);
  });

  test('BAD CALL - faces, steps and truncation are checked', () => {
    for (const text of ['7', '7:', ':3', '7:3:1', '-1:3', '7:x', '4294967296:0', ' 7:3']) {
      assert.throws(() => parseFaceRef(text, 'from'), {
        code: 'E_BAD_ARGUMENT',
        message: new RegExp(`for from but received "${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`),
      });
    }
    const keys = [parseFaceRef('1:1', 'a'), parseFaceRef('1:2', 'b')];
    assert.throws(() => walkLatents(keys, 100, 'uniform', { steps: 1 }), { code: 'E_BAD_ARGUMENT', message: /for steps but received 1/ });
    assert.throws(() => walkLatents(keys, 100, 'uniform', { steps: 4, truncation: 1.5 }), { code: 'E_BAD_ARGUMENT', message: /for truncation/ });
    assert.throws(() => walkLatents(keys.slice(0, 1), 100, 'uniform', { steps: 4 }), { code: 'E_BAD_ARGUMENT' });
  });
});

describe('celeba-gan interpolate', () => {
  test('frame 0 and the last frame are byte-identical to generate --seed S --index I with the same options', async () => {
    const frames = join(dir, 'frames');
    const out = join(dir, 'walk.webp');
    const r = await cli(
      'interpolate',
      '7:3',
      '9:5',
      '--model',
      model,
      '--steps',
      '6',
      '--upscale',
      '2',
      '--truncation',
      '0.8',
      '--frames',
      frames,
      '--out',
      out,
      '--provider',
      'cpu',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*walk\.webp \(6 frames, webp, 12 fps, 56x56\)/);
    assert.match(r.stdout, /frame 0 is tiny\.onnx's face: celeba-gan generate --seed 7 --index 3 --upscale 2 --truncation 0\.8/);
    assert.deepEqual(readdirSync(frames).sort(), [
      'frame-000000.png',
      'frame-000001.png',
      'frame-000002.png',
      'frame-000003.png',
      'frame-000004.png',
      'frame-000005.png',
    ]);
    for (const [seed, index, frame] of [
      [7, 3, 'frame-000000.png'],
      [9, 5, 'frame-000005.png'],
    ] as const) {
      const gen = join(dir, `gen-${seed}`);
      const g = await cli(
        'generate',
        '--model',
        model,
        '--seed',
        String(seed),
        '--index',
        String(index),
        '--upscale',
        '2',
        '--truncation',
        '0.8',
        '--out',
        gen,
        '--provider',
        'cpu',
      );
      assert.equal(g.code, 0, g.stderr);
      assert.deepEqual(readFileSync(join(frames, frame)), readFileSync(join(gen, `face-${String(index).padStart(6, '0')}.png`)));
    }
    const meta = await sharp(out, { animated: true }).metadata();
    assert.equal(meta.format, 'webp');
    assert.equal(meta.pages, 6);
    assert.deepEqual([meta.width, meta.pageHeight], [56, 56]);
    assert.deepEqual(
      meta.delay,
      Array.from({ length: 6 }, () => 83),
    );
  });

  test('deterministic: the same walk twice gives the same bytes; GIF and PNG strip by extension', async () => {
    const a = join(dir, 'a.gif');
    const b = join(dir, 'b.gif');
    for (const out of [a, b]) {
      const r = await cli('interpolate', '7:0', '7:1', '7:2', '--loop', '--steps', '4', '--model', model, '--out', out, '--provider', 'cpu');
      assert.equal(r.code, 0, r.stderr);
    }
    assert.deepEqual(readFileSync(a), readFileSync(b));
    const gif = await sharp(a, { animated: true }).metadata();
    assert.equal(gif.format, 'gif');
    assert.equal(gif.pages, 9);
    const strip = join(dir, 'strip.png');
    const r = await cli('interpolate', '7:0', '7:1', '--steps', '5', '--upscale', '1', '--model', model, '--out', strip, '--provider', 'cpu');
    assert.equal(r.code, 0, r.stderr);
    const meta = await sharp(strip).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 5 * 28, 28]);
  });

  test('no faces named: random ones from a printed seed; the printed faces give the same walk', async () => {
    const out1 = join(dir, 'r1.png');
    const r = await cli('interpolate', '--seed', '11', '--steps', '3', '--upscale', '1', '--model', normalModel, '--out', out1, '--provider', 'cpu');
    assert.equal(r.code, 0, r.stderr);
    const m = /random faces (\d+:\d+) (\d+:\d+) /.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.match(r.stderr, /slerp/);
    const out2 = join(dir, 'r2.png');
    const again = await cli('interpolate', m[1]!, m[2]!, '--steps', '3', '--upscale', '1', '--model', normalModel, '--out', out2, '--provider', 'cpu');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(readFileSync(out1), readFileSync(out2));
  });

  test('BAD CALL - bad faces, one face, unknown output format, existing output', async () => {
    const bad = await cli('interpolate', '7:x', '7:1', '--model', model);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /E_BAD_ARGUMENT.*for face 1 but received "7:x"/);
    const one = await cli('interpolate', '7:1', '--model', model);
    assert.equal(one.code, 2);
    assert.match(one.stderr, /E_BAD_ARGUMENT.*at least 2 faces/);
    const bmp = await cli('interpolate', '7:0', '7:1', '--model', model, '--out', join(dir, 'x.bmp'));
    assert.equal(bmp.code, 2);
    assert.match(bmp.stderr, /E_BAD_ARGUMENT.*x\.bmp.*\.webp, \.gif, \.png/);
    const steps = await cli('interpolate', '7:0', '7:1', '--model', model, '--steps', '1');
    assert.equal(steps.code, 2);
    assert.match(steps.stderr, /for steps but received 1/);
    const existing = join(dir, 'exists.webp');
    assert.equal((await cli('interpolate', '7:0', '7:1', '--model', model, '--out', existing, '--steps', '2')).code, 0);
    const again = await cli('interpolate', '7:0', '7:1', '--model', model, '--out', existing, '--steps', '2');
    assert.equal(again.code, 2);
    assert.match(again.stderr, /E_OUTPUT_EXISTS/);
    assert.ok(existsSync(existing));
    const frames = join(dir, 'frames-again');
    assert.equal((await cli('interpolate', '7:0', '7:1', '--model', model, '--out', join(dir, 'fa1.webp'), '--steps', '2', '--frames', frames)).code, 0);
    const framesAgain = await cli('interpolate', '7:0', '7:1', '--model', model, '--out', join(dir, 'fa2.webp'), '--steps', '2', '--frames', frames);
    assert.equal(framesAgain.code, 2);
    assert.match(framesAgain.stderr, /E_OUTPUT_EXISTS.*frame-000000\.png/);
  });
});
