import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildSpec } from '../../src/config/presets.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { freePort } from '../../src/distributed/index.js';
import { dropoutLayers, stepRandomness } from '../../src/engines/randomness.js';
import { initialWeights } from '../../src/model/init.js';
import { layerInfos } from '../../src/model/shapes.js';
import type { TensorMap } from '../../src/model/tensors.js';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.js';
import { listCheckpoints } from '../../src/train/index.js';
import { runTorchReference } from '../support/torch-reference.js';
import { PYTHON, TORCHRUN, referenceSkip } from '../support/references.js';
import { distSkip, killAll, launchEnv, startRank, torchrunArgs } from './helpers.js';
import { assertWithin, maxAbsDiff } from '../support/tensors.js';
import { TEST_ATTRIBUTES, fakeLabels } from '../engines/labels.js';

/**
 * Data-parallel training on the torch engine, 2 ranks over 127.0.0.1 with Gloo: replicas stay
 * bit-identical, one 2-rank step is PyTorch's averaged half-batch step, the CLI's --nproc and
 * the real torchrun launcher train a run that rank 0 writes, a killed rank fails the other within
 * --dist-timeout, and a resume is exact. Every process is bounded in time and killed in `after`.
 */

/** bin/celeba-gan from test/distributed (tsx) or dist/test/distributed (compiled). */
const BIN = ['../../bin/celeba-gan', '../../../bin/celeba-gan']
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((p) => existsSync(p) && !p.includes('/dist/bin/'))!;
const skip = distSkip();
const plainSpec = buildSpec('seed28', 0.0625);
const spec = plainSpec;
/** A conditional spec of the same size (labels to z, projection discriminator). */
const conditionalSpec = buildSpec('seed28', 0.0625, { attributes: [...TEST_ATTRIBUTES] });
let tmp = '';
let data = '';
const cliChildren = new Set<ChildProcess>();

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cg-ddp-'));
  data = join(tmp, 'faces.cgds');
  if (!skip) await prepareSynthetic({ count: 120, out: data, size: 28, seed: 4 });
});

after(() => {
  killAll();
  for (const c of cliChildren) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv, deadlineMs: number): Promise<Run> {
  return startProcess(command, args, env, deadlineMs).done;
}

/** Starts a command in its own process group, SIGKILLed (with its children) after `deadlineMs`. */
function startProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  deadlineMs: number,
  onStderr?: (all: string) => void,
): { child: ChildProcess; done: Promise<Run> } {
  const started = Date.now();
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  cliChildren.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => {
    stderr += String(d);
    onStderr?.(stderr);
  });
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }, deadlineMs);
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      cliChildren.delete(child);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    }),
  );
  return { child, done };
}

const TRAIN = [
  '--engine',
  'torch',
  '--data',
  '',
  '--width',
  '0.0625',
  '--batch-size',
  '8',
  '--sample-every',
  '0',
  '--log-every',
  '1',
  '--ema',
  '0',
  '--no-verify-data',
];
function trainArgs(out: string, ...more: string[]): string[] {
  const args = [...TRAIN, '--out', out, ...more];
  args[args.indexOf('--data') + 1] = data;
  return [BIN, 'train', ...args];
}

function lastWeights(run: string): Buffer {
  const [last] = listCheckpoints(run).sort((a, b) => b.step - a.step);
  assert.ok(last, `no checkpoint in ${run}`);
  return readFileSync(join(last.dir, 'weights.safetensors'));
}

test("two ranks: after 3 steps the replicas' weights (running statistics included) and Adam moments are bit-identical", { skip }, async () => {
  const dir = mkdtempSync(join(tmp, 'replicas-'));
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ preset: 'seed28', width: 0.0625, n: 4, steps: 3, seed: 11, given: false, masks: 0 }));
  writeSafetensors(join(dir, 'weights.safetensors'), initialWeights(spec, 5));
  const port = await freePort();
  const ranks = [0, 1].map((r) => startRank(launchEnv(r, 2, port, 30), ['train', dir], 120_000));
  const outs = await Promise.all(ranks.map((r) => r.done));
  const results = outs.map((o) => o.lines.find((l) => 'ok' in l)!);
  for (const [i, r] of results.entries()) assert.equal(r?.ok, true, `rank ${i}: ${JSON.stringify(r)} ${outs[i]!.stderr.slice(-2000)}`);
  assert.equal(results[0]!.weights, results[1]!.weights);
  assert.equal(results[0]!.adam, results[1]!.adam);
  assert.ok((results[0]!.allReduceMs as number) > 0, 'the all-reduce time is reported');
});

