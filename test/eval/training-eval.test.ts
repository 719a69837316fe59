import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSpec } from '../../src/config/presets.js';
import { prepareSynthetic, SYNTHETIC_ATTRIBUTES } from '../../src/data/synthetic.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/engines/tfjs/tfjs-engine.js';
import { createTrainingEvalHook } from '../../src/eval/training-eval.js';
import { train, type TrainConfig } from '../../src/train/index.js';

/** `--eval-every` as a training step hook: a tiny tfjs run (width 1/32, batch 4) on synthetic faces. */

const spec = buildSpec('seed28', 0.03125);
let root: string;
let data: string;
let engine: TfjsEngine;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cg-train-eval-'));
  data = join(root, 'synthetic-28.cgds');
  await prepareSynthetic({ count: 16, out: data, size: 28, seed: 4 });
  engine = await createTfjsEngine(spec, { backend: 'cpu' });
});
after(() => {
  engine.dispose();
  rmSync(root, { recursive: true, force: true });
});

function cfg(out: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    spec,
    dataPath: data,
    outDir: join(root, out),
    seed: 9,
    batchSize: 4,
    sampleEvery: 0,
    checkpointEvery: 0,
    keep: 1,
    logEvery: 1,
    plotEvery: 0,
    ...extra,
  };
}

function evalLines(dir: string): Record<string, number | string>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => l.kind === 'eval');
}

describe('train --eval-every (hook)', () => {
  it('logs SWD and the colour distance beside their real-halves baselines to metrics.jsonl every N steps, and reports them', async () => {
    const hook = createTrainingEvalHook({ every: 2, n: 8 });
    const seen: [string, number][] = [];
    try {
      await train(cfg('run-a', { steps: 4 }), engine, { onEval: (name, step) => seen.push([name, step]) }, [hook]);
    } finally {
      await hook.dispose();
    }
    const lines = evalLines(join(root, 'run-a'));
    assert.deepEqual(
      lines.map((l) => l.step),
      [2, 4],
    );
    assert.deepEqual(seen, [
      ['eval', 2],
      ['eval', 4],
    ]);
    for (const l of lines) {
      assert.equal(l.n, 8);
      // A barely trained generator is far from the data; two real halves are closer (at n = 8
      // the baseline itself is high: the 14 px level of 8 faces is mostly sampling noise).
      assert.ok((l.swd as number) > 1.5 * (l.swdBaseline as number), JSON.stringify(l));
      assert.ok((l.colour as number) > (l.colourBaseline as number), JSON.stringify(l));
      assert.match(l.swdLevels as string, /^\d+\.\d\d \d+\.\d\d$/); // 28 px: two pyramid levels, 28 and 14 px
    }
    // The baseline is computed once, from the same fixed slices.
    assert.equal(lines[0]!.swdBaseline, lines[1]!.swdBaseline);
    // loss.svg draws the SWD curve in a third panel.
    const svg = readFileSync(join(root, 'run-a', 'loss.svg'), 'utf8');
    assert.match(svg, /SWD x1e3 \(lower is better\)/);
  });

  it('measures the same thing in every run with the same seed (fixed slice and latents)', async () => {
    const once = async (out: string): Promise<Record<string, number | string>[]> => {
      const hook = createTrainingEvalHook({ every: 2, n: 8 });
      try {
        await train(cfg(out, { steps: 2 }), engine, {}, [hook]);
      } finally {
        await hook.dispose();
      }
      return evalLines(join(root, out));
    };
    const [a, b] = [await once('run-b'), await once('run-c')];
    assert.equal(a[0]!.swd, b[0]!.swd);
    assert.equal(a[0]!.colour, b[0]!.colour);
  });

  it('a conditional run: the generator is fed the labels of a fixed sample of training images, and the curve is logged', async () => {
    const conditional = buildSpec('seed28', 0.03125, { attributes: [...SYNTHETIC_ATTRIBUTES] });
    const cEngine = await createTfjsEngine(conditional, { backend: 'cpu' });
    const hook = createTrainingEvalHook({ every: 2, n: 8 });
    try {
      await train(cfg('run-cond', { spec: conditional, steps: 2 }), cEngine, {}, [hook]);
    } finally {
      await hook.dispose();
      cEngine.dispose();
    }
    const [line] = evalLines(join(root, 'run-cond'));
    assert.equal(line!.step, 2);
    assert.equal(line!.n, 8);
    assert.ok((line!.swd as number) > (line!.swdBaseline as number), JSON.stringify(line));
  });

  it('ERROR PATH - eval-every below 1', () => {
    assert.throws(() => createTrainingEvalHook({ every: 0 }), { name: 'RangeError', message: /eval-every must be an integer >= 1, got 0/ });
  });
});
