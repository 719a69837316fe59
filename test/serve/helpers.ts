import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openGeneratorInWorker, type WorkerGeneratorSession } from '../../src/inference/worker-session.js';
import { buildApp, type AppOptions, type ServeApp } from '../../src/serve/app.js';
import { tempDir, writeTinyModel } from '../inference/fixtures.js';

/**
 * A served tiny model (made by the exporter, see test/inference/fixtures.ts) for the serve
 * tests, hosted in a worker thread as `celeba-gan serve` does (`workerEntry`: a test worker such
 * as test/inference/gated-worker.ts); `stop()` closes the app and the session and removes the
 * folder, even after a failure.
 */

export interface Served extends ServeApp {
  session: WorkerGeneratorSession;
  dir: string;
  modelPath: string;
  stop(): Promise<void>;
}

export async function serveTiny(opts: Partial<Omit<AppOptions, 'session'>> & { preset?: string; workerEntry?: URL } = {}): Promise<Served> {
  const dir = tempDir('cg-serve-');
  const modelPath = writeTinyModel(join(dir, 'models'), 'tiny.onnx', { preset: opts.preset });
  const session = await openGeneratorInWorker(modelPath, { provider: 'cpu' }, { entry: opts.workerEntry });
  let served: ServeApp;
  try {
    served = await buildApp({
      session,
      batcher: opts.batcher ?? { maxBatch: 64, maxDelayMs: 2, maxQueue: 256 },
      authToken: opts.authToken,
      deadlineMs: opts.deadlineMs,
      maxPixels: opts.maxPixels,
      connections: opts.connections,
    });
  } catch (err) {
    await session.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...served,
    session,
    dir,
    modelPath,
    async stop() {
      try {
        await served.close();
      } finally {
        await session.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** The `{ error: { code } }` of a JSON error answer. */
export function errorCode(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
