import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { CelebaGanError } from '../errors.js';

/**
 * `--nproc N`: N local copies of a command, each with the launcher environment torchrun would
 * give it (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT
 * free), so a rank runs the same code whichever launcher started it.
 *
 * - No hangs: when one rank exits non-zero or is killed, the others get SIGTERM and, after
 *   `killGraceMs`, SIGKILL; the result names the first rank that failed.
 * - Signals: the caller (the CLI, which owns process signals) forwards Ctrl-C/SIGTERM with
 *   `stop(signal)`; the first is passed to every rank (rank 0 then writes its checkpoint), a
 *   second kills them all. Ranks run in their own process group so a terminal's Ctrl-C reaches
 *   them only through this forwarding, once.
 */

export type StopSignal = 'SIGINT' | 'SIGTERM';
const STOP_EXIT: Readonly<Record<StopSignal, number>> = Object.freeze({ SIGINT: 130, SIGTERM: 143 });

export interface SpawnRanksOptions {
  nproc: number;
  command: string;
  args: readonly string[];
  /** Base environment of every rank (default: this process's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Default: a free port on 127.0.0.1. */
  masterPort?: number;
  /** `inherit`: ranks write to this terminal; `pipe`: to `onOutput`. */
  output?: 'inherit' | 'pipe';
  onOutput?: (rank: number, stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** How long the other ranks get to stop after a failure or a forwarded signal (default 10 s). */
  killGraceMs?: number;
}

export interface RankExit {
  rank: number;
  pid: number;
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnResult {
  /** 0 all ranks succeeded; 130/143 stopped by a forwarded SIGINT/SIGTERM; else the first failed rank's code (1 when it was killed). */
  exitCode: number;
  ranks: RankExit[];
  /** The first rank that exited non-zero or was killed, while no stop had been asked for. */
  failed?: RankExit;
  stoppedBy?: StopSignal;
  /** One line for the CLI: what happened, naming the failed rank. */
  summary: string;
}

export interface LocalRanks {
  readonly masterPort: number;
  readonly pids: readonly number[];
  /** Forward a stop signal (first call) or kill every rank (second call). */
  stop(signal: StopSignal): void;
  readonly done: Promise<SpawnResult>;
}

/** A TCP port nobody listens on at this moment, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function describeExit(e: RankExit): string {
  return e.signal ? `rank ${e.rank} (pid ${e.pid}) was killed by ${e.signal}` : `rank ${e.rank} (pid ${e.pid}) exited with code ${e.code}`;
}

function signalProcessGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the rank and anything it started
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Starts the ranks; `done` resolves when every one of them has exited. */
export async function spawnLocalRanks(opts: SpawnRanksOptions): Promise<LocalRanks> {
  const masterPort = opts.masterPort ?? (await freePort());
  const grace = opts.killGraceMs ?? 10_000;
  const children: ChildProcess[] = [];
  const exits: (RankExit | undefined)[] = new Array(opts.nproc).fill(undefined);
  let failed: RankExit | undefined;
  let stoppedBy: StopSignal | undefined;
  let stops = 0;
  let killTimer: NodeJS.Timeout | undefined;
  let spawnError: Error | undefined;

  const live = (): ChildProcess[] => children.filter((c, r) => exits[r] === undefined && c.pid !== undefined);
  const killAllLater = (): void => {
    if (killTimer) return;
    killTimer = setTimeout(() => live().forEach((c) => signalProcessGroup(c, 'SIGKILL')), grace);
    killTimer.unref();
  };

  let resolveDone!: (r: SpawnResult) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<SpawnResult>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });

  const finishIfAllExited = (): void => {
    if (exits.some((e) => e === undefined)) return;
    if (killTimer) clearTimeout(killTimer);
    const ranks = exits as RankExit[];
    if (spawnError) {
      rejectDone(spawnError);
      return;
    }
    let exitCode = 0;
    let summary = `all ${opts.nproc} ranks finished`;
    if (failed) {
      exitCode = failed.code !== null && failed.code >= 1 && failed.code <= 125 ? failed.code : 1;
      summary = `${describeExit(failed)}; the other ranks were stopped`;
    } else if (stoppedBy) {
      exitCode = STOP_EXIT[stoppedBy];
      summary = `stopped by ${stoppedBy}: ${ranks.map((e) => (e.signal ? `rank ${e.rank} killed by ${e.signal}` : `rank ${e.rank} exit ${e.code}`)).join(', ')}`;
    }
    resolveDone({ exitCode, ranks, failed, stoppedBy, summary });
  };

  for (let rank = 0; rank < opts.nproc; rank++) {
    const env: NodeJS.ProcessEnv = {
      ...(opts.env ?? process.env),
      RANK: String(rank),
      WORLD_SIZE: String(opts.nproc),
      LOCAL_RANK: String(rank),
      LOCAL_WORLD_SIZE: String(opts.nproc),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(masterPort),
    };
    delete env.TORCHELASTIC_USE_AGENT_STORE; // this launcher has no agent store: rank 0 hosts it
    const child = spawn(opts.command, [...opts.args], {
      env,
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', opts.output === 'pipe' ? 'pipe' : 'inherit', opts.output === 'pipe' ? 'pipe' : 'inherit'],
    });
    children.push(child);
    if (opts.output === 'pipe') {
      child.stdout?.on('data', (d: Buffer) => opts.onOutput?.(rank, 'stdout', d));
      child.stderr?.on('data', (d: Buffer) => opts.onOutput?.(rank, 'stderr', d));
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // an error after start (e.g. a failed kill): the exit event follows
      spawnError ??= new CelebaGanError('E_DIST_SPAWN', `Could not start rank ${rank}: ${opts.command} (${err.code ?? err.message}).`, {
        hint: `Check that ${opts.command} exists and is executable.`,
        cause: err,
      });
      exits[rank] = { rank, pid: -1, code: null, signal: null };
      live().forEach((c) => signalProcessGroup(c, 'SIGKILL'));
      finishIfAllExited();
    });
    // Piped, a rank is done once its output is read too ('close' follows 'exit' and the last
    // 'data'): on a loaded machine a rank's last lines can arrive after its exit.
    child.on(opts.output === 'pipe' ? 'close' : 'exit', (code: number | null, signal: NodeJS.Signals | null) => {
      const e: RankExit = { rank, pid: child.pid ?? -1, code, signal };
      exits[rank] = e;
      if (code !== 0 && !stoppedBy && !failed) {
        failed = e;
        live().forEach((c) => signalProcessGroup(c, 'SIGTERM'));
        killAllLater();
      }
      finishIfAllExited();
    });
  }

  return {
    masterPort,
    pids: children.map((c) => c.pid ?? -1),
    stop(signal: StopSignal): void {
      stops++;
      if (stops === 1) {
        if (!failed) stoppedBy = signal;
        live().forEach((c) => signalProcessGroup(c, signal));
        killAllLater();
      } else {
        live().forEach((c) => signalProcessGroup(c, 'SIGKILL'));
      }
    },
    done,
  };
}
