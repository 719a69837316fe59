import { CelebaGanError, UsageError, assertInteger, assertNumber, describe } from '../errors.js';

/**
 * The options of a data-parallel run, as `train` will take them: `--nproc N` (spawn N local
 * ranks), `--dist-timeout S` (rendezvous and each collective), `--dist-backend auto|gloo|nccl`.
 */

export const DIST_BACKENDS = Object.freeze(['auto', 'gloo', 'nccl'] as const);
export type DistBackendChoice = (typeof DIST_BACKENDS)[number];
export type DistBackend = Exclude<DistBackendChoice, 'auto'>;

export const DEFAULT_DIST_TIMEOUT_S = 60;
/** More local ranks than this is almost certainly a typo (one rank per GPU or core). */
export const MAX_NPROC = 64;

export interface DistOptions {
  /** Local ranks to spawn; undefined: none (a single process, or ranks started by a launcher). */
  nproc?: number;
  timeoutS: number;
  backend: DistBackendChoice;
}

/** Validates the raw flag values (from yargs or an API caller); throws E_BAD_ARGUMENT naming the flag. */
export function resolveDistOptions(raw: { nproc?: unknown; distTimeout?: unknown; distBackend?: unknown }): DistOptions {
  const nproc = raw.nproc === undefined ? undefined : assertInteger('--nproc', raw.nproc, 1, MAX_NPROC);
  const timeoutS = raw.distTimeout === undefined ? DEFAULT_DIST_TIMEOUT_S : assertNumber('--dist-timeout', raw.distTimeout, 0, 86400, { exclusiveMin: true });
  const backend = raw.distBackend ?? 'auto';
  if (typeof backend !== 'string' || !(DIST_BACKENDS as readonly string[]).includes(backend)) {
    throw new UsageError('E_BAD_ARGUMENT', `Unsupported --dist-backend ${describe(backend)}. Should be one of: ${DIST_BACKENDS.join(', ')}`);
  }
  return { nproc, timeoutS, backend: backend as DistBackendChoice };
}

/**
 * The backend a rank uses: `auto` is NCCL for a CUDA device when the addon has it, else Gloo
 * (Gloo works on CUDA tensors too, through host copies). NCCL asked for by name and missing is an
 * error, never a silent fallback.
 */
export function chooseBackend(choice: DistBackendChoice, device: string, available: readonly string[]): { backend: DistBackend; why: string } {
  const cuda = device.startsWith('cuda');
  if (choice === 'auto') {
    if (cuda && available.includes('nccl')) return { backend: 'nccl', why: `auto: ${device} and the addon has NCCL` };
    return {
      backend: 'gloo',
      why: cuda ? 'auto: the addon has no NCCL (not built against a CUDA libtorch with NCCL), so Gloo' : 'auto: CPU training uses Gloo',
    };
  }
  if (!available.includes(choice)) {
    throw new CelebaGanError(
      'E_DIST_UNAVAILABLE',
      `--dist-backend ${choice} is not in this build of the libtorch addon (it has: ${available.join(', ') || 'none'}).`,
      {
        hint:
          choice === 'nccl'
            ? 'Build the addon against a CUDA libtorch with NCCL (LIBTORCH=/path/to/libtorch npm run build:native), or use --dist-backend gloo.'
            : 'Install libgloo-dev and rebuild the addon: npm run build:native',
      },
    );
  }
  if (choice === 'nccl' && !cuda)
    throw new UsageError('E_BAD_ARGUMENT', `--dist-backend nccl needs a CUDA device, but --device is ${device}. Use --device cuda or --dist-backend gloo.`);
  return { backend: choice, why: `--dist-backend ${choice}` };
}
