import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { Batcher, QueueFullError } from '../../src/serve/batcher.js';

/** The dynamic batcher with a fake model call that records the batches it is given. */

function fake(opts: { maxBatch: number; maxDelayMs: number; maxQueue: number }, holdMs = 0) {
  const calls: number[][] = [];
  let release: (() => void) | null = null;
  let hold = holdMs < 0;
  const batcher = new Batcher<number, number>(
    async (items) => {
      calls.push([...items]);
      if (hold) await new Promise<void>((r) => (release = r));
      else if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
      return items.map((x) => x * 10);
    },
    opts,
    new Registry(),
  );
  return {
    batcher,
    calls,
    /** Let a held model call finish (with holdMs < 0 every call waits for this). */
    release(stopHolding = false) {
      if (stopHolding) hold = false;
      const r = release;
      release = null;
      r?.();
    },
  };
}

test('concurrent requests are merged into one model call, in arrival order, each gets its own outputs', async () => {
  const { batcher, calls } = fake({ maxBatch: 8, maxDelayMs: 20, maxQueue: 100 });
  const results = await Promise.all([batcher.submit([1]), batcher.submit([2, 3]), batcher.submit([4])]);
  assert.deepEqual(calls, [[1, 2, 3, 4]]);
  assert.deepEqual(results, [[10], [20, 30], [40]]);
});

test('a full batch runs at once; larger requests are split across calls and reassembled', async () => {
  const { batcher, calls } = fake({ maxBatch: 4, maxDelayMs: 10_000, maxQueue: 100 });
  const big = batcher.submit([1, 2, 3, 4, 5, 6]);
  const small = batcher.submit([7, 8]);
  assert.deepEqual(await big, [10, 20, 30, 40, 50, 60]);
  assert.deepEqual(await small, [70, 80]);
  assert.deepEqual(calls, [
    [1, 2, 3, 4],
    [5, 6, 7, 8],
  ]);
});

test('max batch 1: one item per call', async () => {
  const { batcher, calls } = fake({ maxBatch: 1, maxDelayMs: 5, maxQueue: 100 });
  await Promise.all([batcher.submit([1]), batcher.submit([2])]);
  assert.deepEqual(calls, [[1], [2]]);
});

test('ERROR PATH - a full queue refuses at once with E_QUEUE_FULL and a Retry-After', async () => {
  const f = fake({ maxBatch: 2, maxDelayMs: 0, maxQueue: 4 }, -1);
  const running = f.batcher.submit([1, 2]); // taken by the (held) model call
  const queued = f.batcher.submit([3, 4, 5, 6]); // fills the queue
  await new Promise((r) => setImmediate(r));
  assert.equal(f.batcher.queued, 4);
  assert.equal(f.batcher.saturated, true);
  await assert.rejects(f.batcher.submit([7]), (err: unknown) => err instanceof QueueFullError && err.code === 'E_QUEUE_FULL' && err.retryAfterSeconds >= 1);
  f.release(true);
  assert.deepEqual(await running, [10, 20]);
  assert.deepEqual(await queued, [30, 40, 50, 60]);
});

test('ERROR PATH - a request larger than the whole queue is a usage error, not "busy"', async () => {
  const f = fake({ maxBatch: 2, maxDelayMs: 0, maxQueue: 3 });
  await assert.rejects(
    f.batcher.submit([1, 2, 3, 4]),
    (err: { code?: string; kind?: string; message?: string }) =>
      err.code === 'E_BAD_ARGUMENT' && err.kind === 'usage' && /needs 4 images at once but the queue holds at most 3/.test(err.message ?? ''),
  );
  assert.deepEqual(await f.batcher.submit([1, 2, 3]), [10, 20, 30]);
});

test('ERROR PATH - a request not started by its deadline fails with E_DEADLINE and leaves the queue', async () => {
  const f = fake({ maxBatch: 1, maxDelayMs: 0, maxQueue: 10 }, -1);
  const running = f.batcher.submit([1]);
  const late = f.batcher.submit([2], { deadlineMs: 20 });
  await assert.rejects(late, (err: { code?: string }) => err.code === 'E_DEADLINE');
  assert.equal(f.batcher.queued, 0);
  f.release(true);
  await running;
  assert.deepEqual(f.calls, [[1]]);
});

test('a request whose client went away (abort) is dropped before the model sees it', async () => {
  const f = fake({ maxBatch: 4, maxDelayMs: 0, maxQueue: 10 }, -1);
  const running = f.batcher.submit([1]);
  const ac = new AbortController();
  const gone = f.batcher.submit([2, 3], { signal: ac.signal });
  const kept = f.batcher.submit([4]);
  ac.abort(new Error('client gone'));
  await assert.rejects(gone, /client gone/);
  assert.equal(f.batcher.queued, 1);
  f.release(true);
  await running;
  assert.deepEqual(await kept, [40]);
  assert.deepEqual(f.calls, [[1], [4]]);
});

test('a failing model call fails the requests in that batch only', async () => {
  let n = 0;
  const batcher = new Batcher<number, number>(
    async (items) => {
      if (n++ === 0) throw new Error('model broke');
      return items;
    },
    { maxBatch: 1, maxDelayMs: 0, maxQueue: 10 },
    new Registry(),
  );
  const [a, b] = await Promise.allSettled([batcher.submit([1]), batcher.submit([2])]);
  assert.equal(a.status, 'rejected');
  assert.deepEqual(b, { status: 'fulfilled', value: [2] });
});

test('ERROR PATH - a model call that returns fewer results than items fails those requests instead of resolving holes', async () => {
  const batcher = new Batcher<number, number>(async (items) => items.slice(1), { maxBatch: 4, maxDelayMs: 20, maxQueue: 10 }, new Registry());
  const results = await Promise.allSettled([batcher.submit([1, 2]), batcher.submit([3])]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.match((r.reason as Error).message, /returned 2 results for a batch of 3/);
  }
});

test('10x overload: the queue never holds more than maxQueue items; the excess is refused; all admitted work completes', async () => {
  const f = fake({ maxBatch: 8, maxDelayMs: 1, maxQueue: 32 }, 2);
  let maxQueued = 0;
  const outcomes = await Promise.allSettled(
    Array.from({ length: 320 }, (_, i) => {
      const p = f.batcher.submit([i]);
      maxQueued = Math.max(maxQueued, f.batcher.queued);
      return p;
    }),
  );
  const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
  const full = outcomes.filter((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'E_QUEUE_FULL').length;
  assert.ok(maxQueued <= 32, `queued ${maxQueued}`);
  assert.equal(ok + full, 320);
  // The first full batch (8) left the queue for the model call at once; then 32 fit the queue.
  assert.equal(ok, 8 + 32);
  assert.equal(f.calls.flat().length, ok);
  assert.equal(f.batcher.queued, 0);
});

test('drain: refuses new work, waits for queued and running work', async () => {
  const f = fake({ maxBatch: 2, maxDelayMs: 10_000, maxQueue: 10 }, 5);
  const a = f.batcher.submit([1]);
  const drained = f.batcher.drain();
  await assert.rejects(f.batcher.submit([2]), (err: { code?: string }) => err.code === 'E_SHUTTING_DOWN');
  await drained;
  assert.deepEqual(await a, [10]);
});
