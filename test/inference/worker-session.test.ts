import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkProvider } from '../../src/bindings/onnxruntime.js';
import { CelebaGanError } from '../../src/errors.js';
import { latentsFor, openGenerator } from '../../src/inference/session.js';
import { E_MODEL_WORKER, openGeneratorInWorker } from '../../src/inference/worker-session.js';
import { tempDir, writeTinyModel } from './fixtures.js';
import { CRASH_BATCH, FAIL_BATCH, GATED_WORKER, Gate } from './gate.js';

/** A generator session hosted in a worker thread: the same faces, errors and providers as in-process; a crash fails fast. */

const dir = tempDir('cg-worker-session-');
const modelPath = writeTinyModel(dir);
after(() => rmSync(dir, { recursive: true, force: true }));

test('the worker reports the same info and provider, and makes the same faces as openGenerator in this thread', async () => {
  // As serve opens it: its options reach openGenerator in the worker (here: no spinning).
  const inWorker = await openGeneratorInWorker(modelPath, { provider: 'cpu', threads: 2, spinning: false });
  const here = await openGenerator(modelPath, { provider: 'cpu', threads: 1 });
  try {
    assert.deepEqual(inWorker.info, here.info);
    assert.equal(inWorker.providerUsed, 'cpu');
    assert.deepEqual(inWorker.providerNotes, []);
    const n = 5;
    const z = latentsFor(3, 0, n, here.info.zDim, here.info.latent);
    const want = await here.run(z.slice(), n);
    const got = await inWorker.run(z, n);
    assert.deepEqual(got, want);
    // The latents' buffer moved to the worker: the caller's array is now empty.
    assert.equal(z.length, 0);
    // A view into a larger buffer is copied, not moved.
    const big = latentsFor(3, 0, n + 1, here.info.zDim, here.info.latent);
    const view = big.subarray(0, n * here.info.zDim);
    assert.deepEqual(await inWorker.run(view, n), want);
    assert.equal(view.length, n * here.info.zDim);
    assert.equal(inWorker.failure, null);
  } finally {
    await inWorker.close();
    await here.close();
  }
});

test('runs posted while one computes are answered in order, each with its own faces', async () => {
  const s = await openGeneratorInWorker(modelPath, { provider: 'cpu' });
  try {
    const { zDim, latent } = s.info;
    const outs = await Promise.all([1, 2, 3].map((n) => s.run(latentsFor(n, 0, n, zDim, latent), n)));
    const plane = 3 * 28 * 28;
    assert.deepEqual(
      outs.map((o) => o.length),
      [plane, 2 * plane, 3 * plane],
    );
    const here = await openGenerator(modelPath, { provider: 'cpu' });
    try {
      for (const n of [1, 2, 3]) assert.deepEqual(outs[n - 1], await here.run(latentsFor(n, 0, n, zDim, latent), n));
    } finally {
      await here.close();
    }
  } finally {
    await s.close();
  }
});