interface TwoRankStep {
  /** The engine's weights and Adam moments after the step (rank 0's). */
  ours: TensorMap;
  w0: TensorMap;
  /** The reference's inputs per replica: z_0_<r>, real_0_<r>, mD_0_<r>_<i>, mG_0_<r>_<i>. */
  perReplica: TensorMap;
  n: number;
  masks: number;
}

/** One training step on 2 ranks with given images, z and dropout masks per rank. */
async function twoRankStep(syncBn: boolean, spec = plainSpec): Promise<TwoRankStep> {
  const { height: H, width: W, channels: C } = spec.image;
  const n = 4;
  const masks = dropoutLayers(spec).length;
  const dir = mkdtempSync(join(tmp, 'exact-'));
  const attributes = spec.conditioning?.attributes;
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ preset: 'seed28', width: 0.0625, n, steps: 1, seed: 3, given: true, masks, syncBn, attributes }));
  const w0 = initialWeights(spec, 9);
  writeSafetensors(join(dir, 'weights.safetensors'), w0);
  const engineInputs: TensorMap = new Map();
  const perReplica: TensorMap = new Map();
  for (const r of [0, 1]) {
    const u8 = Float32Array.from({ length: n * H * W * C }, (_, i) => (i * 37 + r * 91 + ((i * i) % 53)) % 256);
    engineInputs.set(`u8_0_${r}`, { shape: [u8.length], data: u8 });
    const nchw = new Float32Array(n * C * H * W);
    for (let b = 0; b < n; b++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          for (let c = 0; c < C; c++) {
            nchw[((b * C + c) * H + y) * W + x] = Math.fround(Math.fround(u8[((b * H + y) * W + x) * C + c]! / 127.5) - 1);
          }
    perReplica.set(`real_0_${r}`, { shape: [n, C, H, W], data: nchw });
    const rand = stepRandomness(spec, 40 + r, 0, n);
    const labels = attributes && fakeLabels(n, attributes.length, r, 'ddp');
    for (const m of [engineInputs, perReplica]) {
      if (labels) m.set(`y_0_${r}`, { shape: [n, attributes.length], data: labels });
      m.set(`z_0_${r}`, { shape: [n, spec.zDim], data: rand.z });
      rand.dropoutD?.forEach((d, i) => m.set(`mD_0_${r}_${i}`, { shape: [d.length], data: d }));
      rand.dropoutG?.forEach((d, i) => m.set(`mG_0_${r}_${i}`, { shape: [d.length], data: d }));
    }
  }
  writeSafetensors(join(dir, 'inputs.safetensors'), engineInputs);
  const port = await freePort();
  const ranks = [0, 1].map((r) => startRank(launchEnv(r, 2, port, 30), ['train', dir], 120_000));
  const outs = await Promise.all(ranks.map((r) => r.done));
  for (const o of outs) assert.equal(o.lines.find((l) => 'ok' in l)?.ok, true, o.stderr.slice(-2000) + JSON.stringify(o.lines));
  return { ours: readSafetensors(join(dir, 'out.safetensors')).tensors, w0, perReplica, n, masks };
}

/**
 * The engine's trainable weights and Adam moments against a PyTorch reference's. A bias right
 * before batch norm has a zero gradient in exact arithmetic: its Adam moments are rounding noise
 * in both frameworks (test/engines/tfjs/engine.test.ts), so it is left out.
 */
