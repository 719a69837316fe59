import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSpec } from '../../src/config/presets.js';
import { openGeneratorInWorker, type WorkerGeneratorSession } from '../../src/inference/worker-session.js';
import { LabelRowCounter } from '../../src/onnx/attribute-rows.js';
import { buildGeneratorOnnx } from '../../src/onnx/export.js';
import { buildApp, type AppOptions, type ServeApp } from '../../src/serve/app.js';
import { TEST_ATTRIBUTES, fakeLabels } from '../engines/labels.js';
import { TEST_WIDTH, tempDir, writeTinyModel } from '../inference/fixtures.js';
import { weightsWithBatchNorm } from '../onnx/fixtures.js';

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

export async function serveTiny(
  opts: Partial<Omit<AppOptions, 'session'>> & { preset?: string; workerEntry?: URL; conditional?: boolean } = {},
): Promise<Served> {
  const dir = tempDir('cg-serve-');
  const modelPath = opts.conditional
    ? writeConditionalModel(join(dir, 'models'), 'cond.onnx')
    : writeTinyModel(join(dir, 'models'), 'tiny.onnx', { preset: opts.preset });
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

/** Training frequencies the conditional test model lists (Smiling, Eyeglasses, Blond_Hair). */
export const CONDITIONAL_FREQUENCIES = Object.freeze([0.5, 0.25, 0.3]);

/**
 * A tiny conditional seed28 generator on TEST_ATTRIBUTES (initial weights with random batch-norm
 * statistics, so faces differ), exported with frequencies and training label rows in which
 * Eyeglasses only comes with Smiling: a draw has a correlation to keep.
 */
export function writeConditionalModel(dir: string, name: string): string {
  const k = TEST_ATTRIBUTES.length;
  const spec = buildSpec('seed28', TEST_WIDTH * 2, { attributes: [...TEST_ATTRIBUTES], frequencies: [...CONDITIONAL_FREQUENCIES] });
  const labels = fakeLabels(200, k, 5, 'serve-rows');
  for (let i = 0; i < 200; i++) if (labels[i * k]! < 0) labels[i * k + 1] = -1;
  const counter = new LabelRowCounter(k);
  counter.add(labels);
  const bytes = buildGeneratorOnnx(spec, weightsWithBatchNorm(spec, 31), { attributeFrequencies: CONDITIONAL_FREQUENCIES, attributeRows: counter.table() });
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** The files of a tar archive, in order (regular files only, as /v1/batch writes). */
export function untar(tar: Buffer): { name: string; data: Buffer }[] {
  const files: { name: string; data: Buffer }[] = [];
  let at = 0;
  while (at + 512 <= tar.length && tar[at] !== 0) {
    const header = tar.subarray(at, at + 512);
    const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(header.subarray(124, 136).toString('ascii'), 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    assert.equal(parseInt(header.subarray(148, 156).toString('ascii'), 8), sum, `checksum of ${name}`);
    files.push({ name, data: tar.subarray(at + 512, at + 512 + size) });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  assert.deepEqual(tar.subarray(at), Buffer.alloc(1024), 'the archive ends with two zero blocks');
  return files;
}
