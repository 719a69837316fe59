import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadTorchAddon } from '../../src/bindings/torch.js';
import { addonRequired } from './references.js';

/**
 * The one gate for the tests of the torch addon: they skip only where the addon is missing AND
 * the environment does not require it (`addonRequired`: CI, or CELEBA_GAN_REQUIRE_TORCH=1, which
 * .ci/run sets after installing libtorch). Where it is required they run, and fail on the load
 * error, so a broken build can never pass by skipping.
 */
export function torchSkip(env: NodeJS.ProcessEnv = process.env): string | false {
  try {
    loadTorchAddon();
    return false;
  } catch (err) {
    if (addonRequired(env)) return false;
    return `the torch addon is not built (${(err as { code?: string }).code}); npm run build:native, or set CELEBA_GAN_REQUIRE_TORCH=1 to fail instead`;
  }
}

export const REQUIRE_CUDA_ENV = 'CELEBA_GAN_REQUIRE_CUDA';

/**
 * Whether the CUDA cases run: where the addon loads and its libtorch sees a GPU. Elsewhere they
 * skip with a message, except under CELEBA_GAN_REQUIRE_CUDA=1 (`npm run check:gpu` sets it):
 * there one test named `CUDA REQUIRED - ...` fails saying why, so a GPU check can never pass by
 * skipping.
 */
export function cudaSkip(): string | false {
  let why: string;
  try {
    const sys = loadTorchAddon().systemInfo();
    if (sys.cuda && sys.cudaDevices > 0) return false;
    why = `this libtorch ${sys.torchVersion} has no CUDA or sees no GPU`;
  } catch (err) {
    why = `the torch addon does not load (${(err as { code?: string }).code ?? String(err)})`;
  }
  const fix =
    'build the addon against a CUDA libtorch on a machine with an NVIDIA GPU: LIBTORCH_USE_PYTORCH=1 npm run build:native (npm run check:gpu does it)';
  if (process.env[REQUIRE_CUDA_ENV] !== '1') return `SKIPPED: ${why}; ${fix}; ${REQUIRE_CUDA_ENV}=1 makes this fail instead`;
  test('CUDA REQUIRED - the torch engine on a CUDA device', () => {
    assert.fail(`${why}, but ${REQUIRE_CUDA_ENV}=1 requires the CUDA cases to run; ${fix}`);
  });
  return `CUDA is required but unavailable (see the failing test "CUDA REQUIRED - ..."): ${why}`;
}
