import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A temporary name beside `path`, so the final rename stays on one file system. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
}

/** fsync a directory so a rename in it is durable; a no-op where directories cannot be opened. */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Directories cannot be opened for fsync on every platform (Windows); the rename is still atomic.
  }
}

/** Write `data` to `path` atomically: temp file, fsync, rename. A crash leaves the old file or none. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string | readonly Uint8Array[]): void {
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, 'w');
  try {
    const parts = typeof data === 'string' ? [Buffer.from(data)] : data instanceof Uint8Array ? [data] : data;
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}

export async function writeFileAtomic(path: string, data: Uint8Array | string | readonly Uint8Array[]): Promise<void> {
  const tmp = tempPathFor(path);
  const fh = await open(tmp, 'w');
  try {
    const parts = typeof data === 'string' ? [Buffer.from(data)] : data instanceof Uint8Array ? [data] : data;
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) off += (await fh.write(part, off, part.byteLength - off)).bytesWritten;
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
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
  const fd = openSync(tempPath, 'w');
  let done = false;
  return {
    fd,
    tempPath,
    commit() {
      if (done) return;
      done = true;
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tempPath, path);
      fsyncDir(dirname(path));
    },
    abort() {
      if (done) return;
      done = true;
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
      rmSync(tempPath, { force: true });
    },
  };
}
