import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadDistAddon, loadTorchAddon } from '../src/bindings/torch.js';
import { PRESET_NAMES, buildSpec } from '../src/config/presets.js';
import { chooseBackend, createProcessGroup, groupOptionsFromEnv, readLaunchEnv, spawnLocalRanks } from '../src/distributed/index.js';
import { parameterList } from '../src/model/shapes.js';
import { initialWeights } from '../src/model/init.js';
import { createTorchEngine } from '../src/engines/torch/torch-engine.js';
import type { ProcessGroup } from '../src/distributed/index.js';
import type { NetworkName } from '../src/model/spec.js';

/**
 * The gradient all-reduce of data-parallel training, per preset and width: 2 ranks x 1 thread
 * over Gloo on 127.0.0.1, the two all-reduces of a step (D's gradients, then G's) with the
 * trainable tensors' real shapes from src/model, in 25 MB buckets (the engine's default).
 *
 *   npm run bench:distributed [-- --iters 10] [--warmup 2] [--widths 1,0.25,0.0625] [--presets seed28,dcgan64]
 *                             [--train-preset seed28] [--train-width 0.25] [--train-batch 32] [--train-steps 8]
 *
 * Times the JavaScript entry (ProcessGroup.allReduceMean), which adds one copy in and one out
 * per tensor to what the engine's C++ call does. Then training itself, the same global batch of
 * 2 x --train-batch images per step: 1 process x 2 threads against 2 ranks x 1 thread (the torch
 * engine averaging its gradients in C++), images/s and the engine's all-reduce ms per step.
 */

interface TrainResult {
  imagesPerSec: number;
  allReduceMs: number;
}

/** Time `steps` training steps of `batch` images each (after 2 warm-up steps); with a group, this rank's share. */
async function timeTraining(threads: number, batch: number, group: ProcessGroup | null): Promise<TrainResult> {
  const spec = buildSpec(flag('train-preset', 'seed28'), Number(flag('train-width', '0.25')));
  const steps = Number(flag('train-steps', '8'));
  const engine = await createTorchEngine(spec, { threads });
  try {
    await engine.setWeights(initialWeights(spec, 1));
    await engine.setEma(0);
    if (group) await engine.setGroup(group);
    const { height: H, width: W, channels: C } = spec.image;
    const images = Uint8Array.from({ length: batch * H * W * C }, (_, i) => (i * 31 + (group?.rank ?? 0) * 7) % 256);
    let allReduceMs = 0;
    let t0 = 0;
    for (let step = 0; step < steps + 2; step++) {
      if (step === 2) {
        await group?.barrier();
        t0 = performance.now();
      }
      const m = await engine.trainStep(images, batch, { seed: 1, step });
      if (step >= 2) allReduceMs += m.allReduceMs ?? 0;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { imagesPerSec: (steps * batch * (group?.worldSize ?? 1)) / seconds, allReduceMs: allReduceMs / steps };
  } finally {
    engine.dispose();
  }
}

interface Row {
  preset: string;
  width: number;
  paramsD: number;
  paramsG: number;
  bytesPerStep: number;
  msPerStep: number;
  msMin: number;
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function gradients(preset: string, width: number, network: NetworkName): Float32Array[] {
  return parameterList(buildSpec(preset, width), network)
    .filter((p) => p.trainable)
    .map((p, k) => Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => ((i + k) % 17) * 0.125));
}

/** One rank: time the step's two all-reduces for every case; rank 0 prints the rows as JSON. */
async function rank(): Promise<void> {
  const launch = readLaunchEnv()!;
  loadTorchAddon().setThreads(1);
  const iters = Number(flag('iters', '10'));
  const warmup = Number(flag('warmup', '2'));
  const widths = flag('widths', '1,0.25,0.0625').split(',').map(Number);
  const presets = flag('presets', PRESET_NAMES.join(',')).split(',');
  const { backend } = chooseBackend('gloo', 'cpu', loadDistAddon().backends);
  const group = await createProcessGroup(groupOptionsFromEnv(launch, { timeoutS: 120, backend }));
  const rows: Row[] = [];
  for (const preset of presets) {
    for (const width of widths) {
      const d = gradients(preset, width, 'discriminator');
      const g = gradients(preset, width, 'generator');
      const count = (ts: Float32Array[]): number => ts.reduce((n, t) => n + t.length, 0);
      const times: number[] = [];
      for (let i = 0; i < warmup + iters; i++) {
        await group.barrier();
        const t0 = performance.now();
        await group.allReduceMean(d);
        await group.allReduceMean(g);
        if (i >= warmup) times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      rows.push({
        preset,
        width,
        paramsD: count(d),
        paramsG: count(g),
        bytesPerStep: 4 * (count(d) + count(g)),
        msPerStep: times[Math.floor(times.length / 2)]!,
        msMin: times[0]!,
      });
    }
  }
  await group.barrier();
  const training = await timeTraining(1, Number(flag('train-batch', '32')), group);
  await group.barrier();
  group.close();
  if (launch.rank === 0) process.stdout.write(`${JSON.stringify({ rows, training })}\n`);
}

async function launcher(): Promise<void> {
  let json = '';
  const ranks = await spawnLocalRanks({
    nproc: 2,
    command: process.execPath,
    args: [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    output: 'pipe',
    onOutput: (r, stream, chunk) => {
      if (r === 0 && stream === 'stdout') json += String(chunk);
      if (stream === 'stderr') process.stderr.write(`[rank ${r}] ${String(chunk)}`);
    },
  });
  const stop = (): void => ranks.stop('SIGINT');
  process.on('SIGINT', stop);
  const result = await ranks.done;
  process.off('SIGINT', stop);
  if (result.exitCode !== 0) {
    process.stderr.write(`bench:distributed: ${result.summary}\n`);
    process.exitCode = result.exitCode;
    return;
  }
  const { rows, training } = JSON.parse(json.trim().split('\n').pop()!) as { rows: Row[]; training: TrainResult };
  console.log(`gradient all-reduce per training step (D then G), 2 ranks x 1 thread, Gloo on 127.0.0.1, 25 MB buckets, median of ${flag('iters', '10')}`);
  console.log('preset   width    params D    params G   MB/step   ms/step (min)   MB/s');
  for (const r of rows) {
    const mb = r.bytesPerStep / 1e6;
    console.log(
      `${r.preset.padEnd(8)} ${String(r.width).padEnd(7)} ${String(r.paramsD).padStart(10)} ${String(r.paramsG).padStart(11)} ${mb.toFixed(2).padStart(9)} ` +
        `${r.msPerStep.toFixed(2).padStart(9)} (${r.msMin.toFixed(2)}) ${(mb / (r.msPerStep / 1000)).toFixed(0).padStart(7)}`,
    );
  }
  // The one-process case runs after the ranks have exited, so the two never share the cores.
  const batch = Number(flag('train-batch', '32'));
  const single = await timeTraining(2, 2 * batch, null);
  const what = `${flag('train-preset', 'seed28')} width ${flag('train-width', '0.25')}, global batch ${2 * batch}, ${flag('train-steps', '8')} steps after 2 warm-up`;
  console.log(`training (torch engine, ${what}):`);
  console.log(`  1 process x 2 threads: ${single.imagesPerSec.toFixed(1)} images/s`);
  console.log(`  2 ranks x 1 thread:    ${training.imagesPerSec.toFixed(1)} images/s (all-reduce ${training.allReduceMs.toFixed(1)} ms per step)`);
}

if (process.env.RANK !== undefined) await rank();
else await launcher();
