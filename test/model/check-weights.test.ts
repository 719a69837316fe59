import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstNonFinite } from '../../src/model/check-weights.js';
import type { TensorMap } from '../../src/model/tensors.js';

test('firstNonFinite: the first NaN or infinity by tensor and index, or null when all are finite', () => {
  const tensors: TensorMap = new Map([
    ['a', { shape: [2], data: Float32Array.of(1, 2) }],
    ['b', { shape: [3], data: Float32Array.of(0, Number.POSITIVE_INFINITY, Number.NaN) }],
  ]);
  assert.deepEqual(firstNonFinite(tensors), { name: 'b', index: 1, value: Number.POSITIVE_INFINITY });
  tensors.delete('b');
  assert.equal(firstNonFinite(tensors), null);
});
