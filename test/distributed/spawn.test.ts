import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { spawnLocalRanks, type LocalRanks, type SpawnRanksOptions, type SpawnResult } from '../../src/distributed/index.js';
import { jsonLines } from './helpers.js';
import { waitFor } from '../support/wait.js';

/**
 * The --nproc spawner with small node scripts as ranks (no addon needed): the environment each
 * rank gets, a failed rank stopping the rest, signal forwarding, a combined exit code. Each run
 * has a deadline after which every rank is killed.
 */

const running: LocalRanks[] = [];
after(() => {
  for (const r of running) {
    r.stop('SIGTERM');
    r.stop('SIGTERM');
  }
});

async function run(
  script: string,
  extra: Partial<SpawnRanksOptions> = {},
  during?: (r: LocalRanks, out: string[]) => Promise<void>,
): Promise<{ result: SpawnResult; out: string[] }> {
  const out = ['', ''];
  const ranks = await spawnLocalRanks({
    nproc: 2,
    command: process.execPath,
    args: ['-e', script],
    output: 'pipe',
    onOutput: (rank, stream, chunk) => {
      if (stream === 'stdout') out[rank] += String(chunk);
    },
    killGraceMs: 1000,
    ...extra,
  });
  running.push(ranks);
  const deadline = setTimeout(() => {
    ranks.stop('SIGTERM');
    ranks.stop('SIGTERM');
  }, 30_000);
  await during?.(ranks, out);
  const result = await ranks.done;
  clearTimeout(deadline);
  return { result, out };
}

/** Resolves once every rank has printed `ready` (their signal handlers are installed). */
async function ready(out: string[]): Promise<void> {
  await waitFor(() => out.every((o) => o.includes('ready')), { timeoutMs: 30_000, what: "every rank's `ready`" });
}

describe('spawnLocalRanks', () => {
  test('every rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and one free MASTER_PORT; all exit 0 -> 0', async () => {
    const { result, out } = await run(
      'const e = process.env; console.log(JSON.stringify({ rank: e.RANK, world: e.WORLD_SIZE, local: e.LOCAL_RANK, localWorld: e.LOCAL_WORLD_SIZE, addr: e.MASTER_ADDR, port: e.MASTER_PORT }))',
    );
    assert.equal(result.exitCode, 0);
    assert.equal(result.failed, undefined);
    const [a, b] = out.map((o) => jsonLines(o)[0]!);
    assert.deepEqual(a, { rank: '0', world: '2', local: '0', localWorld: '2', addr: '127.0.0.1', port: a!.port });
    assert.deepEqual(b, { rank: '1', world: '2', local: '1', localWorld: '2', addr: '127.0.0.1', port: a.port });
    assert.ok(Number(a.port) > 0);
  });

  test('ERROR PATH - rank 1 exits 3 while rank 0 would run for a minute: rank 0 is stopped, the result is 3 and names rank 1', async () => {
    const { result } = await run("if (process.env.RANK === '1') process.exit(3); setTimeout(() => {}, 60000);");
    assert.equal(result.exitCode, 3);
    assert.equal(result.failed?.rank, 1);
    assert.match(result.summary, /^rank 1 \(pid \d+\) exited with code 3; the other ranks were stopped$/);
    assert.equal(result.ranks[0]!.signal, 'SIGTERM');
  });

  test('ERROR PATH - a rank killed by SIGKILL: exit 1, named; a rank ignoring SIGTERM is killed after the grace period', async () => {
    const { result } = await run("process.on('SIGTERM', () => {}); console.log('ready'); setTimeout(() => {}, 60000);", {}, async (ranks, out) => {
      await ready(out);
      process.kill(ranks.pids[0]!, 'SIGKILL');
    });
    assert.equal(result.exitCode, 1);
    assert.equal(result.failed?.rank, 0);
    assert.match(result.summary, /rank 0 \(pid \d+\) was killed by SIGKILL/);
    assert.equal(result.ranks[1]!.signal, 'SIGKILL');
  });

  test('stop(SIGINT) is forwarded once to every rank; they stop cleanly -> 130', async () => {
    const { result, out } = await run(
      "process.on('SIGINT', () => { console.log('got SIGINT'); process.exit(130); }); console.log('ready'); setTimeout(() => {}, 60000);",
      {},
      async (ranks, out) => {
        await ready(out);
        ranks.stop('SIGINT');
      },
    );
    assert.equal(result.exitCode, 130);
    assert.equal(result.stoppedBy, 'SIGINT');
    assert.equal(result.failed, undefined);
    for (const o of out) assert.equal(o.match(/got SIGINT/g)?.length, 1);
  });

  test('a second stop kills ranks that are still finishing -> 143 for SIGTERM', async () => {
    const { result, out } = await run(
      "process.on('SIGTERM', () => console.log('finishing')); console.log('ready'); setTimeout(() => {}, 60000);",
      { killGraceMs: 30_000 },
      async (ranks, out) => {
        await ready(out);
        ranks.stop('SIGTERM');
        await waitFor(() => out.every((o) => o.includes('finishing')), { timeoutMs: 30_000, what: "every rank's `finishing`" });
        ranks.stop('SIGTERM');
      },
    );
    assert.equal(result.exitCode, 143);
    assert.deepEqual(
      result.ranks.map((r) => r.signal),
      ['SIGKILL', 'SIGKILL'],
    );
    // The first stop reached each rank once; the second was a kill, not another SIGTERM.
    for (const o of out) assert.equal(o.match(/finishing/g)?.length, 1);
  });

  test('ERROR PATH - a command that does not exist: E_DIST_SPAWN naming it', async () => {
    const ranks = await spawnLocalRanks({ nproc: 2, command: '/nonexistent/celeba-gan', args: [], output: 'pipe' });
    await assert.rejects(
      ranks.done,
      (err: unknown) => (err as { code?: string }).code === 'E_DIST_SPAWN' && /\/nonexistent\/celeba-gan \(ENOENT\)/.test((err as Error).message),
    );
  });
});
