import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, describe, test } from 'node:test';
import { freePort, spawnLocalRanks, type LocalRanks } from '../../src/distributed/index.js';
import { digest, distSkip, killAll, launchEnv, rankTensors, startRank, workerArgs, jsonLines } from './helpers.js';

/**
 * Two ranks over Gloo on 127.0.0.1 (native/src/dist.cc through src/distributed): exact
 * collectives, replicas that stay bit-identical, a lost rank named within the timeout, and
 * rendezvous failures that are clear errors rather than hangs. Every rank is a real process;
 * each has a deadline after which it is killed, and `after` kills whatever a failed test left.
 */

const skip = distSkip();
const groups: LocalRanks[] = [];
after(() => {
  killAll();
  for (const g of groups) {
    g.stop('SIGTERM');
    g.stop('SIGTERM'); // the second stop kills
  }
});

/** Both ranks through the --nproc spawner; their JSON result lines by rank. */
async function runPair(scenario: string): Promise<{ exitCode: number; byRank: Record<string, unknown>[]; output: string }> {
  let output = '';
  const stdout = ['', ''];
  const ranks = await spawnLocalRanks({
    nproc: 2,
    command: process.execPath,
    args: workerArgs(scenario),
    env: { ...process.env, CGT_TEST_DIST_TIMEOUT_S: '20' },
    output: 'pipe',
    onOutput: (rank, stream, chunk) => {
      if (stream === 'stdout') stdout[rank] += String(chunk);
      output += `[${rank} ${stream}] ${String(chunk)}`;
    },
    killGraceMs: 2000,
  });
  groups.push(ranks);
  const deadline = setTimeout(() => {
    ranks.stop('SIGTERM');
    ranks.stop('SIGTERM');
  }, 90_000);
  const result = await ranks.done;
  clearTimeout(deadline);
  const byRank = stdout.map((s) => jsonLines(s).at(-1) ?? {});
  return { exitCode: result.exitCode, byRank, output };
}

