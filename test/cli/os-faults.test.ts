import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { tempDir, writeTinyModel } from '../inference/fixtures.js';
import { readOnlyBind, smallTmpfs } from '../support/mounts.js';
import { cli } from '../support/in-process.js';

/**
 * OS faults through the real commands, on real mounts: a new output path under a read-only
 * mount (Node's recursive mkdir says ENOENT there) and a full disk. Skipped, with the reason,
 * where this process cannot mount.
 */

const dir = tempDir('cg-os-faults-');
const model = writeTinyModel(join(dir, 'models'));
const data = join(dir, 'data', 'synthetic-28.cgds');
const ro = join(dir, 'ro');
const readOnly = readOnlyBind(join(dir, 'source'), ro);
const full = join(dir, 'full');
// One 4 kB page: the tiny model's 8-frame strip at upscale 4 is larger.
const tiny = smallTmpfs(full, 4096);
after(() => {
  readOnly.unmount();
  tiny.unmount();
  rmSync(dir, { recursive: true, force: true });
});

describe('ERROR PATH - a new output path on a read-only mount: E_READ_ONLY naming it, exit 2', { skip: readOnly.skip ?? false }, () => {
  test.before(() => prepareSynthetic({ count: 64, out: data, size: 28, seed: 1 }));
  const cases: [string, string[], string][] = [
    ['train', ['train', '--data', data, '--out', join(ro, 'runs', 'r'), '--width', '0.0625', '--steps', '1', '--engine', 'tfjs'], join(ro, 'runs', 'r')],
    ['generate', ['generate', '--model', model, '--out', join(ro, 'gen'), '-n', '2', '--provider', 'cpu'], join(ro, 'gen')],
    ['prepare', ['prepare', '--synthetic', '4', '--size', '8', '--out', join(ro, 'data', 'x.cgds')], join(ro, 'data')],
    [
      'interpolate',
      ['interpolate', '1:0', '1:1', '--steps', '2', '--upscale', '1', '--model', model, '--out', join(ro, 'walks', 'w.png'), '--provider', 'cpu'],
      join(ro, 'walks'),
    ],
  ];
  for (const [name, args, path] of cases) {
    test(name, async () => {
      const r = await cli(...args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`error \\[E_READ_ONLY\\]: cannot .*${escapeRegExp(path)}: ${escapeRegExp(path)} is on a read-only file system \\(EROFS\\)`),
      );
      assert.doesNotMatch(r.stderr, /unexpected error|ENOENT/);
      assert.equal(existsSync(path), false);
    });
  }
});

test('ERROR PATH - interpolate out of space: E_NO_SPACE naming --out, exit 1 like every other command', { skip: tiny.skip ?? false }, async () => {
  const out = join(full, 'walk.png');
  const r = await cli('interpolate', '1:0', '1:1', '--steps', '8', '--upscale', '4', '--model', model, '--out', out, '--provider', 'cpu');
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`error \\[E_NO_SPACE\\]: cannot write ${escapeRegExp(out)}: no space left on the device holding ${escapeRegExp(out)} \\(ENOSPC\\)`),
  );
  assert.equal(existsSync(out), false, 'nothing half-written');
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
