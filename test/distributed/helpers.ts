import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { loadDistAddon } from '../../src/bindings/torch.js';
import { addonRequired } from '../support/references.js';

/** Tensors whose mean over ranks is exact in float32 (small multiples of 0.25). */
export function rankTensors(rank: number): Float32Array[] {
  const small = Float32Array.from([rank + 1, 2 * (rank + 1), -3, 0.25 * rank]);
  const mid = Float32Array.from({ length: 1000 }, (_, i) => ((i % 13) - 6) * 0.25 * (rank + 1));
  // 280 KB: its own bucket when the tests set 64 KB buckets
  const big = Float32Array.from({ length: 70_000 }, (_, i) => ((i * 7 + rank * 3) % 101) - 50);
  return [small, mid, big];
}

export function digest(arrays: Float32Array[]): string {
  const h = createHash('sha256');
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
}

/**
 * Whether the 2-rank tests run: they skip only where the addon or its distributed part is missing
 * AND the environment does not require them (test/support/references.ts `addonRequired`: CI, or
 * CELEBA_GAN_REQUIRE_TORCH=1, which .ci/run sets after installing libgloo-dev, so a build without
 * Gloo fails there).
 */
export function distSkip(): string | false {
  try {
    loadDistAddon();
    return false;
  } catch (err) {
    if (addonRequired()) return false;
    return `distributed training is not built (${(err as { code?: string }).code}); install libgloo-dev and npm run build:native, or set CELEBA_GAN_REQUIRE_TORCH=1 to fail instead`;
  }
}

const WORKER = new URL('./rank-worker.js', import.meta.url).href;
/** The loader flags this process runs under (tsx from the sources), made absolute. */
const loaderArgs = process.execArgv.flatMap((a, i, all) => {
  if (a === '--import') return [];
  if (all[i - 1] === '--import') return ['--import', import.meta.resolve(a)];
  return a.startsWith('--import=') ? ['--import', import.meta.resolve(a.slice('--import='.length))] : [];
});

/** `node` arguments that run the rank worker with a scenario, from src/ (tsx) or dist/. */
export function workerArgs(...scenario: string[]): string[] {
  return [...loaderArgs, '--input-type=module', '-e', `await import(${JSON.stringify(WORKER)});`, ...scenario];
}

export interface RankOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The JSON lines the worker printed. */
  lines: Record<string, unknown>[];
  stderr: string;
}

/** JSON objects from lines of output (launchers may prefix lines, e.g. torchrun's `[default0]:`). */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .map((l) => l.slice(Math.max(0, l.indexOf('{'))))
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every process a test started, so `after` can kill what a failing test left behind. */
export const started = new Set<ChildProcess>();

export function killAll(): void {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  started.clear();
}

/** Runs one rank with the given launch environment; SIGKILLed after `deadlineMs` (a bound, so no test hangs). */
export function startRank(
  env: Record<string, string>,
  scenario: string[],
  deadlineMs: number,
): { child: ChildProcess; done: Promise<RankOutput>; nextLine: () => Promise<Record<string, unknown>> } {
  const child = spawn(process.execPath, workerArgs(...scenario), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  let stdout = '';
  let stderr = '';
  const waiting: ((l: Record<string, unknown>) => void)[] = [];
  let seen = 0;
  const pump = (): void => {
    const lines = jsonLines(stdout);
    while (waiting.length > 0 && seen < lines.length) waiting.shift()!(lines[seen++]!);
  };
  child.stdout.on('data', (d) => {
    stdout += String(d);
    pump();
  });
  child.stderr.on('data', (d) => (stderr += String(d)));
  const done = new Promise<RankOutput>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      started.delete(child);
      resolve({ code, signal, lines: jsonLines(stdout), stderr });
    });
  });
  const nextLine = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      waiting.push(resolve);
      pump();
      void done.then(() => reject(new Error(`rank exited before printing a line; stderr: ${stderr.slice(-2000)}`)));
    });
  return { child, done, nextLine };
}

export function launchEnv(rank: number, worldSize: number, port: number, timeoutS: number, rendezvousS = timeoutS): Record<string, string> {
  return {
    RANK: String(rank),
    WORLD_SIZE: String(worldSize),
    LOCAL_RANK: String(rank),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
    CGT_TEST_DIST_TIMEOUT_S: String(timeoutS),
    CGT_TEST_DIST_RENDEZVOUS_S: String(rendezvousS),
  };
}

/**
 * python3's argv for torchrun (`python3 -m torch.distributed.run`) starting two local ranks of
 * `node <args>` on 127.0.0.1:`port`, each rank's output teed with its prefix.
 */
export function torchrunArgs(port: number, nodeArgs: string[]): string[] {
  const launcher = ['--nproc_per_node', '2', '--redirects', '1', '--tee', '1', '--master_addr', '127.0.0.1', '--master_port', String(port)];
  return ['-m', 'torch.distributed.run', ...launcher, '--no_python', process.execPath, ...nodeArgs];
}
