import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseBackend, readLaunchEnv, resolveDistOptions } from '../../src/distributed/index.js';
import { UsageError } from '../../src/errors.js';

const torchrun = { RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' };

describe('readLaunchEnv', () => {
  test('no launch variables: a single-process run (null)', () => {
    assert.equal(readLaunchEnv({ PATH: '/usr/bin' }), null);
  });

  test('torchrun / --nproc variables', () => {
    assert.deepEqual(readLaunchEnv(torchrun), {
      rank: 1,
      worldSize: 2,
      localRank: 1,
      masterAddr: '127.0.0.1',
      masterPort: 29500,
      agentStore: false,
      attempt: 0,
    });
  });

  test('torchrun static rendezvous: its agent hosts the store, keys under the restart attempt', () => {
    const env = readLaunchEnv({ ...torchrun, TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2' });
    assert.equal(env?.agentStore, true);
    assert.equal(env?.attempt, 2);
  });

  test('a Kubeflow PyTorchJob pod (no LOCAL_RANK: one rank per pod) gets local rank 0', () => {
    const env = readLaunchEnv({ RANK: '3', WORLD_SIZE: '4', MASTER_ADDR: 'job-master-0', MASTER_PORT: '23456' });
    assert.deepEqual(env, { rank: 3, worldSize: 4, localRank: 0, masterAddr: 'job-master-0', masterPort: 23456, agentStore: false, attempt: 0 });
  });

  const bad: [string, NodeJS.ProcessEnv, RegExp][] = [
    ['only some set', { RANK: '0', WORLD_SIZE: '2' }, /RANK, WORLD_SIZE are set but MASTER_ADDR, MASTER_PORT are not/],
    [
      'RANK not below WORLD_SIZE',
      { ...torchrun, RANK: '2' },
      /Expected integer between 0 and 1 for RANK \(from the environment\) but received "2" of type string/,
    ],
    ['RANK not an integer', { ...torchrun, RANK: '1.5' }, /for RANK .*"1\.5"/],
    ['RANK negative', { ...torchrun, RANK: '-1' }, /for RANK .*"-1"/],
    ['WORLD_SIZE zero', { ...torchrun, WORLD_SIZE: '0', RANK: '0' }, /Expected integer between 1 and 65536 for WORLD_SIZE/],
    ['MASTER_PORT out of range', { ...torchrun, MASTER_PORT: '70000' }, /Expected integer between 1 and 65535 for MASTER_PORT/],
    ['MASTER_PORT not a number', { ...torchrun, MASTER_PORT: 'http' }, /for MASTER_PORT .*"http"/],
    ['MASTER_ADDR with a scheme', { ...torchrun, MASTER_ADDR: 'tcp://host' }, /Expected a host name or IP address for MASTER_ADDR/],
    ['LOCAL_RANK beyond the world', { ...torchrun, LOCAL_RANK: '5' }, /for LOCAL_RANK .*"5"/],
  ];
  for (const [what, env, message] of bad) {
    test(`BAD CALL - ${what}: E_DIST_ENV (usage error)`, () => {
      assert.throws(
        () => readLaunchEnv(env),
        (err: unknown) => {
          assert.ok(err instanceof UsageError);
          assert.equal(err.code, 'E_DIST_ENV');
          assert.match(err.message, message);
          assert.ok(err.hint);
          return true;
        },
      );
    });
  }
});

describe('resolveDistOptions and chooseBackend', () => {
  test('defaults: 60 s timeout, backend auto, no local spawning', () => {
    assert.deepEqual(resolveDistOptions({}), { nproc: undefined, timeoutS: 60, backend: 'auto' });
    assert.deepEqual(resolveDistOptions({ nproc: 2, distTimeout: 5, distBackend: 'gloo' }), { nproc: 2, timeoutS: 5, backend: 'gloo' });
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['--nproc 0', { nproc: 0 }, /Expected integer between 1 and 64 for --nproc but received 0 of type number/],
    ['--dist-timeout 0', { distTimeout: 0 }, /for --dist-timeout but received 0/],
    ['--dist-backend mpi', { distBackend: 'mpi' }, /Unsupported --dist-backend "mpi" of type string\. Should be one of: auto, gloo, nccl/],
  ];
  for (const [what, raw, message] of bad) {
    test(`BAD CALL - ${what}: E_BAD_ARGUMENT`, () => {
      assert.throws(
        () => resolveDistOptions(raw),
        (err: unknown) => err instanceof UsageError && err.code === 'E_BAD_ARGUMENT' && message.test(err.message),
      );
    });
  }

  test('auto picks NCCL only for a CUDA device in a build that has it, and says why', () => {
    assert.equal(chooseBackend('auto', 'cpu', ['gloo', 'nccl']).backend, 'gloo');
    assert.equal(chooseBackend('auto', 'cuda:1', ['gloo', 'nccl']).backend, 'nccl');
    const g = chooseBackend('auto', 'cuda', ['gloo']);
    assert.equal(g.backend, 'gloo');
    assert.match(g.why, /no NCCL/);
  });

  test('ERROR PATH - nccl asked for by name in a build without it: E_DIST_UNAVAILABLE, never a silent fallback', () => {
    assert.throws(
      () => chooseBackend('nccl', 'cuda', ['gloo']),
      (err: unknown) => (err as { code?: string }).code === 'E_DIST_UNAVAILABLE' && /has: gloo/.test((err as Error).message),
    );
    assert.throws(
      () => chooseBackend('nccl', 'cpu', ['gloo', 'nccl']),
      (err: unknown) => err instanceof UsageError && /needs a CUDA device/.test(err.message),
    );
  });
});
