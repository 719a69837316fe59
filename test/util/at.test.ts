import assert from 'node:assert/strict';
import { test } from 'node:test';
import { itemAt } from '../../src/util/at.js';

test('itemAt returns the item at an index in range, including a falsy one', () => {
  assert.equal(itemAt(['a', 'b'], 1, 'image'), 'b');
  assert.equal(itemAt(Uint8Array.of(0, 7), 0, 'byte'), 0);
});

test('ERROR PATH - itemAt: an index outside the items, or not an integer, is a RangeError naming what', () => {
  for (const index of [-1, 2, 0.5, Number.NaN]) {
    assert.throws(() => itemAt(['a', 'b'], index, 'image'), { name: 'RangeError', message: `image index ${index} is outside 0..1` });
  }
});
