import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { waitFor, waitForLine } from './wait.js';

test('waitFor: resolves with the first truthy value of the predicate', async () => {
  let reads = 0;
  assert.equal(await waitFor(() => (++reads >= 3 ? 'ready' : null), { timeoutMs: 5_000, what: 'three reads', intervalMs: 1 }), 'ready');
  assert.equal(reads, 3);
});

test('ERROR PATH - waitFor: a deadline that runs out fails naming what was awaited (it does not carry on)', async () => {
  await assert.rejects(
    waitFor(() => false, { timeoutMs: 30, what: 'a state that never comes', intervalMs: 5 }),
    {
      name: 'AssertionError',
      message: 'timed out after 0.03 s waiting for a state that never comes',
    },
  );
});

test('ERROR PATH - waitFor: a predicate that throws fails at once', async () => {
  await assert.rejects(
    waitFor(
      () => {
        throw new Error('the process exited');
      },
      { timeoutMs: 60_000, what: 'x' },
    ),
    /the process exited/,
  );
});

test("waitForLine: a line written later, and one already in the caller's collected text", async () => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d) => (text += String(d)));
  const later = waitForLine(stream, /^listening on (\d+)$/m, 5_000, () => text);
  stream.write('starting\nlisten');
  stream.write('ing on 8080\n');
  assert.equal((await later)[1], '8080');
  assert.equal((await waitForLine(stream, /starting/, 5_000, () => text))[0], 'starting');
  // Without the caller's text, only output from now on counts.
  const own = waitForLine(stream, /starting|done/, 5_000);
  stream.write('done\n');
  assert.equal((await own)[0], 'done');
});

test('ERROR PATH - waitForLine: the deadline, and the stream ending first, fail with the output seen', async () => {
  const quiet = new PassThrough();
  quiet.resume();
  await assert.rejects(waitForLine(quiet, /ready/, 30), {
    name: 'AssertionError',
    message: /^timed out after 0\.03 s waiting for \/ready\/ in the output; it was: ""$/,
  });
  const ends = new PassThrough();
  const ended = waitForLine(ends, /ready/, 60_000);
  ends.end('crashed\n');
  await assert.rejects(ended, { name: 'AssertionError', message: /^the output ended without \/ready\/; it was: "crashed\\n"$/ });
});
