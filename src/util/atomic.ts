import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError, errnoCode, fileError } from '../errors.js';

/**
 * The one atomic-write mechanism: write to a temporary name beside the target, fsync the data,
 * rename into place, fsync the folder. A crash leaves the old file (or folder) or the new one,
 * never a mix; temporary names are recognisable (`.<name>.<pid>.<time>.tmp`) so leftovers of a
 * killed process can be found by `findLeftovers` and reported.
 *
 * OS failures (ENOSPC, EROFS, EACCES, ...) come out as CelebaGanErrors naming the target path
 * (never the temporary one), through `fileError` in src/errors.ts.
 */

export type FileData = Uint8Array | string | readonly Uint8Array[];

const TEMP_NAME = /^\.(.+)\.(\d+)\.([0-9a-z]+)\.tmp(\.old)?$/;

/** A temporary name beside `path`, so the final rename stays on one file system. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
}

/** The target a temporary name was made for (`.x.cgds.123.abc.tmp` -> `x.cgds`), or null. */
function targetOfTemp(name: string): string | null {
  return TEMP_NAME.exec(name)?.[1] ?? null;
}

/** fsync a directory so a rename in it is durable; a no-op where directories cannot be opened. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return; // Directories cannot be opened for fsync on every platform (Windows); the rename is still atomic.
  }
  try {
    fsyncSync(fd);
  } catch {
    /* some file systems refuse fsync on a directory; the rename is still atomic */
  } finally {
    closeSync(fd);
  }
}

function parts(data: FileData): readonly Uint8Array[] {
  return typeof data === 'string' ? [Buffer.from(data)] : data instanceof Uint8Array ? [data] : data;
}

/** Write every byte of `data` to `fd` (writeSync may write less than asked). */
export function writeAllSync(fd: number, data: FileData, position?: number): number {
  let pos = position;
  let total = 0;
  for (const part of parts(data)) {
    let off = 0;
    while (off < part.byteLength) {
      const n = writeSync(fd, part, off, part.byteLength - off, pos);
      off += n;
      if (pos !== undefined) pos += n;
    }
    total += part.byteLength;
  }
  return total;
}

/** The two file steps of writeFileAtomicSync; tests inject OS failures (ENOSPC, no hard links) here. */
export interface AtomicIo {
  /** Write `data` to the new file `path`, fsynced when `sync`. */
  writeFile(path: string, data: FileData, sync: boolean): void;
  link(existing: string, name: string): void;
}

export interface WriteFileOptions {
  /**
   * true (default): rename over any file at `path`. false: never replace one: the temporary file
   * is hard-linked to `path`, which fails if the name exists (E_OUTPUT_EXISTS), also when another
   * writer took the name a moment before; a file system without hard links is E_OUTPUT_NO_LINKS.
   */
  replace?: boolean;
  /**
   * true (default): fsync the file before it takes its name and the folder after, so the write
   * survives a power loss. false: still atomic (no reader, and no killed process, ever leaves a
   * half-written file under `path`), but a power loss or kernel crash may lose recent files. Only
   * for many small files that can be made again from a durable record (generate's faces): an
   * fsync costs milliseconds per file, more than making the file (docs/benchmarks.md: bench:generate).
   */
  sync?: boolean;
  /** Hints replacing the generic ones, keyed by errno (`ENOSPC`, as for fileError) or by `E_OUTPUT_EXISTS` / `E_OUTPUT_NO_LINKS`. */
  hints?: Partial<Record<string, string>>;
  io?: Partial<AtomicIo>;
}

function writeNewFileSync(path: string, data: FileData, sync: boolean): void {
  const fd = openSync(path, 'wx');
  try {
    writeAllSync(fd, data);
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Remove a temporary file that may not exist (or whose folder may not: ENOTDIR). */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    /* nothing was created there */
  }
}

const NO_LINK_CODES = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP']);

/**
 * Write `data` to `path` atomically: a temporary file beside it (fsynced), renamed (or linked,
 * with `replace: false`) into place, then the folder fsynced. Failures are CelebaGanErrors naming
 * `path` (through fileError); an OS error fileError has no mapping for passes unchanged.
 */
