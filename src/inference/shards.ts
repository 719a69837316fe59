import { UsageError } from '../errors.js';

/**
 * Sharded generation: N workers (processes, machines, the pods of a Kubernetes Indexed Job) each
 * make one contiguous slice of the same run, so every file keeps the name it has in the
 * unsharded run and the union of the shards is that run, byte for byte.
 */

/** Shard `index` of `count` (0-based: 0 <= index < count). */
export interface Shard {
  index: number;
  count: number;
}

/** Kubernetes sets this in each pod of an Indexed Job (completionMode: Indexed). */
export const SHARD_INDEX_ENV = 'JOB_COMPLETION_INDEX';

const shardHint = 'Pass --shard K/N with 0 <= K < N (e.g. --shard 0/4), or --shards N in a Kubernetes Indexed Job, which sets JOB_COMPLETION_INDEX.';

function wholeNumber(text: string): number | null {
  return /^\d{1,9}$/.test(text) ? Number(text) : null;
}

function checked(index: number | null, count: number | null, received: string): Shard {
  if (count === null || count < 1) throw new UsageError('E_BAD_SHARD', `Expected a shard count N >= 1 but received ${received}`, { hint: shardHint });
  if (index === null || index >= count) {
    throw new UsageError('E_BAD_SHARD', `Expected a shard index K between 0 and ${count - 1} (shards are numbered from 0) but received ${received}`, {
      hint: shardHint,
    });
  }
  return { index, count };
}

/** `--shard K/N`. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\S*?)\s*\/\s*(\S*?)\s*$/.exec(text);
  const [, k, n] = m ?? [];
  if (k === undefined || n === undefined) throw new UsageError('E_BAD_SHARD', `Expected --shard K/N (e.g. 0/4) but received "${text}"`, { hint: shardHint });
  return checked(wholeNumber(k), wholeNumber(n), `--shard ${text}`);
}

/** `--shards N`: the index comes from JOB_COMPLETION_INDEX. */
export function shardFromEnv(count: number, env: NodeJS.ProcessEnv = process.env): Shard {
  if (!Number.isInteger(count) || count < 1) throw new UsageError('E_BAD_SHARD', `Expected --shards N with N >= 1 but received ${count}`, { hint: shardHint });
  const text = env[SHARD_INDEX_ENV];
  if (text === undefined || text === '') {
    throw new UsageError('E_SHARD_INDEX_MISSING', `--shards ${count} needs the shard index in ${SHARD_INDEX_ENV}, which is not set`, {
      hint: `Run it as a Kubernetes Indexed Job (deploy/generate-indexed-job.yaml), set ${SHARD_INDEX_ENV}=K yourself, or pass --shard K/${count}.`,
    });
  }
  return checked(wholeNumber(text.trim()), count, `${SHARD_INDEX_ENV}=${text} with --shards ${count}`);
}

/** Indices [first, end) of shard `s` among n images starting at `start`; slices differ in size by at most 1. */
export function shardSlice(start: number, n: number, s: Shard): { first: number; end: number } {
  // BigInt: index * n can pass 2^53 for a large n.
  const at = (k: number): number => start + Number((BigInt(k) * BigInt(n)) / BigInt(s.count));
  return { first: at(s.index), end: at(s.index + 1) };
}

/** `shard-2-of-8`: names the shard's manifest part and lock. */
export function shardTag(s: Shard): string {
  return `shard-${s.index}-of-${s.count}`;
}
