import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSpec } from '../../src/config/presets.js';
import { onnxSource } from '../../src/eval/sources.js';
import { yardstick } from '../../src/eval/yardstick.js';
import { openGenerator } from '../../src/inference/session.js';
import { initialWeights } from '../../src/model/init.js';
import { buildGeneratorOnnx } from '../../src/onnx/export.js';
import { itemAt } from '../../src/util/at.js';
import { syntheticFaces } from './ladder.js';

/**
 * The last rung of the validation ladder: a trained generator must score better than an
 * untrained one, by every metric `eval` offers by default.
 *
 * Trained: test/eval/fixtures/seed28-w0.125-step1000.onnx, made by this project on 2026-11-29:
 *   prepare --synthetic 1024 (seed 3), train seed28 --width 0.125 --engine torch --batch-size 32
 *   --seed 1 for 1000 steps, export --onnx --checkpoint 1000
 * (training in the test would take minutes on two busy cores). Untrained: the same run's step 0,
 * i.e. the project's initial weights for seed 1, exported by the same exporter. Real: synthetic
 * faces of the training distribution that the run never saw (seed 3, images 5000 on).
 */

function fixture(name: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'test', 'eval', 'fixtures', name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`test/eval/fixtures/${name} not found`);
}

const N = 64;
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cg-rank-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function measure(path: string) {
  const session = await openGenerator(path, { provider: 'cpu' });
  try {
    const source = onnxSource(session, N, 0);
    const generated = { data: await source.read(0, N), n: N, height: 28, width: 28 };
    return yardstick(generated, syntheticFaces(3, 5000, 2 * N, 28));
  } finally {
    await session.close();
  }
}

describe('a trained generator ranks better than an untrained one', () => {
  it('SWD and the colour distance of the 1000-step seed28 are far below those of its initial weights', async () => {
    const untrainedPath = join(dir, 'untrained.onnx');
    writeFileSync(untrainedPath, buildGeneratorOnnx(buildSpec('seed28', 0.125), initialWeights(buildSpec('seed28', 0.125), 1)));
    const trained = await measure(fixture('seed28-w0.125-step1000.onnx'));
    const untrained = await measure(untrainedPath);
    assert.equal(trained.swd.baseline.mean, untrained.swd.baseline.mean, 'the same real halves');
    // At 28 px SWD has two levels. The 14 px level tells them apart by far (113 vs 278 on
    // 2026-11-30); at the 28 px band-pass level both are as far from real faces (112 vs 119:
    // the transposed convolutions' fine texture), so the mean is about 0.57x, not lower.
    assert.ok(trained.swd.value.mean < 0.75 * untrained.swd.value.mean, `SWD: trained ${trained.swd.value.mean} vs untrained ${untrained.swd.value.mean}`);
    const coarse = (r: typeof trained) => itemAt(r.swd.value.levels, 1, 'the 14 px level').value;
    assert.ok(coarse(trained) < 0.5 * coarse(untrained), `SWD at 14 px: trained ${coarse(trained)} vs untrained ${coarse(untrained)}`);
    assert.ok(
      trained.colour.value.value < 0.5 * untrained.colour.value.value,
      `colour: trained ${trained.colour.value.value} vs untrained ${untrained.colour.value.value}`,
    );
    // Neither is as good as real data.
    assert.ok(trained.swd.value.mean > trained.swd.baseline.mean, `SWD trained ${trained.swd.value.mean} vs real halves ${trained.swd.baseline.mean}`);
  });
});