export function writeFileAtomicSync(path: string, data: FileData, opts: WriteFileOptions = {}): void {
  const sync = opts.sync ?? true;
  const replace = opts.replace ?? true;
  const hints = opts.hints ?? {};
  const io: AtomicIo = { writeFile: writeNewFileSync, link: linkSync, ...opts.io };
  const tmp = tempPathFor(path);
  let written = false;
  try {
    io.writeFile(tmp, data, sync);
    written = true;
    if (replace) renameSync(tmp, path);
    else {
      io.link(tmp, path);
      rmSync(tmp);
    }
  } catch (err) {
    removeQuietly(tmp);
    const code = errnoCode(err);
    if (!replace && code === 'EEXIST' && written) {
      throw new UsageError('E_OUTPUT_EXISTS', `${path} already exists; not overwriting it`, {
        hint: hints.E_OUTPUT_EXISTS ?? 'Remove it or pass another path.',
        cause: err,
      });
    }
    if (!replace && written && code !== undefined && NO_LINK_CODES.has(code)) {
      // The temporary file was written, so it is the link that the file system refused.
      throw new UsageError(
        'E_OUTPUT_NO_LINKS',
        `the file system of ${dirname(path)} does not support hard links, which are used so that no file is ever overwritten (${code})`,
        {
          hint: hints.E_OUTPUT_NO_LINKS ?? 'Pass a path on another file system.',
          cause: err,
        },
      );
    }
    throw fileError(err, path, 'write', hints);
  }
  if (sync) fsyncDir(dirname(path));
}

/** The same as writeFileAtomicSync, for async callers. */
export async function writeFileAtomic(path: string, data: FileData): Promise<void> {
  writeFileAtomicSync(path, data);
}

/**
 * For large outputs written incrementally (datasets): open a temp file, let the caller write,
 * then `commit()` fsyncs and renames, or `abort()` removes the temp file.
 */
export interface AtomicFile {
  readonly fd: number;
  readonly tempPath: string;
  commit(): void;
  abort(): void;
}

export function openAtomicSync(path: string): AtomicFile {
  const tempPath = tempPathFor(path);
  let fd: number;
  try {
    fd = openSync(tempPath, 'w');
  } catch (err) {
    throw fileError(err, path, 'write');
  }
  let done = false;
  const abort = (): void => {
    if (done) return;
    done = true;
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tempPath, { force: true });
  };
  return {
    fd,
    tempPath,
    commit() {
      if (done) return;
      try {
        fsyncSync(fd);
        closeSync(fd);
        done = true;
        renameSync(tempPath, path);
      } catch (err) {
        abort();
        rmSync(tempPath, { force: true });
        throw fileError(err, path, 'write');
      }
      fsyncDir(dirname(path));
    },
    abort,
  };
}

/**
 * Write a folder atomically: every file into a temporary folder beside `dir` (each fsynced), then
 * into place. Replacing an existing folder is safe at every point: the new folder is complete
 * before the old one is renamed aside (`.<name>.<pid>.<time>.tmp.old`), and the old one is only
 * deleted once the new one is in place; `recoverFolder` finishes or undoes an interrupted swap.
 */
