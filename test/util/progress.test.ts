import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, formatDuration } from '../../src/util/progress.js';

/** The one progress renderer, on a fake terminal and a fake log stream. */
function stream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = {
    isTTY,
    text: '',
    write(chunk: string) {
      s.text += chunk;
      return true;
    },
  };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

test('on a terminal: one redrawn line with a bar, count, rate and ETA; log() prints above it and redraws', () => {
  const out = stream(true);
  const p = new Progress({ label: 'generate', total: 200, unit: 'images', stream: out });
  p.update(50);
  assert.match(out.text, /^\r\x1b\[2Kgenerate \[######\.{18}\] 50\/200 {2}25\.0% [\d.]+ images\/s elapsed 00:00 ETA \d\d:\d\d$/);
  out.text = '';
  p.log('celeba-gan: SIGINT: writing the batches already computed');
  assert.match(out.text, /^\r\x1b\[2Kceleba-gan: SIGINT: writing the batches already computed\ngenerate \[/, 'the message on its own line, then the bar again');
  out.text = '';
  p.finish();
  assert.match(out.text, /^\r\x1b\[2Kgenerate .*\n$/);
  assert.equal(p.done, 50);
});

test('in a log (not a TTY): no bar, no carriage returns; plain lines at most every plainEvery seconds, and the last one', () => {
  const out = stream(false);
  const p = new Progress({ label: 'prepare', total: 10, unit: 'img', stream: out, plainEvery: 3600 });
  for (let i = 1; i <= 10; i++) p.update(i);
  p.log('skipped a.jpg: not an image');
  p.finish();
  assert.ok(!out.text.includes('\r') && !out.text.includes('\x1b'), JSON.stringify(out.text));
  const lines = out.text.trim().split('\n');
  assert.equal(lines.length, 3, out.text);
  assert.match(lines[0]!, /^prepare 1\/10 +10\.0% /, 'the first update prints (the interval starts at 0)');
  assert.equal(lines[1], 'skipped a.jpg: not an image');
  assert.match(lines[2]!, /^prepare 10\/10 100\.0% .* ETA 00:00$/);
});

test('bounded by time (demo --minutes): no total, the bar and ETA follow the time limit', () => {
  const out = stream(false);
  const p = new Progress({ label: 'train', total: Infinity, unit: 'steps', stream: out, timeLimit: 180 });
  p.update(3, 'D 1.2 G 0.7');
  p.finish();
  const last = out.text.trim().split('\n').at(-1)!;
  assert.match(last, /^train 3 steps +0\.0% [\d.]+ steps\/s elapsed 00:00 ETA 0[23]:\d\d {2}D 1\.2 G 0\.7$/);
  assert.equal(formatDuration(3725), '1:02:05');
  assert.equal(formatDuration(NaN), '--:--');
});
