import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli } from '../support/in-process.js';

/** Each command with an empty path flag: a usage error naming the flag, before anything loads or is written. */
const CASES: string[][] = [
  ['generate', '--out', ''],
  ['generate', '--model', ''],
  ['generate', '--out='],
  ['interpolate', '--out', ''],
  ['interpolate', '--frames', ''],
  ['train', '--data', ''],
  ['train', '--out', ''],
  ['export', '--run', ''],
  ['prepare', '--synthetic', '4', '--out', ''],
  ['prepare', '--input', ''],
  ['eval', '--real', ''],
  ['serve', '--model', ''],
];

for (const args of CASES) {
  test(`ERROR PATH - ${args.join(' ')}: an empty path is a usage error, not "unset"`, async () => {
    const r = await cli(...args);
    const flag = /^--([a-z]+)/.exec(args.find((a, i) => a.startsWith('--') && (args[i + 1] === '' || a.endsWith('=')))!)![1];
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^celeba-gan: error \\[E_BAD_ARGUMENT\\]: Expected a path for --${flag} but received an empty value\\n`));
    assert.equal(r.stdout, '');
  });
}

test('a bare --onnx and a bare --grid still mean "the default path" (they are not path flags)', async () => {
  // Both fail later for want of a run / model, not at the flag.
  const exp = await cli('export', '--onnx', '--run', 'no-such-run');
  assert.doesNotMatch(exp.stderr, /Expected a path/);
  assert.match(exp.stderr, /E_NO_RUN/);
});

test('ERROR PATH - generate --index 4294967295 -n 3: usage error naming the largest start allowed', async () => {
  const r = await cli('generate', '--index', '4294967295', '-n', '3', '--model', 'never-opened.onnx');
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /\[E_BAD_ARGUMENT\]: Expected a start of at most 4294967293 for 3 faces for index but received 4294967295 .*the last face index would be 4294967297, beyond 4294967295/,
  );
  assert.match(r.stderr, /pass --index 4294967293 or less/);
  const edge = await cli('generate', '--index', '4294967293', '-n', '3', '--model', 'never-opened.onnx');
  assert.doesNotMatch(edge.stderr, /E_BAD_ARGUMENT/, 'the last valid start passes the check (and fails only at the model)');
  assert.match(edge.stderr, /E_MODEL_NOT_FOUND/);
});

test('ERROR PATH - interpolate -1:0 1:1: the usage error says to put such values after --', async () => {
  const r = await cli('interpolate', '-1:0', '1:1');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /-1:0 was read as a flag: values that start with '-' go after `--` \(celeba-gan interpolate \[options\] -- -1:0 \.\.\.\)/);
  const after = await cli('interpolate', '--', '-1:0', '1:1');
  assert.equal(after.code, 2);
  assert.match(
    after.stderr,
    /\[E_BAD_ARGUMENT\]: Expected a face as seed:index \(integers 0 to 4294967295\) for face 1 but received "-1:0"/,
    'after --, the face is read and checked',
  );
});