export function writeDirAtomicSync(dir: string, files: ReadonlyArray<readonly [name: string, data: FileData]>): void {
  const parent = dirname(dir);
  const tmp = tempPathFor(dir);
  ensureFolder(parent);
  try {
    mkdirSync(tmp);
    for (const [name, data] of files) {
      const fd = openSync(join(tmp, name), 'w');
      try {
        writeAllSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    fsyncDir(tmp);
    if (existsSync(dir)) {
      const old = `${tmp}.old`;
      renameSync(dir, old);
      renameSync(tmp, dir);
      fsyncDir(parent);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, dir);
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw fileError(err, dir, 'write');
  }
  fsyncDir(parent);
}

/** A temporary file or folder left by a process that no longer runs (killed mid-write). */
export interface Leftover {
  path: string;
  /** What it was being written as. */
  target: string;
  /** `.tmp.old`: the previous version of `target`, renamed aside while a new one replaced it. */
  replaced: boolean;
  pid: number;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temporary files and folders in `dir` whose writer is gone (another live process's are left alone). */
export function findLeftovers(dir: string): Leftover[] {
  if (!existsSync(dir)) return [];
  const out: Leftover[] = [];
  for (const name of readdirSync(dir)) {
    const [, target, pidText, , old] = TEMP_NAME.exec(name) ?? [];
    if (target === undefined) continue;
    const pid = Number(pidText);
    if (processAlive(pid)) continue;
    out.push({ path: join(dir, name), target: join(dir, target), replaced: old !== undefined, pid });
  }
  return out;
}

/**
 * Clean up after a writer killed in `dir`: a `.tmp.old` whose target is missing is the only copy
 * left of a folder being replaced, so it is renamed back; every other leftover is deleted.
 * Returns what was done, one line per leftover, for the caller to report.
 */
export function recoverLeftovers(
  dir: string,
  owns: (target: string) => boolean = () => true,
): { path: string; action: 'restored' | 'removed'; target: string }[] {
  const done: { path: string; action: 'restored' | 'removed'; target: string }[] = [];
  for (const l of findLeftovers(dir)) {
    if (!owns(l.target)) continue;
    if (l.replaced && !existsSync(l.target)) {
      renameSync(l.path, l.target);
      done.push({ path: l.path, action: 'restored', target: l.target });
    } else {
      rmSync(l.path, { recursive: true, force: true });
      done.push({ path: l.path, action: 'removed', target: l.target });
    }
  }
  if (done.length > 0) fsyncDir(dir);
  return done;
}

/** A path with a temporary last part (`.x.cgds.123.abc.tmp`) shown as the target it stands for (`x.cgds`). */
export function tempTargetPath(path: string): string {
  const target = targetOfTemp(basename(path));
  return target === null ? path : join(dirname(path), target);
}

/** The folders `mkdirSync(dir, { recursive: true })` would create: `dir` and its missing parents, deepest first. */
export function missingFolders(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; !existsSync(d);) {
    out.push(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return out;
}

/** Remove those of `folders` (deepest first) that are empty; a folder something was written to stays. */
export function removeEmptyFolders(folders: readonly string[]): void {
  for (const d of folders) {
    try {
      if (existsSync(d) && readdirSync(d).length === 0) rmdirSync(d);
      else break;
    } catch {
      break; // not ours to insist on
    }
  }
}

/**
 * `mkdir -p dir`, with failures as CelebaGanErrors naming `dir`: a file standing where a folder
 * is needed (EEXIST from a recursive mkdir, or ENOTDIR) is E_NOT_FOLDER. Returns the outermost
 * folder it created (as mkdirSync does), or undefined when `dir` existed.
 *
 * Node's recursive mkdir reports ENOENT, not EROFS, when the missing folders would go on a
 * read-only mount, and "no such file" is the wrong story there: the real cause is found by
 * testing the nearest existing folder above `dir` for writing (EROFS, or EACCES when it is not
 * ours), and that is what the user hears, still naming `dir`.
 */
export function ensureFolder(dir: string, doing = 'create the folder', hints: Partial<Record<string, string>> = {}): string | undefined {
  try {
    return mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = errnoCode(err);
    const cause = code === 'EEXIST' ? Object.assign(err as Error, { code: 'ENOTDIR' }) : code === 'ENOENT' ? (unwritableAncestor(dir) ?? err) : err;
    throw fileError(cause, dir, doing, hints);
  }
}

/** The error of testing the nearest existing folder at or above `dir` for writing, or null when it is writable (or none exists). */
function unwritableAncestor(dir: string): unknown {
  let d = resolve(dir);
  while (!existsSync(d)) {
    const up = dirname(d);
    if (up === d) return null;
    d = up;
  }
  try {
    accessSync(d, constants.W_OK);
    return null;
  } catch (err) {
    return err;
  }
}
