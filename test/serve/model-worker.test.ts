import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { E_MODEL_WORKER } from '../../src/inference/worker-session.js';
import { CRASH_BATCH, FAIL_BATCH, GATED_WORKER, Gate } from '../inference/gate.js';
import { errorCode, serveTiny, type Served } from './helpers.js';

/**
 * The model runs in a worker thread, so the HTTP side goes on while a batch computes: checked by
 * the order of events with a test worker that blocks its thread inside the model call until the
 * test lets it go (test/inference/gate.ts). Errors and a crash of that thread get their E_* codes.
 */

async function withGated(opts: Parameters<typeof serveTiny>[0], body: (s: Served, gate: Gate) => Promise<void>): Promise<void> {
  const s = await serveTiny({ ...opts, workerEntry: GATED_WORKER });
  const gate = new Gate(s.modelPath);
  try {
    await body(s, gate);
  } finally {
    gate.close();
    await s.stop();
  }
}

/** A promise and whether it has settled yet. */
function tracked<T>(p: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const promise = p.finally(() => (done = true));
  return { promise, settled: () => done };
}

test('/healthz, /readyz, /metrics and /v1/model answer while a model call is in flight (its thread blocked in the model)', async () => {
  await withGated({}, async (s, gate) => {
    const face = tracked(s.app.inject('/v1/faces/7/417.png'));
    const run = await gate.next();
    assert.equal(run.n, 1);
    for (const url of ['/healthz', '/readyz', '/metrics', '/v1/model']) {
      assert.equal((await s.app.inject(url)).statusCode, 200, url);
    }
    // A second request is read and queued meanwhile: the next batch forms while this one runs.
    const other = tracked(s.app.inject('/v1/faces/7/418.png'));
    for (let i = 0; i < 200 && s.batcher.queued < 1; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.batcher.queued, 1);
    assert.equal(face.settled(), false, 'the face was answered before its model call finished');
    gate.release(run);
    assert.equal((await face.promise).statusCode, 200);
    gate.release(await gate.next());
    assert.equal((await other.promise).statusCode, 200);
  });
});

test('ERROR PATH - overload while the model computes: the excess gets 503 E_QUEUE_FULL + Retry-After at once, then the queue is served', async () => {
  await withGated({ batcher: { maxBatch: 4, maxDelayMs: 0, maxQueue: 4 } }, async (s, gate) => {
    const first = s.app.inject('/v1/grid?seed=1&n=4');
    const running = await gate.next();
    assert.equal(running.n, 4);
    const queued = [0, 1, 2, 3].map((i) => s.app.inject(`/v1/faces/7/${i}.png`));
    for (let i = 0; i < 200 && s.batcher.queued < 4; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.batcher.queued, 4);
    const refused = await Promise.all([10, 11, 12].map((i) => s.app.inject(`/v1/faces/7/${i}.png`)));
    for (const r of refused) {
      assert.equal(r.statusCode, 503);
      assert.equal(errorCode(r.body), 'E_QUEUE_FULL');
      assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
    }
    const ready = await s.app.inject('/readyz');
    assert.equal(ready.statusCode, 503);
    assert.equal(errorCode(ready.body), 'E_QUEUE_FULL');
    gate.release(running);
    assert.equal((await first).statusCode, 200);
    const next = await gate.next();
    assert.equal(next.n, 4);
    gate.release(next);
    for (const r of await Promise.all(queued)) assert.equal(r.statusCode, 200);
    assert.equal((await s.app.inject('/readyz')).statusCode, 200);
  });
});

describe('ERROR PATH - the model worker', () => {
  test('a model call that fails in the worker is a 500 with its E_* code and hint; the server goes on', async () => {
    await withGated({}, async (s, gate) => {
      const res = await s.app.inject(`/v1/grid?seed=1&n=${FAIL_BATCH}`);
      assert.equal(res.statusCode, 500);
      const body = JSON.parse(res.body) as { error: { code: string; message: string; hint: string } };
      assert.equal(body.error.code, 'E_MODEL_RUN');
      assert.match(body.error.message, /injected/);
      assert.equal(body.error.hint, 'a test hint');
      const face = s.app.inject('/v1/faces/1/1.png');
      gate.release(await gate.next());
      assert.equal((await face).statusCode, 200);
      assert.equal((await s.app.inject('/readyz')).statusCode, 200);
    });
  });

  test('a worker that dies: its requests and later ones get 500 E_MODEL_WORKER (no hang), /readyz 503 E_MODEL_WORKER, /healthz stays up', async () => {
    await withGated({}, async (s) => {
      const res = await s.app.inject(`/v1/grid?seed=1&n=${CRASH_BATCH}`);
      assert.equal(res.statusCode, 500);
      assert.equal(errorCode(res.body), E_MODEL_WORKER);
      assert.match(res.body, /the model worker thread stopped \(exit code 3\)/);
      const later = await s.app.inject('/v1/faces/1/1.png');
      assert.equal(later.statusCode, 500);
      assert.equal(errorCode(later.body), E_MODEL_WORKER);
      const ready = await s.app.inject('/readyz');
      assert.equal(ready.statusCode, 503);
      assert.equal(errorCode(ready.body), E_MODEL_WORKER);
      assert.equal((await s.app.inject('/healthz')).statusCode, 200);
    });
  });
});
