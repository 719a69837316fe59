import { loadTorchAddon } from '../../../src/bindings/torch.js';

/**
 * Whether the torch tests run: they skip only where the addon is missing AND the environment does
 * not require it. CI sets CELEBA_GAN_REQUIRE_TORCH=1 (.ci/run installs libtorch), so a broken
 * build fails there instead of skipping.
 */
export function torchSkip(): string | false {
  try {
    loadTorchAddon();
    return false;
  } catch (err) {
    if (process.env.CELEBA_GAN_REQUIRE_TORCH) return false;
    return `the torch addon is not built (${(err as { code?: string }).code}); npm run build:native, or set CELEBA_GAN_REQUIRE_TORCH=1 to fail instead`;
  }
}
