import { linkSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CelebaGanError } from '../errors.js';
import { tempPathFor } from '../util/atomic.js';

/**
 * One `generate` run per output slice at a time. A run holds a lock file in its output folder
 * (`generate.lock`, or `generate-shard-K-of-N.lock` for a shard) that says who holds it (pid,
 * host, start time) and which files it writes (index range and extension):
 *
 * - The lock is created with link(2), which never replaces an existing file, so of two runs that
 *   race for the same lock exactly one gets it; the file is complete from the moment it exists.
 * - Then the run looks at the other locks in the folder: a live run writing an overlapping range
 *   of the same file type (another sharding, another --index) makes it give up. Each run creates
 *   its lock before it looks, so of two such runs at least one sees the other.
 * - A lock is stale when its pid no longer runs on this host (a run killed with -9), or when its
 *   holder has not refreshed it for STALE_AFTER_MS: the holder touches it every HEARTBEAT_MS, so a
 *   lock left by a vanished host or container (a Kubernetes pod that was killed and retried
 *   elsewhere) expires too. A stale lock is taken over and the run says so.
 */

/** How often a holder refreshes its lock's mtime. */
const HEARTBEAT_MS = 15_000;
/** A lock not refreshed for this long is stale, from any host (a model call blocks the heartbeat, so this is generous). */
export const STALE_AFTER_MS = 120_000;

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder started. */
  started: string;
  /** Image indices [first, end) the holder writes. */
  range: [number, number];
  /** File extension of those images (`png`, `jpg`, `webp`). */
  extension: string;
}

export interface OutputLock {
  readonly path: string;
  /** Things the user should hear about, e.g. a stale lock taken over. */
  readonly notes: string[];
  release(): void;
}

const LOCK_NAME = /^generate(-shard-\d+-of-\d+)?\.lock$/;

/** `generate.lock`, or `generate-shard-2-of-8.lock`. */
export function lockFileName(tag: string | null): string {
  return tag === null ? 'generate.lock' : `generate-${tag}.lock`;
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    return Number.isInteger(h.pid) && typeof h.host === 'string' && Array.isArray(h.range) ? h : null;
  } catch {
    return null;
  }
}

/** Why the lock at `path` held by `h` is stale, or null when it is live. */
function staleness(path: string, h: LockHolder): string | null {
  if (h.host === hostname() && !processRuns(h.pid)) return 'it no longer runs';
  try {
    const idle = Date.now() - statSync(path).mtimeMs;
    if (idle > STALE_AFTER_MS) return `its lock was not refreshed for ${Math.round(idle / 1000)} s`;
  } catch {
    return 'its lock is gone';
  }
  return null;
}

function describeHolder(h: LockHolder | null): string {
  return h === null ? 'a run whose lock file cannot be read' : `pid ${h.pid} on ${h.host} (started ${h.started})`;
}

function lockedError(dir: string, lockPath: string, holder: LockHolder | null, why: string): CelebaGanError {
  return new CelebaGanError('E_OUTPUT_LOCKED', `${dir} is in use by another generate run: ${describeHolder(holder)} holds ${lockPath}${why}`, {
    hint: `Wait for that run to finish, or pass another --out. If no such run exists any more (e.g. it ran on another host), remove ${lockPath}.`,
  });
}

/** Take the lock `name` in `dir` for `range` of `extension` files; throws E_OUTPUT_LOCKED when another live run holds it or overlaps. */
export function acquireOutputLock(dir: string, name: string, range: [number, number], extension: string): OutputLock {
  const path = join(dir, name);
  const me: LockHolder = { pid: process.pid, host: hostname(), started: new Date().toISOString(), range, extension };
  const notes: string[] = [];
  const tmp = tempPathFor(path);
  writeFileSync(tmp, `${JSON.stringify(me)}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      }
      const holder = readHolder(path);
      const stale = holder === null ? null : staleness(path, holder);
      if (holder === null || stale === null) throw lockedError(dir, path, holder, '');
      takeOver(path, holder);
      notes.push(`took over the stale lock ${path} of pid ${holder.pid} on ${holder.host} (started ${holder.started}; ${stale})`);
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    try {
      utimesSync(path, now, now);
    } catch {
      // Gone or unwritable: the next writes fail with their own, clearer error.
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const lock: OutputLock = {
    path,
    notes,
    release() {
      clearInterval(heartbeat);
      const h = readHolder(path);
      if (h && h.pid === me.pid && h.started === me.started) rmSync(path, { force: true });
    },
  };
  try {
    checkOverlaps(dir, name, me);
  } catch (err) {
    lock.release();
    throw err;
  }
  return lock;
}

/** Move a stale lock out of the way; if another run replaced it meanwhile, put that one back. */
function takeOver(path: string, stale: LockHolder): void {
  const aside = `${path}.stale-${process.pid}`;
  renameSync(path, aside);
  const moved = readHolder(aside);
  if (moved && (moved.pid !== stale.pid || moved.started !== stale.started)) {
    // A third run took it over first: restore its lock and report it as the holder.
    try {
      linkSync(aside, path);
    } finally {
      rmSync(aside, { force: true });
    }
    throw lockedError('the output folder', path, moved, '');
  }
  rmSync(aside, { force: true });
}

function checkOverlaps(dir: string, ownName: string, me: LockHolder): void {
  for (const name of readdirSync(dir)) {
    if (name === ownName || !LOCK_NAME.test(name)) continue;
    const other = readHolder(join(dir, name));
    if (other === null || staleness(join(dir, name), other) !== null || other.extension !== me.extension) continue;
    if (other.range[0] < me.range[1] && me.range[0] < other.range[1]) {
      throw lockedError(
        dir,
        join(dir, name),
        other,
        `, writing faces ${other.range[0]}..${other.range[1] - 1}, which overlap this run's ${me.range[0]}..${me.range[1] - 1}`,
      );
    }
  }
}
