import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { freePort } from '../../src/distributed/index.js';
import { PYTHON, TORCHRUN, referenceSkip } from '../support/references.js';
import { digest, distSkip, jsonLines, rankTensors, torchrunArgs, workerArgs } from './helpers.js';

/**
 * The real launcher: Debian's python3-torch ships torchrun as `python3 -m torch.distributed.run`
 * (1.13 spells its options with underscores; under Python 3.11 it needs `--redirects 1 --tee 1`).
 * Its static rendezvous hosts the TCPStore in its agent, so our ranks join it as clients.
 */

function torchrunSkip(): string | false {
  return distSkip() || referenceSkip(TORCHRUN);
}

let launcherPid: number | undefined;
after(() => {
  if (launcherPid === undefined) return;
  try {
    process.kill(-launcherPid, 'SIGKILL');
  } catch {
    // already gone
  }
});

test(
  'torchrun (python3 -m torch.distributed.run --nproc_per_node 2 --no_python node ...) starts two ranks that join its store and all-reduce exactly',
  { skip: torchrunSkip() },
  async () => {
    const port = await freePort();
    const args = torchrunArgs(port, workerArgs('allreduce'));
    const child = spawn(PYTHON, args, { env: { ...process.env, CGT_TEST_DIST_TIMEOUT_S: '20' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    launcherPid = child.pid;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    const deadline = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 120_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(deadline);
    launcherPid = undefined;
    assert.equal(code, 0, `torchrun exited ${code}\n${stdout}\n${stderr.slice(-3000)}`);
    const results = jsonLines(stdout).filter((l) => 'ok' in l);
    assert.deepEqual(results.map((r) => r.rank).sort(), [0, 1], stdout);
    const [a, b] = [rankTensors(0), rankTensors(1)];
    const mean = digest(a.map((t, k) => Float32Array.from(t, (v, i) => (v + b[k]![i]!) / 2)));
    for (const r of results) {
      assert.equal(r.ok, true, stdout);
      assert.equal(r.worldSize, 2);
      assert.equal(r.localRank, r.rank);
      assert.equal(r.agentStore, true, 'torchrun 1.13 static rendezvous: TORCHELASTIC_USE_AGENT_STORE=True');
      assert.equal(r.mean, mean);
    }
  },
);
