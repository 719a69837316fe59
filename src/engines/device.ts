import { UsageError, describe } from '../errors.js';

/**
 * The one check of a training `--device`: `auto`, `cpu`, `cuda` or `cuda:N`. The CLI calls it
 * before anything else is opened, so a typo (`--device gpu`) is a usage error whatever engine
 * `auto` picks; the torch engine calls it again for library callers. Whether the device exists
 * (CUDA built in, N below the GPU count) is the engine's to say.
 */

export type TrainDevice = { kind: 'auto' } | { kind: 'cpu' } | { kind: 'cuda'; index: number };

const DEVICE = /^(auto|cpu|cuda(?::(\d{1,3}))?)$/;

export function parseTrainDevice(value: unknown): TrainDevice {
  const m = typeof value === 'string' ? DEVICE.exec(value) : null;
  if (!m) {
    throw new UsageError(
      'E_BAD_ARGUMENT',
      `Unsupported device ${typeof value === 'string' ? JSON.stringify(value) : describe(value)} for the torch engine. Should be one of: auto, cpu, cuda, cuda:N`,
      {
        hint: 'cpu trains on the CPU; cuda (or cuda:N for the N-th GPU) needs the torch engine built against a CUDA libtorch.',
      },
    );
  }
  if (m[1] === 'auto' || m[1] === 'cpu') return { kind: m[1] };
  return { kind: 'cuda', index: m[2] === undefined ? 0 : Number(m[2]) };
}
