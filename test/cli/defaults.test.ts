import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pickDataset, pickModel, pickRun } from '../../src/cli/defaults.js';

function run(root: string, name: string, checkpoint: boolean, mtime: number): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'checkpoints'), { recursive: true });
  writeFileSync(join(dir, 'run.json'), '{}');
  if (checkpoint) mkdirSync(join(dir, 'checkpoints', 'step-000000010'));
  utimesSync(dir, mtime, mtime);
  return dir;
}

test('pickRun takes the newest run that has a checkpoint, skipping one stopped before its first', () => {
  const root = mkdtempSync(join(tmpdir(), 'cg-defaults-'));
  try {
    const trained = run(root, 'a', true, 1_000);
    run(root, 'b', false, 2_000);
    const pick = pickRun(root);
    assert.equal(pick.path, trained);
    assert.match(pick.why, /newest of 1 run with checkpoints/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ERROR PATH - pickRun when no run has a checkpoint names the unsaved run', () => {
  const root = mkdtempSync(join(tmpdir(), 'cg-defaults-'));
  try {
    run(root, 'b', false, 2_000);
    assert.throws(() => pickRun(root), { name: 'CelebaGanError', code: 'E_NO_RUN', message: /has a checkpoint yet .*b, stopped before its first one/ });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ERROR PATH - empty folders name the command to run first', () => {
  const root = mkdtempSync(join(tmpdir(), 'cg-defaults-'));
  try {
    assert.throws(() => pickDataset(join(root, 'data')), { code: 'E_NO_DATASET', hint: /celeba-gan prepare --synthetic/ });
    assert.throws(() => pickRun(join(root, 'runs')), { code: 'E_NO_RUN', hint: /celeba-gan train/ });
    assert.throws(() => pickModel(join(root, 'models')), { code: 'E_NO_MODEL', hint: /celeba-gan export --onnx/ });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
