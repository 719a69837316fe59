import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import yargs from 'yargs';
import { parse } from 'yaml';
import { trainCommand } from '../../src/cli/train.js';
import { readLaunchEnv } from '../../src/distributed/index.js';

/**
 * deploy/train-pytorchjob.yaml: parsed with the `yaml` package and checked for the fields the
 * Kubeflow training operator and `celeba-gan train` rely on. No cluster is involved.
 */

const file = (() => {
  // from src/ (test/distributed) or dist/ (dist/test/distributed): the repository root is 2 or 3 up
  for (const rel of ['../../../deploy/train-pytorchjob.yaml', '../../deploy/train-pytorchjob.yaml']) {
    try {
      return readFileSync(new URL(rel, import.meta.url), 'utf8');
    } catch {
      // try the next
    }
  }
  throw new Error(`deploy/train-pytorchjob.yaml not found above ${import.meta.url}`);
})();

interface Container {
  name: string;
  command: string[];
  args: string[];
  env?: { name: string }[];
  ports: { name: string; containerPort: number }[];
  resources: { limits: Record<string, unknown> };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface ReplicaSpec {
  replicas: number;
  restartPolicy: string;
  template: { spec: { containers: Container[]; volumes: { name: string }[] } };
}

const job = parse(file) as {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { runPolicy: { backoffLimit: number }; pytorchReplicaSpecs: Record<string, ReplicaSpec> };
};

test('a kubeflow.org/v1 PyTorchJob with one Master and Workers, one GPU each, in a container named pytorch', () => {
  assert.equal(job.apiVersion, 'kubeflow.org/v1');
  assert.equal(job.kind, 'PyTorchJob');
  assert.deepEqual(Object.keys(job.spec.pytorchReplicaSpecs).sort(), ['Master', 'Worker']);
  assert.equal(job.spec.pytorchReplicaSpecs.Master!.replicas, 1);
  assert.ok(job.spec.pytorchReplicaSpecs.Worker!.replicas >= 1);
  assert.equal(job.spec.runPolicy.backoffLimit, 0, 'a lost rank fails the job instead of restarting one pod into a dead group');
  for (const [role, spec] of Object.entries(job.spec.pytorchReplicaSpecs)) {
    assert.equal(spec.restartPolicy, 'Never', role);
    const [c] = spec.template.spec.containers;
    assert.equal(spec.template.spec.containers.length, 1, role);
    assert.equal(c!.name, 'pytorch', `${role}: the operator sets RANK etc. only in the container named pytorch`);
    assert.equal(c!.resources.limits['nvidia.com/gpu'], 1, role);
    assert.deepEqual(
      c!.ports.find((p) => p.name === 'pytorchjob-port')?.containerPort,
      23456,
      `${role}: MASTER_PORT comes from the port named pytorchjob-port`,
    );
    const mounts = Object.fromEntries(c!.volumeMounts.map((m) => [m.name, m]));
    assert.equal(mounts.data?.readOnly, true);
    assert.ok(mounts.runs, `${role}: the run folder`);
    const volumes = spec.template.spec.volumes.map((v) => v.name);
    for (const m of c!.volumeMounts) assert.ok(volumes.includes(m.name), `${role}: volume ${m.name} is declared`);
  }
});

test('every rank runs the same `celeba-gan train` command, with options the train command accepts, on its own GPU', () => {
  const containers = Object.values(job.spec.pytorchReplicaSpecs).map((s) => s.template.spec.containers[0]!);
  const [master, worker] = containers;
  assert.deepEqual(master!.command, ['celeba-gan', 'train']);
  assert.deepEqual(worker!.command, master!.command);
  assert.deepEqual(worker!.args, master!.args, 'data-parallel ranks must share every option (seed, preset, width, data)');
  let parsed: Record<string, unknown> | undefined;
  yargs()
    .strict()
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .command({ ...trainCommand, handler: (argv) => void (parsed = argv as Record<string, unknown>) })
    .parseSync(['train', ...master!.args]);
  assert.ok(parsed, "the train command parsed the manifest's args");
  assert.equal(parsed.engine, 'torch');
  assert.equal(parsed.device, 'cuda', 'one GPU per pod: cuda is cuda:0, LOCAL_RANK 0');
  assert.equal(typeof parsed.seed, 'number', 'the same seed on every rank gives identical initial weights');
});

test('the manifest leaves the rank variables to the operator, and what the operator sets is a valid launch environment', () => {
  const set = new Set(Object.values(job.spec.pytorchReplicaSpecs).flatMap((s) => (s.template.spec.containers[0]!.env ?? []).map((e) => e.name)));
  for (const name of ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'LOCAL_RANK'])
    assert.ok(!set.has(name), `${name} is set by the operator, not the manifest`);
  const worldSize = 1 + job.spec.pytorchReplicaSpecs.Worker!.replicas;
  const last = readLaunchEnv({
    RANK: String(worldSize - 1),
    WORLD_SIZE: String(worldSize),
    MASTER_ADDR: `${job.metadata.name}-master-0`,
    MASTER_PORT: '23456',
    PYTHONUNBUFFERED: '0',
  });
  assert.deepEqual(last, {
    rank: worldSize - 1,
    worldSize,
    localRank: 0,
    masterAddr: 'celeba-gan-train-master-0',
    masterPort: 23456,
    agentStore: false,
    attempt: 0,
  });
});
