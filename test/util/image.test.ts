import assert from 'node:assert/strict';
import { test } from 'node:test';
import { floatNchwToUint8Hwc, gridPixels } from '../../src/util/image.js';

test('floatNchwToUint8Hwc: NCHW [-1, 1] to HWC bytes, clamped', () => {
  // one 1x2 image, 2 channels: channel 0 = [-1, 1], channel 1 = [0, 2]
  assert.deepEqual([...floatNchwToUint8Hwc(Float32Array.of(-1, 1, 0, 2), 1, 2, 1, 2)], [0, 128, 255, 255]);
});

test('gridPixels: tiles in row-major order with the gap filled by the background', () => {
  const g = gridPixels(Uint8Array.of(10, 20), 2, 1, 1, 1, { cols: 2, gap: 1, background: 0 });
  assert.deepEqual({ width: g.width, height: g.height, data: [...g.data] }, { width: 5, height: 3, data: [0, 0, 0, 0, 0, 0, 10, 0, 20, 0, 0, 0, 0, 0, 0] });
});

test('ERROR PATH - inputs shorter than their stated size are refused instead of read as black', () => {
  assert.throws(
    () => floatNchwToUint8Hwc(new Float32Array(11), 1, 3, 2, 2),
    /^RangeError: floatNchwToUint8Hwc: \[1, 3, 2, 2\] needs 12 values but received 11$/,
  );
  assert.throws(() => gridPixels(new Uint8Array(5), 2, 1, 1, 3), /^RangeError: gridPixels: 2 images of 1x1x3 need 6 bytes but received 5$/);
});
