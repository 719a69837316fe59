import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DistributedError, distError } from '../../src/distributed/index.js';
import { CelebaGanError } from '../../src/errors.js';

test("the addon's rejections become DistributedErrors with their code, lost rank and a hint", () => {
  const native = Object.assign(new Error('lost rank 1: its heartbeat stopped'), { code: 'E_DIST_TIMEOUT', lostRank: 1 });
  const e = distError(native);
  assert.ok(e instanceof DistributedError);
  assert.equal(e.code, 'E_DIST_TIMEOUT');
  assert.equal(e.lostRank, 1);
  assert.equal(e.message, 'lost rank 1: its heartbeat stopped');
  assert.match(e.hint ?? '', /--resume/);
  assert.equal(e.kind, 'runtime');
});

test('an error without an E_DIST_ code is E_DIST_FAILED; a CelebaGanError passes through unchanged', () => {
  assert.equal(distError(new Error('boom')).code, 'E_DIST_FAILED');
  const mine = new CelebaGanError('E_TORCH_UNAVAILABLE', 'no addon');
  assert.equal(distError(mine), mine);
});