describe('ERROR PATH - errors from the worker keep their code, message, hint and kind', () => {
  test('a missing model: E_MODEL_NOT_FOUND (usage)', async () => {
    await assert.rejects(openGeneratorInWorker(join(dir, 'nope.onnx'), { provider: 'cpu' }), (err: CelebaGanError) => {
      assert.ok(err instanceof CelebaGanError);
      assert.equal(err.code, 'E_MODEL_NOT_FOUND');
      assert.equal(err.kind, 'usage');
      assert.match(err.message, /cannot read model .*nope\.onnx: no such file/);
      assert.match(err.hint!, /--model/);
      return true;
    });
  });

  test('a file that is not ONNX: E_MODEL_NOT_ONNX', async () => {
    const path = join(dir, 'text.onnx');
    writeFileSync(path, 'not a model');
    await assert.rejects(openGeneratorInWorker(path, { provider: 'cpu' }), { code: 'E_MODEL_NOT_ONNX', kind: 'usage' });
  });

  test('a bad thread count: E_BAD_ARGUMENT naming it', async () => {
    await assert.rejects(openGeneratorInWorker(modelPath, { provider: 'cpu', threads: 0 }), (err: CelebaGanError) => {
      assert.equal(err.code, 'E_BAD_ARGUMENT');
      assert.match(err.message, /for threads but received 0 of type number/);
      return true;
    });
  });

  test('cuda asked for by name without the CUDA provider: E_PROVIDER_UNAVAILABLE with the fix', async (t) => {
    if (checkProvider('cuda').ok) return t.skip('the CUDA provider is installed on this machine');
    await assert.rejects(openGeneratorInWorker(modelPath, { provider: 'cuda' }), (err: CelebaGanError) => {
      assert.equal(err.code, 'E_PROVIDER_UNAVAILABLE');
      assert.match(err.message, /^provider "cuda" cannot be used: /);
      assert.match(err.hint!, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
      return true;
    });
  });

  test('auto on this machine: the reasons for the providers not used come back', async () => {
    const s = await openGeneratorInWorker(modelPath, { provider: 'auto' });
    const here = await openGenerator(modelPath, { provider: 'auto' });
    try {
      assert.equal(s.providerUsed, here.providerUsed);
      assert.deepEqual(s.providerNotes, here.providerNotes);
    } finally {
      await s.close();
      await here.close();
    }
  });

  test('a model call that fails in the worker: its E_* error, and the worker goes on', async () => {
    const s = await openGeneratorInWorker(modelPath, { provider: 'cpu' }, { entry: GATED_WORKER });
    const gate = new Gate(modelPath);
    try {
      const { zDim, latent } = s.info;
      await assert.rejects(s.run(latentsFor(1, 0, FAIL_BATCH, zDim, latent), FAIL_BATCH), (err: CelebaGanError) => {
        assert.ok(err instanceof CelebaGanError);
        assert.equal(err.code, 'E_MODEL_RUN');
        assert.equal(err.hint, 'a test hint');
        assert.match(err.stack!, /gated-worker/);
        return true;
      });
      const next = s.run(latentsFor(1, 0, 2, zDim, latent), 2);
      gate.release(await gate.next());
      assert.equal((await next).length, 2 * 3 * 28 * 28);
      assert.equal(s.failure, null);
    } finally {
      gate.close();
      await s.close();
    }
  });

  test('a worker that dies: the pending call and every later one fail with E_MODEL_WORKER, `failed` resolves', async () => {
    const s = await openGeneratorInWorker(modelPath, { provider: 'cpu' }, { entry: GATED_WORKER });
    const gate = new Gate(modelPath);
    try {
      const { zDim, latent } = s.info;
      // A run queued behind the crashing one is failed too, not left waiting.
      const held = s.run(latentsFor(1, 0, 2, zDim, latent), 2);
      const heldRun = await gate.next();
      const crashing = s.run(latentsFor(1, 0, CRASH_BATCH, zDim, latent), CRASH_BATCH);
      gate.release(heldRun);
      assert.equal((await held).length, 2 * 3 * 28 * 28);
      await assert.rejects(crashing, (err: CelebaGanError) => {
        assert.equal(err.code, E_MODEL_WORKER);
        assert.match(err.message, /the model worker thread stopped \(exit code 3\)/);
        assert.match(err.hint!, /Restart `celeba-gan serve`/);
        return true;
      });
      assert.equal((await s.failed).code, E_MODEL_WORKER);
      assert.equal(s.failure?.code, E_MODEL_WORKER);
      await assert.rejects(s.run(latentsFor(1, 0, 1, zDim, latent), 1), { code: E_MODEL_WORKER });
    } finally {
      gate.close();
      await s.close();
    }
  });
});

test('BAD CALL - run after close, and a z of the wrong length', async () => {
  const s = await openGeneratorInWorker(modelPath, { provider: 'cpu' });
  await assert.rejects(s.run(new Float32Array(99), 1), /z has 99 values; \[1, 100\] needs 100/);
  await s.close();
  await s.close();
  await assert.rejects(s.run(new Float32Array(100), 1), /run called after close/);
  assert.equal(s.failure, null);
});
