import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { test } from 'node:test';

/**
 * The one gate for tests that need an independent reference (PyTorch eager, onnx.checker, NumPy:
 * Python modules under /usr/bin/python3; the chromium the page tests drive; all installed by
 * .ci/setup). Where the reference is missing:
 *
 * - in CI (`CI=true`) or with `CELEBA_GAN_REQUIRE_REFERENCES=1`: one test named
 *   `REFERENCE REQUIRED - ...` FAILS with what is missing and how to install it (the tests that
 *   need it are skipped, pointing at that failure), so a broken python3-torch can never turn a
 *   parity check into a silent pass;
 * - elsewhere: the tests are skipped with the same message.
 *
 * Usage: `test(name, { skip: referenceSkip(TORCH) }, ...)` or `describe(name, { skip: ... })`.
 * The torch addon has the same rule with its own variable (`addonRequired`: CI, or
 * CELEBA_GAN_REQUIRE_TORCH=1), used by test/support/torch-addon.ts and the distributed tests.
 */

export const PYTHON = process.env.CELEBA_GAN_PYTHON ?? '/usr/bin/python3';

export interface Reference {
  /** Python modules that must import (under PYTHON); or, with `executable`, none. */
  modules: readonly string[];
  /** A program that must exist instead (an absolute path). */
  executable?: string;
  /** How to install them (Debian first). */
  install: string;
}

export const TORCH: Reference = Object.freeze({ modules: ['torch', 'numpy'], install: 'apt-get install python3-torch python3-numpy' });
export const ONNX: Reference = Object.freeze({ modules: ['onnx'], install: 'apt-get install python3-onnx (or pip install onnx)' });
export const NUMPY: Reference = Object.freeze({ modules: ['numpy'], install: 'apt-get install python3-numpy' });
/** The real distributed launcher, `python3 -m torch.distributed.run` (torchrun). */
export const TORCHRUN: Reference = Object.freeze({ modules: ['torch.distributed.run'], install: 'apt-get install python3-torch' });
/** The browser the page tests drive (playwright-core launches it). */
export const CHROMIUM: Reference = Object.freeze({
  modules: [],
  executable: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  install: 'apt-get install chromium (or set CHROMIUM_PATH to another chromium)',
});

/** A CI runner says so in CI (GitHub, GitLab and most others set CI=true; some CI=1). */
function ciSet(env: NodeJS.ProcessEnv): string | null {
  return env.CI === 'true' || env.CI === '1' ? `CI=${env.CI}` : null;
}

/** Whether a missing reference fails instead of skipping: CI=true (or 1) or CELEBA_GAN_REQUIRE_REFERENCES=1. */
export function referencesRequired(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.CELEBA_GAN_REQUIRE_REFERENCES === '1') return 'CELEBA_GAN_REQUIRE_REFERENCES=1';
  return ciSet(env);
}

/**
 * Whether a torch addon (or its distributed part) that does not load fails instead of skipping:
 * CI=true (or 1) or CELEBA_GAN_REQUIRE_TORCH set to anything but `0` (.ci/run sets it to 1).
 */
export function addonRequired(env: NodeJS.ProcessEnv = process.env): string | null {
  const value = env.CELEBA_GAN_REQUIRE_TORCH;
  if (value && value !== '0') return `CELEBA_GAN_REQUIRE_TORCH=${value}`;
  return ciSet(env);
}

const probed = new Map<string, string | null>();

/** Why python3 cannot import the modules, or null when it can (probed once per process). */
export function pythonMissing(modules: readonly string[]): string | null {
  const key = modules.join(',');
  if (!probed.has(key)) {
    const r = spawnSync(PYTHON, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
    probed.set(
      key,
      r.error
        ? `${PYTHON} cannot run (${r.error.message})`
        : r.status !== 0
          ? `${PYTHON} cannot import ${modules.join('/')} (${r.stderr.trim().split('\n').pop()})`
          : null,
    );
  }
  return probed.get(key)!;
}

const failed = new Set<string>();

/**
 * `false` when the reference is usable; otherwise the skip message for the tests that need it,
 * and, where references are required, a failing `REFERENCE REQUIRED - ...` test (once per
 * reference and file).
 */
export function referenceSkip(ref: Reference, env: NodeJS.ProcessEnv = process.env): string | false {
  const missing = ref.executable ? (existsSync(ref.executable) ? null : `there is no ${ref.executable}`) : pythonMissing(ref.modules);
  if (!missing) return false;
  const what = `${missing}; install it: ${ref.install}`;
  const required = referencesRequired(env);
  if (!required) return `SKIPPED: ${what} (a missing reference fails under CI=true or CELEBA_GAN_REQUIRE_REFERENCES=1)`;
  const name = `REFERENCE REQUIRED - ${ref.executable ?? `python3 with ${ref.modules.join(', ')}`}`;
  if (!failed.has(name)) {
    failed.add(name);
    test(name, () => {
      assert.fail(`${what}. This independent reference is required here (${required}): without it the parity tests would only compare our code with itself`);
    });
  }
  return `the required reference is missing (see the failing test "${name}"): ${what}`;
}
