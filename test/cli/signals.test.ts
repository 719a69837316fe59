import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { SIGNAL_EXIT_CODES, StepTimer, aboutSeconds, catchStopSignals } from '../../src/cli/signals.js';

/** The one cancellation module, driven through a fake process (an EventEmitter). */
function setup(finishing = 'finishing the current step (about 3 s)') {
  const target = new EventEmitter();
  const lines: string[] = [];
  const exits: number[] = [];
  const stops: string[] = [];
  const stop = catchStopSignals({
    finishing: () => finishing,
    print: (line) => lines.push(line),
    exit: (code) => exits.push(code),
    onStop: (signal) => stops.push(signal),
    target: target as unknown as NodeJS.Process,
  });
  return { target, lines, exits, stops, stop };
}

test('the first SIGINT aborts the token, says what happens and how to quit; the second quits with 130', () => {
  const { target, lines, exits, stops, stop } = setup();
  assert.equal(stop.signal.aborted, false);
  assert.equal(stop.exitCode, null);
  target.emit('SIGINT');
  assert.equal(stop.signal.aborted, true);
  assert.equal(stop.signal.reason, 'SIGINT');
  assert.equal(stop.received, 'SIGINT');
  assert.equal(stop.exitCode, 130);
  assert.deepEqual(stops, ['SIGINT']);
  assert.deepEqual(lines, ['celeba-gan: SIGINT: finishing the current step (about 3 s); press Ctrl-C again to quit at once']);
  assert.deepEqual(exits, [], 'the first signal does not exit');
  target.emit('SIGINT');
  assert.deepEqual(exits, [130]);
  assert.match(lines[1]!, /^celeba-gan: SIGINT again: quitting now/);
  stop.dispose();
});

test('SIGTERM: exit code 143, and a SIGINT after it quits with 130', () => {
  const { target, lines, exits, stop } = setup('writing the batches already computed');
  target.emit('SIGTERM');
  assert.equal(stop.exitCode, 143);
  assert.match(lines[0]!, /^celeba-gan: SIGTERM: writing the batches already computed; send SIGTERM again to quit at once$/);
  target.emit('SIGINT');
  assert.deepEqual(exits, [130]);
  assert.deepEqual(SIGNAL_EXIT_CODES, { SIGINT: 130, SIGTERM: 143 });
  stop.dispose();
});

test('dispose removes exactly its handlers, and is idempotent', () => {
  const target = new EventEmitter();
  const other = (): void => undefined;
  target.on('SIGINT', other);
  const stop = catchStopSignals({ finishing: () => 'x', print: () => undefined, exit: () => undefined, target: target as unknown as NodeJS.Process });
  assert.equal(target.listenerCount('SIGINT'), 2);
  assert.equal(target.listenerCount('SIGTERM'), 1);
  stop.dispose();
  stop.dispose();
  assert.deepEqual(target.listeners('SIGINT'), [other]);
  assert.equal(target.listenerCount('SIGTERM'), 0);
  target.emit('SIGTERM');
  assert.equal(stop.signal.aborted, false, 'a signal after dispose reaches nothing');
});

test('on the real process: handlers are added and removed', () => {
  const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
  const stop = catchStopSignals({ finishing: () => 'x' });
  assert.deepEqual([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], [before[0]! + 1, before[1]! + 1]);
  stop.dispose();
  assert.deepEqual([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], before);
});

test('how long the wait may be: aboutSeconds and StepTimer', async () => {
  assert.equal(aboutSeconds(0.2), 'under a second');
  assert.equal(aboutSeconds(3.4), 'about 3 s');
  assert.equal(aboutSeconds(1800), 'about 30 min');
  assert.equal(aboutSeconds(7200), 'about 2.0 h');
  assert.equal(aboutSeconds(NaN), 'unknown time');
  const clock = new StepTimer();
  clock.start();
  assert.equal(clock.lastStepText(), 'the first step: duration not known yet');
  await new Promise((r) => setTimeout(r, 20));
  clock.step();
  assert.match(clock.lastStepText(), /^under a second$/);
  assert.ok(clock.elapsed() > 0);
});
