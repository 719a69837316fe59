import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSpec } from '../../src/config/presets.js';
import { createEngine } from '../../src/engines/create-engine.js';

test('EXPECTED FAILURE - --amp on the tfjs engine is a usage error, not ignored', async () => {
  const spec = buildSpec('seed28', 0.03125);
  await assert.rejects(createEngine(spec, { engine: 'tfjs', amp: true }), {
    name: 'UsageError',
    code: 'E_BAD_ARGUMENT',
    message: /--amp is for the torch engine on CUDA/,
  });
});

test('EXPECTED FAILURE - --amp with auto on a CPU-only machine says why', async () => {
  const spec = buildSpec('seed28', 0.03125);
  await assert.rejects(createEngine(spec, { engine: 'auto', amp: true, device: 'cpu' }), {
    name: 'UsageError',
    message: /--amp needs the torch engine on CUDA/,
  });
});
