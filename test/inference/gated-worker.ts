import { BroadcastChannel, workerData } from 'node:worker_threads';
import { CelebaGanError } from '../../src/errors.js';
import { openGenerator } from '../../src/inference/session.js';
import { hostGenerator } from '../../src/inference/worker-session.js';
import { CRASH_BATCH, FAIL_BATCH, gateChannel, type HeldRun } from './gate.js';

/**
 * A model worker for tests (openGeneratorInWorker's `entry` hook): the real worker loop and the
 * real openGenerator, with runs held, failed or crashed on purpose (see gate.ts).
 */

const { modelPath } = workerData as { modelPath: string };
const channel = new BroadcastChannel(gateChannel(modelPath));
channel.unref();

await hostGenerator(async (path, opts) => {
  const session = await openGenerator(path, opts);
  return {
    info: session.info,
    providerUsed: session.providerUsed,
    providerNotes: session.providerNotes,
    close: () => session.close(),
    async run(z: Float32Array, n: number): Promise<Float32Array> {
      if (n === FAIL_BATCH)
        throw new CelebaGanError('E_MODEL_RUN', `onnxruntime failed to run the test model on a batch of ${n} (injected)`, { hint: 'a test hint' });
      if (n === CRASH_BATCH) process.exit(3);
      const gate = new SharedArrayBuffer(4);
      channel.postMessage({ n, gate } satisfies HeldRun);
      Atomics.wait(new Int32Array(gate), 0, 0);
      return session.run(z, n);
    },
  };
});
