import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { parse } from 'yaml';
import { generateCommand } from '../../src/cli/generate.js';
import { SHARD_INDEX_ENV } from '../../src/inference/shards.js';
import { cli } from '../support/in-process.js';
import { tempDir, writeTinyModel } from '../inference/fixtures.js';

/**
 * deploy/generate-indexed-job.yaml: the Kubernetes fields sharded generation relies on, and its
 * command line checked against the real `generate` CLI (every flag exists, --shards equals
 * completions), then run as the Job would run it, pod by pod, on a tiny model.
 */

function manifestPath(): string {
  // From test/deploy under tsx, or dist/test/deploy after tsc: the YAML lives at the repository root.
  const here = fileURLToPath(new URL('.', import.meta.url));
  const root = here.includes('/dist/') ? join(here, '..', '..', '..') : join(here, '..', '..');
  return join(root, 'deploy', 'generate-indexed-job.yaml');
}

interface Job {
  apiVersion: string;
  kind: string;
  spec: {
    completionMode: string;
    completions: number;
    parallelism: number;
    template: {
      spec: {
        restartPolicy: string;
        containers: { name: string; command: string[]; args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
        volumes: { name: string }[];
      };
    };
  };
}

const job = parse(readFileSync(manifestPath(), 'utf8')) as Job;
const container = job.spec.template.spec.containers[0]!;

/** `--flag value` pairs and bare `--flag`s of the container's args. */
function flags(args: string[]): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    assert.ok(a.startsWith('--'), `argument ${a} follows a flag that takes no value`);
    const next = args[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      out.set(a.slice(2), next);
      i++;
    } else out.set(a.slice(2), true);
  }
  return out;
}

test('an Indexed Job: completionMode, completions, parallelism, restartPolicy', () => {
  assert.equal(job.apiVersion, 'batch/v1');
  assert.equal(job.kind, 'Job');
  assert.equal(job.spec.completionMode, 'Indexed', `pods get ${SHARD_INDEX_ENV} only in Indexed mode`);
  assert.ok(Number.isInteger(job.spec.completions) && job.spec.completions >= 2);
  assert.ok(Number.isInteger(job.spec.parallelism) && job.spec.parallelism >= 1 && job.spec.parallelism <= job.spec.completions);
  assert.ok(['Never', 'OnFailure'].includes(job.spec.template.spec.restartPolicy), 'a Job needs restartPolicy Never or OnFailure');
  assert.equal(job.spec.template.spec.containers.length, 1);
});

test('its command is `celeba-gan generate` with flags the CLI knows, --shards = completions, and mounted paths', () => {
  assert.deepEqual(container.command, ['celeba-gan', 'generate']);
  const f = flags(container.args);
  // The options generate's own builder declares (yargs keeps them in getOptions(), untyped).
  const built = (generateCommand.builder as (y: Argv) => Argv)(yargs([])) as unknown as { getOptions(): { key: Record<string, unknown> } };
  const known = new Set(Object.keys(built.getOptions().key));
  for (const name of f.keys()) assert.ok(known.has(name), `--${name} is a generate option`);
  assert.equal(Number(f.get('shards')), job.spec.completions, '--shards must equal completions: each index makes one slice');
  assert.equal(f.has('shard'), false, 'the index comes from the Job, not --shard');
  assert.equal(f.has('grid'), false, 'shards cannot write one grid');
  assert.ok(Number(f.get('n')) >= job.spec.completions, 'every shard has work');
  assert.ok(f.has('seed'), 'a fixed seed: every pod must draw from the same run');
  const mounts = container.volumeMounts.map((m) => m.mountPath);
  for (const key of ['model', 'out']) {
    const value = f.get(key);
    assert.equal(typeof value, 'string');
    assert.ok(
      mounts.some((m) => (value as string).startsWith(`${m}/`)),
      `--${key} ${String(value)} lies on a mounted volume`,
    );
  }
  const volumes = new Set(job.spec.template.spec.volumes.map((v) => v.name));
  for (const m of container.volumeMounts) assert.ok(volumes.has(m.name), `volume ${m.name} is defined`);
});

test('run as the Job runs it (one call per index, paths and size made local): every face once, the same as one run', async () => {
  const dir = tempDir('cg-indexed-job-');
  const saved = process.env[SHARD_INDEX_ENV];
  try {
    const model = writeTinyModel(dir);
    const f = flags(container.args);
    const local = (out: string): string[] =>
      [...f].flatMap(([k, v]) => {
        const value = k === 'model' ? model : k === 'out' ? out : k === 'n' ? '20' : k === 'provider' ? 'cpu' : k === 'batch-size' ? '4' : v;
        return value === true ? [`--${k}`] : [`--${k}`, value];
      });
    for (let index = 0; index < job.spec.completions; index++) {
      process.env[SHARD_INDEX_ENV] = String(index);
      const r = await cli('generate', ...local(join(dir, 'sharded')));
      assert.equal(r.code, 0, r.stderr);
    }
    delete process.env[SHARD_INDEX_ENV];
    const whole = local(join(dir, 'whole'));
    const i = whole.indexOf('--shards');
    whole.splice(i, 2);
    const r = await cli('generate', ...whole);
    assert.equal(r.code, 0, r.stderr);
    const names = readdirSync(join(dir, 'whole'))
      .filter((n) => n.startsWith('face-'))
      .sort();
    assert.equal(names.length, 20);
    assert.deepEqual(
      readdirSync(join(dir, 'sharded'))
        .filter((n) => n.startsWith('face-'))
        .sort(),
      names,
    );
    for (const n of names) assert.deepEqual(readFileSync(join(dir, 'sharded', n)), readFileSync(join(dir, 'whole', n)), n);
    const parts = readdirSync(join(dir, 'sharded')).filter((n) => n.endsWith('.jsonl'));
    assert.equal(parts.length, job.spec.completions);
    const indices = parts.flatMap((p) =>
      readFileSync(join(dir, 'sharded', p), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).index as number),
    );
    assert.deepEqual(
      indices.sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, k) => k),
    );
  } finally {
    if (saved === undefined) delete process.env[SHARD_INDEX_ENV];
    else process.env[SHARD_INDEX_ENV] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
