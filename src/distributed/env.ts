import { UsageError, expected } from '../errors.js';

/**
 * Rank, world size and rendezvous address as the standard launchers give them: torchrun
 * (`python3 -m torch.distributed.run`), a Kubeflow PyTorchJob, SLURM with these variables
 * exported, and our own `--nproc` spawner (spawn.ts). One process per rank.
 */
export interface LaunchEnv {
  rank: number;
  worldSize: number;
  /** The rank's index on its machine: its CUDA device is `cuda:LOCAL_RANK`. */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /**
   * torchrun's agent hosts the TCPStore on MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True), so
   * rank 0 must connect to it rather than host one; keys then live under `/worker/attempt_N/`.
   */
  agentStore: boolean;
  /** TORCHELASTIC_RESTART_COUNT: which attempt of an elastic job this is (0 otherwise). */
  attempt: number;
}

/** The variables every launcher sets; LOCAL_RANK is optional (one rank per pod in a PyTorchJob). */
export const LAUNCH_VARIABLES = Object.freeze(['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'] as const);

function envInteger(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number {
  const raw = env[name]!;
  const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError('E_DIST_ENV', `${expected(`integer between ${min} and ${max}`, `${name} (from the environment)`, raw)}`, {
      hint: `Set ${name} to an integer between ${min} and ${max}, or let a launcher set it (torchrun, celeba-gan train --nproc N).`,
    });
  }
  return value;
}

/**
 * The launch environment, or null when none of RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT is set
 * (a single-process run). Throws E_DIST_ENV (a usage error) when only some are set or one is
 * malformed, naming the variable, what it holds and what it should.
 */
export function readLaunchEnv(env: NodeJS.ProcessEnv = process.env): LaunchEnv | null {
  const set = LAUNCH_VARIABLES.filter((name) => env[name] !== undefined && env[name] !== '');
  if (set.length === 0) return null;
  if (set.length < LAUNCH_VARIABLES.length) {
    const missing = LAUNCH_VARIABLES.filter((name) => !set.includes(name));
    throw new UsageError(
      'E_DIST_ENV',
      `A distributed launch needs ${LAUNCH_VARIABLES.join(', ')}; ${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} set but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not.`,
      {
        hint: 'Start the ranks with a launcher that sets all of them (torchrun, a PyTorchJob, celeba-gan train --nproc N), or unset them for a single-process run.',
      },
    );
  }
  const worldSize = envInteger(env, 'WORLD_SIZE', 1, 65536);
  const rank = envInteger(env, 'RANK', 0, worldSize - 1);
  const localRank = env.LOCAL_RANK === undefined || env.LOCAL_RANK === '' ? 0 : envInteger(env, 'LOCAL_RANK', 0, worldSize - 1);
  const masterPort = envInteger(env, 'MASTER_PORT', 1, 65535);
  const masterAddr = env.MASTER_ADDR!.trim();
  if (!/^[A-Za-z0-9._:[\]-]+$/.test(masterAddr)) {
    throw new UsageError('E_DIST_ENV', expected('a host name or IP address', 'MASTER_ADDR (from the environment)', env.MASTER_ADDR), {
      hint: 'Set MASTER_ADDR to the address of the machine running rank 0 (127.0.0.1 on one machine).',
    });
  }
  const agentStore = env.TORCHELASTIC_USE_AGENT_STORE === 'True';
  const attempt = agentStore && env.TORCHELASTIC_RESTART_COUNT ? envInteger(env, 'TORCHELASTIC_RESTART_COUNT', 0, 1_000_000) : 0;
  return { rank, worldSize, localRank, masterAddr: masterAddr.replace(/^\[(.*)\]$/, '$1'), masterPort, agentStore, attempt };
}
