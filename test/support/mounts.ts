import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/**
 * Real mounts for tests of OS failures that no injected error imitates faithfully (Node's
 * recursive mkdir says ENOENT, not EROFS, under a read-only mount). They need root and a kernel
 * that lets this process mount: each helper returns a reason to skip when it cannot.
 */

function run(args: string[]): string | null {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.error) return `${args[0]}: ${r.error.message}`;
  return r.status === 0 ? null : `${args.join(' ')}: ${(r.stderr || r.stdout).trim() || `exit ${r.status}`}`;
}

export interface Mount {
  /** null when mounted; else why not (pass it to test's `skip`). */
  skip: string | null;
  unmount(): void;
}

function mounted(target: string, steps: string[][]): Mount {
  if (process.getuid?.() !== 0) return { skip: 'needs root to mount', unmount: () => undefined };
  mkdirSync(target, { recursive: true });
  for (const [i, step] of steps.entries()) {
    const why = run(step);
    if (why !== null) {
      if (i > 0) run(['umount', target]);
      return { skip: `cannot mount here (${why})`, unmount: () => undefined };
    }
  }
  return { skip: null, unmount: () => void run(['umount', target]) };
}

/** `source` bind-mounted read-only at `target` (mount --bind, then remount,ro,bind). */
export function readOnlyBind(source: string, target: string): Mount {
  mkdirSync(source, { recursive: true });
  return mounted(target, [
    ['mount', '--bind', source, target],
    ['mount', '-o', 'remount,ro,bind', target],
  ]);
}

/** A tmpfs of `bytes` at `target`: writes past that fail with ENOSPC. */
export function smallTmpfs(target: string, bytes: number): Mount {
  return mounted(target, [['mount', '-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', target]]);
}
