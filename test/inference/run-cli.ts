import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { waitFor } from '../support/wait.js';

/**
 * Run the CLI entry (src/cli/main) in a child process, as a user would, and collect its exit
 * code and output. Works from src/ under tsx and from dist/: the child gets the loader flags
 * this process runs under, made absolute because it may run in a folder with no node_modules.
 */

const MAIN = new URL('../../src/cli/main.js', import.meta.url).href;
const loaderArgs = process.execArgv.flatMap((a, i, all) => {
  if (a === '--import') return [];
  if (all[i - 1] === '--import') return ['--import', import.meta.resolve(a)];
  return a.startsWith('--import=') ? ['--import', import.meta.resolve(a.slice('--import='.length))] : [];
});

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return startCli(args, opts).result;
}

export interface RunningCli {
  child: ChildProcess;
  /** What it has written to stderr so far. */
  stderr(): string;
  result: Promise<CliResult>;
}

/** Start the CLI in a child process and return at once (to signal it, watch its files...). */
export function startCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunningCli {
  const script = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
  const child = spawn(process.execPath, [...loaderArgs, '--input-type=module', '-e', script, ...args], {
    cwd: opts.cwd ?? process.cwd(),
    env: opts.env ?? process.env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? -1 : -2), stdout, stderr }));
  });
  return { child, stderr: () => stderr, result };
}

/**
 * Poll `ready` every 50 ms until it holds or the child has exited (then the caller's assertions
 * fail); fails when neither happens within `timeoutMs`.
 */
export async function until(ready: () => boolean, child: ChildProcess, timeoutMs = 120_000): Promise<void> {
  await waitFor(() => ready() || child.exitCode !== null || child.signalCode !== null, {
    timeoutMs,
    what: `the CLI child (pid ${child.pid}) to get ready`,
    intervalMs: 50,
  });
}

/** Resident memory of a process in bytes (Linux /proc), or null elsewhere. */
export function residentBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
