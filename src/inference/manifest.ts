import { closeSync, createReadStream, fstatSync, fsyncSync, openSync, readdirSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { tempPathFor, fsyncDir } from '../util/atomic.js';

/**
 * The manifest of an output folder: one JSON line per image file, saying how to make it again
 * (seed, index, model). An unsharded run writes `manifest.jsonl`; shard K of N writes
 * `manifest-shard-K-of-N.jsonl`, so that shards sharing a folder never write the same file.
 * Together the parts list each file on disk once:
 *
 * - a line is appended right after its file is in place, so a run that stops (a signal, a full
 *   disk, a conflict) leaves exactly its complete files listed;
 * - a run that replaces files (`--force`), or writes ones listed from an earlier run, drops the
 *   older lines for them from every part at its end: each part is rewritten atomically (temp
 *   file, fsync, rename), read as a stream, and only when it holds such a line.
 */

export const MANIFEST_NAME = 'manifest.jsonl';
const PART_NAME = /^manifest(-shard-\d+-of-\d+)?\.jsonl$/;

/** `manifest.jsonl`, or `manifest-shard-2-of-8.jsonl`. */
export function manifestFileName(tag: string | null): string {
  return tag === null ? MANIFEST_NAME : `manifest-${tag}.jsonl`;
}

/** The shard tag of a manifest part's name (`shard-2-of-8`), null for `manifest.jsonl`, undefined for other files. */
export function manifestPartTag(name: string): string | null | undefined {
  const m = PART_NAME.exec(name);
  return m ? (m[1] ? m[1].slice(1) : null) : undefined;
}

/** The manifest parts in `dir`, by name. */
export function manifestParts(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => PART_NAME.test(n))
    .sort();
}

/** Appends lines to one manifest part; `startOffset` is where this run's lines begin. */
export class ManifestAppender {
  readonly startOffset: number;
  private fd: number | null;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
    this.startOffset = fstatSync(this.fd).size;
  }

  /** Synchronous: generate's file writes are synchronous too (see generate.ts). */
  append(line: string): void {
    if (this.fd === null) throw new Error(`manifest ${this.path} is closed`);
    const bytes = Buffer.from(`${line}\n`);
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * What a manifest part lists: its lines, and for the seed of its last line the index after the
 * highest one listed (where a run of that seed stopped). Read as a stream; null when it lists none.
 */
export async function summarizeManifest(path: string): Promise<{ count: number; seed: number; next: number } | null> {
  let count = 0;
  const nextBySeed = new Map<number, number>();
  let lastSeed: number | null = null;
  for await (const { line } of linesWithOffsets(path)) {
    let entry: { seed?: unknown; index?: unknown };
    try {
      entry = JSON.parse(line) as { seed?: unknown; index?: unknown };
    } catch {
      continue; // a line cut short by a crash lists nothing
    }
    if (!Number.isInteger(entry.seed) || !Number.isInteger(entry.index)) continue;
    const seed = entry.seed as number;
    count++;
    lastSeed = seed;
    nextBySeed.set(seed, Math.max(nextBySeed.get(seed) ?? 0, (entry.index as number) + 1));
  }
  return lastSeed === null ? null : { count, seed: lastSeed, next: nextBySeed.get(lastSeed)! };
}

const FILE_FIELD = /^\{"file":"((?:[^"\\]|\\.)*)"/;

function fileOf(line: string): string | null {
  const m = FILE_FIELD.exec(line);
  if (m) return JSON.parse(`"${m[1]}"`) as string;
  try {
    const v = JSON.parse(line) as { file?: unknown };
    return typeof v.file === 'string' ? v.file : null;
  } catch {
    return null;
  }
}

async function* linesWithOffsets(path: string): AsyncGenerator<{ line: string; offset: number }> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let offset = 0;
  for await (const line of rl) {
    yield { line, offset };
    offset += Buffer.byteLength(line) + 1;
  }
}

/**
 * Drop the lines of `path` that lie before byte `before` (Infinity: anywhere) and name a file
 * for which `superseded(file)` holds. Returns how many were dropped; the file is rewritten only
 * when there are some.
 */
export async function dropSupersededLines(path: string, superseded: (file: string) => boolean, before = Infinity): Promise<number> {
  let found = 0;
  for await (const { line, offset } of linesWithOffsets(path)) {
    if (offset >= before) break;
    const file = fileOf(line);
    if (file !== null && superseded(file)) found++;
  }
  if (found === 0) return 0;
  const tmp = tempPathFor(path);
  const out = await open(tmp, 'w');
  try {
    let chunk: string[] = [];
    let dropped = 0;
    const flush = async (): Promise<void> => {
      if (chunk.length > 0) await out.write(`${chunk.join('\n')}\n`);
      chunk = [];
    };
    for await (const { line, offset } of linesWithOffsets(path)) {
      const file = offset < before ? fileOf(line) : null;
      if (file !== null && superseded(file)) dropped++;
      else chunk.push(line);
      if (chunk.length >= 4096) await flush();
    }
    await flush();
    await out.sync();
    await out.close();
    await rename(tmp, path);
    fsyncDir(join(path, '..'));
    return dropped;
  } catch (err) {
    await out.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}