function assertMatchesReference(ours: TensorMap, ref: TensorMap, spec = plainSpec): void {
  const cancelled = new Set<string>();
  for (const network of ['generator', 'discriminator'] as const) {
    const infos = layerInfos(spec, network);
    infos.forEach((info, i) => {
      if ('bias' in info.layer && info.layer.bias && infos[i + 1]?.layer.kind === 'batchNorm') cancelled.add(`${network}.${info.layer.name}.bias`);
    });
  }
  let compared = 0;
  for (const [name, t] of ref) {
    if (name === 'metrics' || /running_(mean|var)$/.test(name)) continue;
    if (cancelled.has(name.replace(/^adam\.[mv]\./, ''))) continue;
    const mine = ours.get(name);
    assert.ok(mine, `${name} missing from the engine's output`);
    const scale = Math.max(...t.data.map(Math.abs));
    if (name.startsWith('adam.')) {
      // Adam's moments are the averaged gradients: to 1e-4 of their scale.
      const d = maxAbsDiff(t.data, mine.data);
      assertWithin(`2 ranks~PyTorch ${name}`, d, 1e-4 * scale + 1e-12, `${name}: max |engine - torch| = ${d} (scale ${scale})`);
    } else {
      // A first Adam step moves a weight by lr * m / (|m| + eps): by about lr (2.5e-4) wherever the
      // gradient is well above rounding noise, and there to 2e-6; where the gradient is small
      // (|m| below 1% of its tensor's scale, as in test/engines/torch) its relative rounding
      // error, amplified near eps, sets the step: bounded by one step. (At 1e-4 of the scale,
      // the bound had 4.6x headroom; the rounding depends on the BLAS kernels.)
      const m = ref.get(`adam.m.${name}`)!.data;
      const mScale = Math.max(...m.map(Math.abs));
      let worst = { d: 0, what: `${name}: no element with |m| >= 1% of its scale` };
      for (let i = 0; i < t.data.length; i++) {
        const d = Math.abs(t.data[i]! - mine.data[i]!);
        if (Math.abs(m[i]!) < 0.01 * mScale) {
          if (d > 2 * spec.training.learningRate) assert.fail(`${name}[${i}]: |engine - torch| = ${d}, more than two steps (|m| ${m[i]} of ${mScale})`);
        } else if (d > worst.d) {
          worst = { d, what: `${name}[${i}]: |engine - torch| = ${d} (|m| ${m[i]} of ${mScale})` };
        }
      }
      assertWithin(`2 ranks~PyTorch ${name}`, worst.d, 2e-6, worst.what);
    }
    compared++;
  }
  assert.ok(compared > 20, `compared ${compared} tensors`);
}

/** Whether two runs' moments of one discriminator convolution differ (the tests' negative controls). */
function momentsDiffer(a: TensorMap, b: TensorMap): boolean {
  const key = [...b.keys()].find((k) => k.startsWith('adam.m.discriminator.') && k.endsWith('.weight') && b.get(k)!.shape.length === 4)!;
  const x = a.get(key)!.data;
  const y = b.get(key)!.data;
  const scale = Math.max(...y.map(Math.abs));
  return x.some((v, i) => Math.abs(v - y[i]!) > 1e-3 * scale);
}

test(
  'one 2-rank step equals PyTorch averaging the gradients of the two half-batches (each with its own batch-norm statistics), then one Adam step',
  { skip },
  async () => {
    const { ours, w0, perReplica, n, masks } = await twoRankStep(false);
    const ref = runTorchReference(spec, w0, perReplica, { mode: 'dataParallel', n, steps: 1, replicas: 2, masks });
    assertMatchesReference(ours, ref);
    // The test can fail: rank 0's half-batch alone gives other moments than the average.
    const alone = runTorchReference(spec, w0, new Map([...perReplica].filter(([k]) => /^(z|real)_0_0$|^m[DG]_0_0_\d+$/.test(k))), {
      mode: 'dataParallel',
      n,
      steps: 1,
      replicas: 1,
      masks,
    });
    assert.ok(momentsDiffer(alone, ours), 'one half-batch alone should not match the 2-rank step');
  },
);

test('conditional: one 2-rank step equals PyTorch averaging the half-batches with their label rows (the projection embedding included)', { skip }, async () => {
  const { ours, w0, perReplica, n, masks } = await twoRankStep(false, conditionalSpec);
  assert.ok(ours.has('adam.m.discriminator.embed.weight'), 'the projection embedding is trained');
  const ref = runTorchReference(conditionalSpec, w0, perReplica, { mode: 'dataParallel', n, steps: 1, replicas: 2, masks });
  assertMatchesReference(ours, ref, conditionalSpec);
  // The test can fail: the same step with rank 1's labels flipped gives other moments.
  const flipped: TensorMap = new Map(perReplica);
  const y = perReplica.get('y_0_1')!;
  flipped.set('y_0_1', { shape: y.shape, data: y.data.map((v) => -v) });
  const other = runTorchReference(conditionalSpec, w0, flipped, { mode: 'dataParallel', n, steps: 1, replicas: 2, masks });
  assert.ok(momentsDiffer(other, ours), 'other labels should not match the 2-rank step');
});