describe('two ranks over Gloo on 127.0.0.1', { skip }, () => {
  test('all-reduce of known tensors gives their exact mean on both ranks, in 64 KB buckets; broadcast and all-gather are exact too', async () => {
    const { exitCode, byRank, output } = await runPair('allreduce');
    assert.equal(exitCode, 0, output);
    const [a, b] = [rankTensors(0), rankTensors(1)];
    const mean = a.map((t, k) => Float32Array.from(t, (v, i) => (v + b[k]![i]!) / 2));
    for (const r of [0, 1]) {
      const got = byRank[r]!;
      assert.equal(got.ok, true, output);
      assert.equal(got.rank, r);
      assert.deepEqual(got.meanHead, [1.5, 3, -3, 0.125]);
      assert.equal(got.mean, digest(mean), `rank ${r}: the all-reduced tensors are not the exact mean`);
      assert.equal(got.broadcast, digest(rankTensors(1)), `rank ${r}: broadcast from rank 1`);
      assert.deepEqual(got.gathered, [
        [0, 42, 255],
        [1, 42, 254],
      ]);
    }
  });

  test('replicas stay bit-identical over several all-reduces; the start-up weights check names the rank that differs', async () => {
    const { exitCode, byRank, output } = await runPair('replicas');
    assert.equal(exitCode, 0, output);
    const [r0, r1] = byRank;
    assert.notEqual(r0!.before, r1!.before, 'the ranks start from different buffers');
    assert.equal(r0!.after, r1!.after, 'after 6 all-reduces and identical updates the buffers are bit-identical');
    assert.equal(r0!.same, r1!.same);
    for (const r of [r0!, r1!]) assert.deepEqual(r.differ, { code: 'E_DIST_WEIGHTS_DIFFER', lostRank: 1 });
  });

  for (const killed of [1, 0]) {
    const survivor = 1 - killed;
    test(`ERROR PATH - rank ${killed} killed (SIGKILL) while rank ${survivor} waits in an all-reduce: rank ${survivor} exits 1 with E_DIST_TIMEOUT naming rank ${killed}`, async () => {
      const port = await freePort();
      const ranks = [0, 1].map((r) => startRank(launchEnv(r, 2, port, 20), ['stall', String(killed)], 60_000));
      await Promise.all(ranks.map((r) => r.nextLine())); // both joined
      ranks[killed]!.child.kill('SIGKILL');
      const out = await ranks[survivor]!.done;
      const last = out.lines.at(-1)!;
      assert.equal(out.code, 1, `rank ${survivor} did not exit 1 within its deadline (signal ${out.signal}); stderr: ${out.stderr.slice(-2000)}`);
      assert.equal(last.code, 'E_DIST_TIMEOUT');
      assert.equal(last.lostRank, killed);
      assert.match(String(last.message), new RegExp(`lost rank ${killed}`));
    });
  }

  test('ERROR PATH - a rank that is alive but never reaches the collective: E_DIST_TIMEOUT after --dist-timeout, naming it', async () => {
    const port = await freePort();
    const ranks = [0, 1].map((r) => startRank(launchEnv(r, 2, port, 3, 30), ['stall', '1'], 60_000));
    await Promise.all(ranks.map((r) => r.nextLine()));
    const out = await ranks[0]!.done;
    ranks[1]!.child.kill('SIGKILL');
    const last = out.lines.at(-1)!;
    assert.equal(out.code, 1, out.stderr.slice(-2000));
    assert.equal(last.code, 'E_DIST_TIMEOUT');
    assert.equal(last.lostRank, 1);
    assert.match(String(last.message), /rank 1 did not reach allReduce #\d+ within 3 s \(it is alive/);
  });
});

describe('ERROR PATH - rendezvous errors are E_DIST_RENDEZVOUS, not hangs', { skip }, () => {
  test('MASTER_PORT taken by another process: rank 0 says so at once', async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(port, resolve));
    try {
      const out = await startRank(launchEnv(0, 2, port, 20), ['join'], 60_000).done;
      const last = out.lines.at(-1)!;
      assert.equal(out.code, 1);
      assert.equal(last.code, 'E_DIST_RENDEZVOUS');
      assert.match(String(last.message), new RegExp(`rank 0 could not host the rendezvous store on 127\\.0\\.0\\.1:${port}.*Address already in use`));
    } finally {
      holder.close();
    }
  });

  test('WORLD_SIZE mismatch (rank 0: 2, rank 1: 3): both ranks fail naming both sizes', async () => {
    const port = await freePort();
    const r0 = startRank(launchEnv(0, 2, port, 20), ['join'], 60_000);
    const r1 = startRank(launchEnv(1, 3, port, 20), ['join'], 60_000);
    const [o0, o1] = await Promise.all([r0.done, r1.done]);
    for (const o of [o0, o1]) {
      assert.equal(o.code, 1, o.stderr.slice(-2000));
      assert.equal(o.lines.at(-1)!.code, 'E_DIST_RENDEZVOUS');
    }
    assert.match(String(o1.lines.at(-1)!.message), /WORLD_SIZE mismatch .*rank 1 has WORLD_SIZE=3, rank 0 has WORLD_SIZE=2/);
    assert.match(String(o0.lines.at(-1)!.message), /rank 1 has WORLD_SIZE=3; rank 0 has WORLD_SIZE=2/);
  });

  test('no rank 0 at MASTER_ADDR:MASTER_PORT: rank 1 gives up after the timeout, naming rank 0', async () => {
    const port = await freePort();
    const out = await startRank(launchEnv(1, 2, port, 2), ['join'], 60_000).done;
    const last = out.lines.at(-1)!;
    assert.equal(out.code, 1);
    assert.equal(last.code, 'E_DIST_RENDEZVOUS');
    assert.equal(last.lostRank, 0);
    assert.match(String(last.message), new RegExp(`rank 1 could not reach the rendezvous store at 127\\.0\\.0\\.1:${port} within 2 s`));
  });

  test('a rank that never joins: rank 0 gives up after the timeout, naming it', async () => {
    const port = await freePort();
    const out = await startRank(launchEnv(0, 2, port, 2), ['join'], 60_000).done;
    const last = out.lines.at(-1)!;
    assert.equal(out.code, 1);
    assert.equal(last.code, 'E_DIST_RENDEZVOUS');
    assert.equal(last.lostRank, 1);
    assert.match(String(last.message), /rank 1 did not join at .* within 2 s/);
  });
});
