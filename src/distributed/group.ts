import { createHash } from 'node:crypto';
import { loadDistAddon, type NativeGroupOptions, type NativeProcessGroup } from '../bindings/torch.js';
import { isErrorCode, type ErrorCode } from '../error-codes.js';
import { CelebaGanError } from '../errors.js';
import type { LaunchEnv } from './env.js';
import type { DistBackend } from './options.js';

/**
 * A c10d process group (native/src/dist.cc) with errors as CelebaGanErrors. The training step
 * all-reduces its gradients in C++ (dist.h's Group::allReduceMean, reached through `native`);
 * the JavaScript collectives here serve the start-up checks, tests and benchmarks.
 */

/** A collective or rendezvous failure; `lostRank` is the rank that died or fell behind, when known. */
export class DistributedError extends CelebaGanError {
  override name = 'DistributedError';
  readonly lostRank?: number;
  constructor(code: ErrorCode, message: string, opts: { hint?: string; lostRank?: number; cause?: unknown } = {}) {
    super(code, message, { hint: opts.hint, cause: opts.cause });
    this.lostRank = opts.lostRank;
  }
}

const HINTS: Readonly<Partial<Record<ErrorCode, string>>> = Object.freeze({
  E_DIST_RENDEZVOUS:
    "Start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, a free MASTER_PORT on rank 0's machine, and rank 0 reachable from the others (or let `--nproc N` start them).",
  E_DIST_TIMEOUT:
    "Look at the lost rank's own output for why it stopped; resume the run from its last checkpoint with --resume. A longer --dist-timeout helps only if that rank was slow, not dead.",
  E_DIST_UNAVAILABLE: 'Install libgloo-dev and rebuild the addon: npm run build:native',
  E_DIST_BAD_CALL: 'This is a bug in the caller of the process group; please report it with the message above.',
  E_DIST_FAILED: 'Run again with --verbose and report the message above.',
});

/** Turns the addon's rejections (Error with `code`, `lostRank`) into DistributedErrors. */
export function distError(err: unknown): CelebaGanError {
  if (err instanceof CelebaGanError) return err;
  const e = err as { code?: unknown; lostRank?: unknown; message?: unknown };
  const code = isErrorCode(e?.code) && e.code.startsWith('E_DIST_') ? e.code : 'E_DIST_FAILED';
  const lostRank = typeof e?.lostRank === 'number' ? e.lostRank : undefined;
  return new DistributedError(code, String(e?.message ?? err), { hint: HINTS[code], lostRank, cause: err });
}

async function mapped<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (err) {
    throw distError(err);
  }
}

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Every collective fails after this many seconds (--dist-timeout). */
  timeoutS: number;
  /** The rendezvous gives up after this many seconds (default: timeoutS). */
  rendezvousTimeoutS?: number;
  backend: DistBackend;
  /** nccl: this rank's CUDA device index (LOCAL_RANK). */
  deviceIndex?: number;
  agentStore?: boolean;
  attempt?: number;
}

/** The group options for a rank started by a launcher (env.ts). */
export function groupOptionsFromEnv(launch: LaunchEnv, opts: { timeoutS: number; rendezvousTimeoutS?: number; backend: DistBackend }): ProcessGroupOptions {
  return {
    rendezvousTimeoutS: opts.rendezvousTimeoutS,
    rank: launch.rank,
    worldSize: launch.worldSize,
    masterAddr: launch.masterAddr,
    masterPort: launch.masterPort,
    timeoutS: opts.timeoutS,
    backend: opts.backend,
    deviceIndex: launch.localRank,
    agentStore: launch.agentStore,
    attempt: launch.attempt,
  };
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: string;
  /** The addon's object; the engine passes it to C++ to all-reduce gradients there. */
  readonly native: NativeProcessGroup;

  constructor(native: NativeProcessGroup) {
    this.native = native;
    this.rank = native.rank;
    this.worldSize = native.worldSize;
    this.backend = native.backend;
  }

  /** The mean over ranks of each array (new arrays; the inputs are left as they are). */
  allReduceMean(tensors: Float32Array[], bucketBytes?: number): Promise<Float32Array[]> {
    return mapped(() => this.native.allReduce(tensors, bucketBytes));
  }

  /** Rank `root`'s arrays, on every rank. */
  broadcast(tensors: Float32Array[], root: number): Promise<Float32Array[]> {
    return mapped(() => this.native.broadcast(tensors, root));
  }

  barrier(): Promise<void> {
    return mapped(() => this.native.barrier());
  }

  allGather(bytes: Uint8Array): Promise<Uint8Array[]> {
    return mapped(() => this.native.allGather(bytes));
  }

  /** Leaves the group; the others' diagnosis then says this rank closed rather than died. */
  close(): void {
    this.native.close();
  }
}

/** Rendezvous with the other ranks (rank 0, or torchrun's agent, hosts the TCPStore). */
export async function createProcessGroup(opts: ProcessGroupOptions): Promise<ProcessGroup> {
  const native: NativeGroupOptions = {
    rank: opts.rank,
    worldSize: opts.worldSize,
    masterAddr: opts.masterAddr,
    masterPort: opts.masterPort,
    timeoutMs: Math.max(1, Math.round(opts.timeoutS * 1000)),
    rendezvousTimeoutMs: Math.max(1, Math.round((opts.rendezvousTimeoutS ?? opts.timeoutS) * 1000)),
    backend: opts.backend,
    deviceIndex: opts.deviceIndex ?? 0,
    agentStore: opts.agentStore ?? false,
    storePrefix: opts.agentStore ? `/worker/attempt_${opts.attempt ?? 0}/` : '',
  };
  const dist = (() => {
    try {
      return loadDistAddon();
    } catch (err) {
      throw distError(err);
    }
  })();
  return new ProcessGroup(await mapped(() => dist.createGroup(native)));
}

/** SHA-256 of a set of named tensors: names in sorted order, each with its length and bytes. */
export function weightsDigest(weights: Readonly<Record<string, Float32Array>>): Buffer {
  const hash = createHash('sha256');
  for (const name of Object.keys(weights).sort()) {
    const t = weights[name]!;
    hash.update(`${name}\0${t.length}\0`);
    hash.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  }
  return hash.digest();
}

/**
 * Checks, at the start of a run, that every rank holds the same weights (same seed, same
 * checkpoint): the ranks all-gather a SHA-256 of their weights. Throws E_DIST_WEIGHTS_DIFFER on
 * every rank, naming the ranks that differ from rank 0. Returns the digest (hex).
 */
export async function checkIdenticalWeights(group: ProcessGroup, weights: Readonly<Record<string, Float32Array>>): Promise<string> {
  const mine = weightsDigest(weights);
  const all = await group.allGather(new Uint8Array(mine));
  const first = Buffer.from(all[0]!);
  const differ = all.map((d, r) => (Buffer.from(d).equals(first) ? -1 : r)).filter((r) => r >= 0);
  if (differ.length > 0) {
    throw new DistributedError(
      'E_DIST_WEIGHTS_DIFFER',
      `The ranks start from different weights: rank${differ.length > 1 ? 's' : ''} ${differ.join(', ')} differ${differ.length > 1 ? '' : 's'} from rank 0 (SHA-256 ${first.toString('hex').slice(0, 16)}…; this is rank ${group.rank}).`,
      {
        hint: 'Start every rank with the same --seed and the same checkpoint (--resume on a folder every rank reads), and the same --preset and --width.',
        lostRank: differ[0],
      },
    );
  }
  return mine.toString('hex');
}
