import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CelebaGanError } from '../errors.js';

/**
 * Sensible defaults for commands run with no paths: the newest data set in `data/`, the newest
 * run in `runs/`, the newest model in `models/`. Each pick is reported by the caller; when
 * nothing fits, the error names the command to run first.
 */

export interface Pick {
  path: string;
  /** e.g. `newest of 3 data sets in data/` */
  why: string;
}

function newest(dir: string, accept: (path: string, isDir: boolean) => boolean): { path: string; count: number } | null {
  if (!existsSync(dir)) return null;
  let best: { path: string; mtime: number } | null = null;
  let count = 0;
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    const st = statSync(path);
    if (!accept(path, st.isDirectory())) continue;
    count++;
    if (!best || st.mtimeMs > best.mtime) best = { path, mtime: st.mtimeMs };
  }
  return best ? { path: best.path, count } : null;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function pickDataset(dir = 'data'): Pick {
  const found = newest(dir, (p, isDir) => !isDir && p.endsWith('.cgds'));
  if (!found) {
    throw new CelebaGanError('E_NO_DATASET', `no data set (*.cgds) found in ${dir}/`, {
      hint: 'Run `celeba-gan prepare --synthetic 20000` (no download) or `celeba-gan prepare --input <celeba folder or zip>` first, or pass --data.',
    });
  }
  return { path: found.path, why: `newest of ${plural(found.count, 'data set')} in ${dir}/` };
}

/** A run that can be exported or resumed: `run.json` plus at least one `checkpoints/step-*` folder. */
function hasCheckpoint(runDir: string): boolean {
  const dir = join(runDir, 'checkpoints');
  return existsSync(dir) && readdirSync(dir).some((name) => name.startsWith('step-'));
}

export function pickRun(dir = 'runs'): Pick {
  const found = newest(dir, (p, isDir) => isDir && existsSync(join(p, 'run.json')) && hasCheckpoint(p));
  if (!found) {
    const unsaved = newest(dir, (p, isDir) => isDir && existsSync(join(p, 'run.json')));
    throw new CelebaGanError(
      'E_NO_RUN',
      unsaved ? `no run in ${dir}/ has a checkpoint yet (the newest, ${unsaved.path}, stopped before its first one)` : `no training run found in ${dir}/`,
      {
        hint: unsaved
          ? 'Run `celeba-gan train` (a run saves a checkpoint every --checkpoint-every steps, at the end and on Ctrl-C), or pass --run <folder>.'
          : 'Run `celeba-gan train` first, or pass --run <folder>.',
      },
    );
  }
  return { path: found.path, why: `newest of ${plural(found.count, 'run')} with checkpoints in ${dir}/` };
}

export function pickModel(dir = 'models'): Pick {
  const found = newest(dir, (p, isDir) => !isDir && p.endsWith('.onnx'));
  if (!found) {
    throw new CelebaGanError('E_NO_MODEL', `no ONNX model found in ${dir}/`, {
      hint: 'Run `celeba-gan export --onnx` first (after `celeba-gan train`), or pass --model <file.onnx>.',
    });
  }
  return { path: found.path, why: `newest of ${plural(found.count, 'model')} in ${dir}/` };
}