test('--sync-bn: one 2-rank step equals PyTorch training on the full batch of both halves', { skip }, async () => {
  const { ours, w0, perReplica, n, masks } = await twoRankStep(true);
  // The full batch: rank 0's images, then rank 1's (z, images and masks are per image).
  const full: TensorMap = new Map();
  const both = (a: string, b: string): Float32Array => {
    const x = perReplica.get(a)!.data;
    const y = perReplica.get(b)!.data;
    const out = new Float32Array(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  const { height: H, width: W, channels: C } = spec.image;
  full.set('z0', { shape: [2 * n, spec.zDim], data: both('z_0_0', 'z_0_1') });
  full.set('real0', { shape: [2 * n, C, H, W], data: both('real_0_0', 'real_0_1') });
  for (let i = 0; i < masks; i++) {
    for (const tag of ['mD', 'mG']) {
      const data = both(`${tag}_0_0_${i}`, `${tag}_0_1_${i}`);
      full.set(`${tag}0_${i}`, { shape: [data.length], data });
    }
  }
  const ref = runTorchReference(spec, w0, full, { mode: 'train', n: 2 * n, steps: 1, masks });
  assertMatchesReference(ours, ref);
  // The test can fail: per-replica batch norm is a different step.
  const perRank = runTorchReference(spec, w0, perReplica, { mode: 'dataParallel', n, steps: 1, replicas: 2, masks });
  assert.ok(momentsDiffer(perRank, ours), 'per-replica batch norm should not match the --sync-bn step');
});

test(
  'train --nproc 1 is the single-process run bit for bit; train --nproc 2 writes one run from rank 0 with the world size and all-reduce times',
  { skip },
  async () => {
    const single = join(tmp, 'single');
    const one = join(tmp, 'nproc1');
    const two = join(tmp, 'nproc2');
    const a = await runProcess(process.execPath, trainArgs(single, '--steps', '3', '--seed', '6', '--threads', '1'), {}, 120_000);
    assert.equal(a.code, 0, a.stderr);
    const b = await runProcess(process.execPath, trainArgs(one, '--steps', '3', '--seed', '6', '--nproc', '1'), {}, 120_000);
    assert.equal(b.code, 0, b.stderr);
    assert.ok(lastWeights(single).equals(lastWeights(one)), '--nproc 1 must be bit-identical to one process');
    const c = await runProcess(
      process.execPath,
      trainArgs(two, '--steps', '3', '--seed', '6', '--nproc', '2', '--checkpoint-every', '1', '--keep', '5'),
      {},
      120_000,
    );
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /data-parallel: 2 ranks, global batch 2 x 8/);
    assert.equal((c.stdout.match(/trained /g) ?? []).length, 1, `only rank 0 reports: ${c.stdout}`);
    const manifest = JSON.parse(readFileSync(join(listCheckpoints(two).at(-1)!.dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.worldSize, 2);
    assert.deepEqual(
      listCheckpoints(two)
        .map((k) => k.step)
        .sort(),
      [1, 2, 3],
    );
    const metrics = readFileSync(join(two, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      metrics.map((m) => m.step),
      [1, 2, 3],
      'one metrics line per step, from rank 0 only',
    );
    for (const m of metrics) assert.ok(m.allReduceMs > 0 && m.imagesPerSec > 0, JSON.stringify(m));
    assert.ok(!lastWeights(two).equals(lastWeights(one)), 'two ranks train on a global batch of 16, not 8');
  },
);

test('resume after a 2-rank run is exact: 2 + 2 steps == 4 steps; another world size continues and says so', { skip }, async () => {
  const whole = join(tmp, 'whole');
  const parts = join(tmp, 'parts');
  const w = await runProcess(process.execPath, trainArgs(whole, '--steps', '4', '--seed', '8', '--nproc', '2'), {}, 120_000);
  assert.equal(w.code, 0, w.stderr);
  const p1 = await runProcess(process.execPath, trainArgs(parts, '--steps', '2', '--seed', '8', '--nproc', '2'), {}, 120_000);
  assert.equal(p1.code, 0, p1.stderr);
  const resumeArgs = trainArgs(parts, '--steps', '4', '--nproc', '2', '--resume');
  const p2 = await runProcess(process.execPath, resumeArgs, {}, 120_000);
  assert.equal(p2.code, 0, p2.stderr);
  assert.ok(lastWeights(whole).equals(lastWeights(parts)), 'resumed run differs from the uninterrupted one');
  const p3 = await runProcess(process.execPath, trainArgs(parts, '--steps', '5', '--resume', '--threads', '1'), {}, 120_000);
  assert.equal(p3.code, 0, p3.stderr);
  assert.match(p3.stderr, /was trained by 2 ranks and continues with 1/);
});

test(
  'the real launcher: python3 -m torch.distributed.run --nproc_per_node 2 --no_python node bin/celeba-gan train trains, rank 0 writes the run',
  { skip: skip || referenceSkip(TORCHRUN) },
  async () => {
    const out = join(tmp, 'torchrun');
    const port = await freePort();
    const args = torchrunArgs(port, trainArgs(out, '--steps', '2', '--seed', '5', '--dist-timeout', '30'));
    const r = await runProcess(PYTHON, args, { OMP_NUM_THREADS: '1' }, 180_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr.slice(-3000)}`);
    assert.deepEqual(
      listCheckpoints(out).map((k) => k.step),
      [2],
    );
    assert.equal(JSON.parse(readFileSync(join(listCheckpoints(out)[0]!.dir, 'manifest.json'), 'utf8')).worldSize, 2);
    assert.ok(existsSync(join(out, 'metrics.jsonl')));
    assert.equal(readdirSync(out).filter((f) => f.startsWith('metrics')).length, 1);
  },
);

test('a killed rank makes the other exit non-zero within --dist-timeout, naming the lost rank', { skip }, async () => {
  const out = join(tmp, 'fault');
  const port = await freePort();
  const timeoutS = 5;
  const env = (r: number): NodeJS.ProcessEnv => ({
    RANK: String(r),
    WORLD_SIZE: '2',
    LOCAL_RANK: String(r),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
  });
  const args = trainArgs(out, '--steps', '100000', '--seed', '2', '--threads', '1', '--dist-timeout', String(timeoutS), '--checkpoint-every', '0');
  let killedAt = 0;
  const rank1 = startProcess(process.execPath, args, env(1), 120_000);
  const rank0 = startProcess(process.execPath, args, env(0), 120_000, (all) => {
    // Kill rank 1 once training is under way (rank 0 logged its second step).
    if (killedAt === 0 && /step 2\/100000/.test(all)) {
      killedAt = Date.now();
      process.kill(-rank1.child.pid!, 'SIGKILL');
    }
  });
  const [r0, r1] = await Promise.all([rank0.done, rank1.done]);
  assert.ok(killedAt > 0, `rank 1 was never killed: ${r0.stderr.slice(-2000)}`);
  assert.equal(r1.signal, 'SIGKILL');
  assert.notEqual(r0.code, 0);
  assert.match(r0.stderr, /E_DIST_(TIMEOUT|FAILED)/);
  assert.match(r0.stderr, /rank 1/);
  const waited = (Date.now() - killedAt) / 1000;
  assert.ok(waited < timeoutS + 15, `rank 0 took ${waited} s after rank 1 died (timeout ${timeoutS} s)`);
});

test('Ctrl-C on the --nproc launcher: both ranks stop after the same step, rank 0 saves a checkpoint, exit 130', { skip }, async () => {
  const out = join(tmp, 'interrupted');
  let sent = false;
  const launcher = startProcess(
    process.execPath,
    trainArgs(out, '--steps', '100000', '--seed', '4', '--nproc', '2', '--checkpoint-every', '0'),
    {},
    120_000,
    (all) => {
      if (!sent && /step 3\/100000/.test(all)) {
        sent = true;
        process.kill(launcher.child.pid!, 'SIGINT'); // the launcher only, as a terminal's Ctrl-C reaches it
      }
    },
  );
  const r = await launcher.done;
  assert.ok(sent, r.stderr.slice(-2000));
  assert.equal(r.code, 130, r.stderr.slice(-3000));
  const [saved] = listCheckpoints(out);
  assert.ok(saved && saved.step >= 3, `a checkpoint after the stop: ${JSON.stringify(listCheckpoints(out))}`);
  assert.match(r.stderr, /stopped by SIGINT at step \d+/);
});

test('usage errors: --nproc with the tfjs engine, --sync-bn in one process, --nproc under a launcher, a launched new run without --seed', async () => {
  const out = join(tmp, 'never');
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [[...trainArgs(out, '--steps', '1', '--seed', '1', '--nproc', '2')].map((a) => (a === 'torch' ? 'tfjs' : a)), {}, /E_BAD_ARGUMENT.*needs the torch engine/],
    [trainArgs(out, '--steps', '1', '--seed', '1', '--sync-bn'), {}, /E_BAD_ARGUMENT.*--sync-bn/],
    [
      trainArgs(out, '--steps', '1', '--seed', '1', '--nproc', '2'),
      { RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1' },
      /E_BAD_ARGUMENT.*already rank 0 of 2/,
    ],
    [trainArgs(out, '--steps', '1'), { RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1' }, /E_BAD_ARGUMENT.*needs --seed and --out/],
  ];
  for (const [args, env, message] of cases) {
    const r = await runProcess(process.execPath, args, env, 60_000);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.ok(!existsSync(out), 'nothing written');
  }
});
