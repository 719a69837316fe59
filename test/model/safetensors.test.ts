import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_HEADER_BYTES, decodeSafetensors, encodeSafetensors } from '../../src/model/safetensors.js';
import type { CelebaGanError } from '../../src/errors.js';
import type { TensorMap } from '../../src/model/tensors.js';

// Two tensors: a [2, 3] (24 bytes at 0..24) and b [4] (16 bytes at 24..40).
const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
const b = Float32Array.from([7, 8, 9, 10]);
const tensors: TensorMap = new Map([
  ['a', { shape: [2, 3], data: a }],
  ['b', { shape: [4], data: b }],
]);
const data = Buffer.concat([Buffer.from(a.buffer), Buffer.from(b.buffer)]);

/** A file with this header (as JSON) over `body`, the header length written to match. */
function craft(header: unknown, body: Buffer = data): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, body]);
}

const good = {
  a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
  b: { dtype: 'F32', shape: [4], data_offsets: [24, 40] },
};

function rejects(buf: Buffer, code: string, message: RegExp): void {
  assert.throws(
    () => decodeSafetensors(buf, 'crafted.safetensors'),
    (err: CelebaGanError) => {
      assert.equal(err.name, 'CelebaGanError');
      assert.equal(err.code, code, err.message);
      assert.match(err.message, /^crafted\.safetensors is not a valid safetensors file: /);
      assert.match(err.message, message);
      return true;
    },
  );
}

test('round trip: encodeSafetensors -> decodeSafetensors keeps names, order, shapes, values and metadata', () => {
  const buf = Buffer.concat(encodeSafetensors(tensors, { format: 'pt' }));
  const back = decodeSafetensors(buf);
  assert.deepEqual([...back.tensors.keys()], ['a', 'b']);
  assert.deepEqual(back.tensors.get('a'), { shape: [2, 3], data: a });
  assert.deepEqual(back.tensors.get('b'), { shape: [4], data: b });
  assert.deepEqual(back.metadata, { format: 'pt' });
  // The hand-crafted good header is accepted too (the checks below start from it).
  assert.deepEqual(decodeSafetensors(craft(good)).tensors.get('b')!.data, b);
});

test('ERROR PATH - safetensors: negative data_offsets: E_SAFETENSORS_OFFSETS', () => {
  rejects(craft({ ...good, a: { ...good.a, data_offsets: [-24, 0] } }), 'E_SAFETENSORS_OFFSETS', /tensor a has data_offsets \[-24,0\]/);
});

test('ERROR PATH - safetensors: begin after end: E_SAFETENSORS_OFFSETS', () => {
  rejects(craft({ ...good, a: { ...good.a, data_offsets: [24, 0] } }), 'E_SAFETENSORS_OFFSETS', /0 <= begin <= end/);
});

test('ERROR PATH - safetensors: overlapping tensors (both read bytes 0..16): E_SAFETENSORS_OFFSETS', () => {
  const header = { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } };
  rejects(craft(header, data.subarray(0, 24)), 'E_SAFETENSORS_OFFSETS', /tensor b at bytes \[8, 24\] overlaps the tensor before it \(which ends at 16\)/);
});

test('ERROR PATH - safetensors: a gap between tensors: E_SAFETENSORS_OFFSETS', () => {
  const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [4], data_offsets: [24, 40] } };
  rejects(craft(header), 'E_SAFETENSORS_OFFSETS', /bytes \[8, 24\) of the data belong to no tensor/);
});

test('ERROR PATH - safetensors: trailing bytes and truncated data: E_SAFETENSORS_OFFSETS', () => {
  rejects(craft(good, Buffer.concat([data, Buffer.alloc(4)])), 'E_SAFETENSORS_OFFSETS', /the last 4 bytes of the file belong to no tensor/);
  rejects(craft(good, data.subarray(0, 36)), 'E_SAFETENSORS_OFFSETS', /the tensors need 40 bytes of data but the file holds 36 \(truncated\?\)/);
});

test('ERROR PATH - safetensors: a dtype other than F32: E_SAFETENSORS_DTYPE', () => {
  rejects(
    craft({ ...good, b: { ...good.b, dtype: 'F16', shape: [8] } }),
    'E_SAFETENSORS_DTYPE',
    /tensor b has dtype "F16"; celeba-gan stores and reads F32 only/,
  );
});

test('ERROR PATH - safetensors: a bad shape: E_SAFETENSORS_SHAPE', () => {
  rejects(craft({ ...good, b: { ...good.b, shape: [-4] } }), 'E_SAFETENSORS_SHAPE', /tensor b has shape \[-4\]/);
  rejects(craft({ ...good, b: { ...good.b, shape: [2.5] } }), 'E_SAFETENSORS_SHAPE', /tensor b has shape \[2\.5\]/);
});

test('ERROR PATH - safetensors: shape x dtype size differs from the offsets: E_SAFETENSORS_SIZE', () => {
  rejects(
    craft({ ...good, a: { ...good.a, shape: [3, 3] } }),
    'E_SAFETENSORS_SIZE',
    /tensor a of shape \[3, 3\] x 4 bytes needs 36 bytes but data_offsets \[0, 24\] hold 24/,
  );
});

test('ERROR PATH - safetensors: a header length over the cap or past the file: E_SAFETENSORS_HEADER_SIZE', () => {
  const huge = craft(good);
  huge.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES) + 1n, 0);
  rejects(huge, 'E_SAFETENSORS_HEADER_SIZE', new RegExp(`exceeds the limit of ${MAX_HEADER_BYTES} bytes`));
  const past = craft(good);
  past.writeBigUInt64LE(BigInt(past.length), 0);
  rejects(past, 'E_SAFETENSORS_HEADER_SIZE', /does not fit the file size/);
});

test('ERROR PATH - safetensors: not JSON, not an object: E_SAFETENSORS_CORRUPT', () => {
  const notJson = craft(good);
  notJson[8] = 0x7e; // '{' -> '~'
  rejects(notJson, 'E_SAFETENSORS_CORRUPT', /header is not JSON/);
  rejects(craft([1, 2], Buffer.alloc(0)), 'E_SAFETENSORS_CORRUPT', /header is not a JSON object/);
  rejects(Buffer.alloc(4), 'E_SAFETENSORS_CORRUPT', /shorter than its 8-byte header length/);
});
