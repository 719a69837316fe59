/**
 * Training-speed contenders for bench/train.ts: the native torch engine and PyTorch eager
 * (bench/pytorch-eager.py, the same networks from the same spec data, same batch and threads),
 * printed side by side with their ratio. The target: torch engine >= 1.2x PyTorch eager
 * on seed28, width 1, batch 64.
 *
 * Alone: npm run build && node dist/bench/train-native.js [--steps 10] [--warmup 3] [--threads 2]
 *        [--preset seed28] [--width 1] [--batch 64] [--channels-last] [--conv-transpose aten] [--device cpu|cuda] [--amp]
 *        [--variants]   (what helped: the engine's variants interleaved step by step, min and median)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSpec } from '../src/config/presets.js';
import { findUp } from '../src/util/package-root.js';
import { createTorchEngine } from '../src/engines/torch/torch-engine.js';
import { nativeLayers, nativeParams } from '../src/engines/torch/layers.js';
import { Rng } from '../src/util/rng.js';

export interface NativeBenchOptions {
  preset: string;
  width: number;
  batch: number;
  threads: number;
  warmup: number;
  steps: number;
  /** `cpu` (default), `cuda`, `cuda:N`: both contenders run there. */
  device?: string;
  /** CUDA only: bfloat16 autocast in both contenders (--amp). */
  amp?: boolean;
  channelsLast?: boolean;
  convTranspose?: 'gemm' | 'aten';
}

export interface NativeBenchResult {
  name: string;
  /** null when the contender could not run (see note). */
  imagesPerSecond: number | null;
  /** Process CPU seconds per step (all threads): steadier than wall time on a shared machine. */
  cpuSecondsPerStep?: number;
  note?: string;
}

export const DEFAULT_NATIVE_BENCH: NativeBenchOptions = Object.freeze({ preset: 'seed28', width: 1, batch: 64, threads: 2, warmup: 3, steps: 10 });

export async function benchTorchEngine(o: NativeBenchOptions): Promise<NativeBenchResult> {
  const spec = buildSpec(o.preset, o.width);
  let engine;
  try {
    engine = await createTorchEngine(spec, {
      threads: o.threads,
      device: o.device ?? 'cpu',
      amp: o.amp,
      channelsLast: o.channelsLast,
      convTranspose: o.convTranspose,
    });
  } catch (err) {
    return { name: 'torch engine', imagesPerSecond: null, note: `skipped: ${String((err as Error).message).split('\n')[0]}` };
  }
  try {
    const { height, width, channels } = spec.image;
    const batch = new Uint8Array(o.batch * height * width * channels);
    const rng = new Rng(1, 'bench');
    for (let i = 0; i < batch.length; i++) batch[i] = rng.int(256);
    for (let s = 0; s < o.warmup; s++) await engine.trainStep(batch, o.batch, { seed: 1, step: s });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let s = 0; s < o.steps; s++) await engine.trainStep(batch, o.batch, { seed: 1, step: o.warmup + s });
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    return {
      name: 'torch engine',
      imagesPerSecond: (o.batch * o.steps) / seconds,
      cpuSecondsPerStep: (c.user + c.system) / 1e6 / o.steps,
      note: engine.info.backend,
    };
  } finally {
    engine.dispose();
  }
}

function pythonScript(): string | null {
  const dir = findUp(dirname(fileURLToPath(import.meta.url)), (d) => existsSync(join(d, 'bench', 'pytorch-eager.py')));
  return dir === null ? null : join(dir, 'bench', 'pytorch-eager.py');
}

export function benchPytorchEager(o: NativeBenchOptions): NativeBenchResult {
  const name = 'PyTorch eager';
  const python = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const script = pythonScript();
  if (!script) return { name, imagesPerSecond: null, note: 'skipped: bench/pytorch-eager.py not found' };
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    return { name, imagesPerSecond: null, note: `skipped: ${python} cannot import torch (apt-get install python3-torch)` };
  }
  const spec = buildSpec(o.preset, o.width);
  const input = JSON.stringify({
    params: nativeParams(spec),
    generator: nativeLayers(spec, 'generator'),
    discriminator: nativeLayers(spec, 'discriminator'),
    zDim: spec.zDim,
    latent: spec.latent,
    image: spec.image,
    training: spec.training,
    batch: o.batch,
    threads: o.threads,
    warmup: o.warmup,
    steps: o.steps,
    device: o.device ?? 'cpu',
    amp: o.amp ?? false,
  });
  const run = spawnSync(python, [script], { input, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (run.status !== 0) return { name, imagesPerSecond: null, note: `failed: ${run.stderr.trim().split('\n').pop()}` };
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as {
    imagesPerSecond: number;
    cpuSecondsPerStep: number;
    torch: string;
    threads: number;
    device: string;
    amp: boolean;
  };
  const where = out.device === 'cpu' ? `${out.threads} threads` : `${out.device}${out.amp ? ', bfloat16 autocast' : ', float32'}`;
  return { name, imagesPerSecond: out.imagesPerSecond, cpuSecondsPerStep: out.cpuSecondsPerStep, note: `python torch ${out.torch}, ${where}` };
}

/** Runs both contenders and prints them with the ratio torch engine / PyTorch eager. */
export async function runNativeBench(o: NativeBenchOptions = DEFAULT_NATIVE_BENCH, log: (line: string) => void = console.log): Promise<NativeBenchResult[]> {
  const where = (o.device ?? 'cpu') === 'cpu' ? `${o.threads} threads` : `${o.device}${o.amp ? ' --amp' : ''}`;
  log(`training speed: ${o.preset} width ${o.width}, batch ${o.batch}, ${where}, ${o.warmup} warm-up + ${o.steps} timed steps`);
  const torchEngine = await benchTorchEngine(o);
  const eager = benchPytorchEager(o);
  const results = [torchEngine, eager];
  // PyTorch eager with several intra-op threads competes with OpenBLAS's own threads (measured
  // here: slower with 2 threads than with 1), so the reference also runs on one thread and the
  // ratio uses whichever eager run was faster.
  let reference = eager;
  if (o.threads > 1 && (o.device ?? 'cpu') === 'cpu') {
    const eager1 = { ...benchPytorchEager({ ...o, threads: 1 }), name: 'PyTorch eager' };
    results.push(eager1);
    if (eager1.imagesPerSecond !== null && (eager.imagesPerSecond === null || eager1.imagesPerSecond > eager.imagesPerSecond)) reference = eager1;
  }
  for (const r of results) {
    const speed = r.imagesPerSecond === null ? '      -' : `${r.imagesPerSecond.toFixed(1).padStart(7)} images/s`;
    const cpu = r.cpuSecondsPerStep === undefined ? '' : `  CPU ${r.cpuSecondsPerStep.toFixed(2)} s/step`;
    log(`  ${r.name.padEnd(14)} ${speed}${cpu}  ${r.note ?? ''}`);
  }
  if (torchEngine.imagesPerSecond !== null && reference.imagesPerSecond !== null) {
    const which = reference === eager ? '' : ' (its 1-thread run, the faster)';
    log(`  ratio torch engine / PyTorch eager${which}: ${(torchEngine.imagesPerSecond / reference.imagesPerSecond).toFixed(2)}x images/s (target >= 1.2x)`);
    if (torchEngine.cpuSecondsPerStep && reference.cpuSecondsPerStep) {
      log(`  CPU time per step, PyTorch eager${which} / torch engine: ${(reference.cpuSecondsPerStep / torchEngine.cpuSecondsPerStep).toFixed(2)}x`);
    }
  }
  return results;
}

/**
 * The engine's variants (transposed-convolution path x memory format), one step of each in turn,
 * so a machine shared with other work slows them alike; the minimum is the least disturbed step.
 */
export async function benchVariants(o: NativeBenchOptions, log: (line: string) => void = console.log): Promise<void> {
  const spec = buildSpec(o.preset, o.width);
  const variants = [
    { name: 'gemm deconv, NCHW', convTranspose: 'gemm' as const, channelsLast: false },
    { name: 'gemm deconv, channels-last', convTranspose: 'gemm' as const, channelsLast: true },
    { name: 'aten deconv, NCHW', convTranspose: 'aten' as const, channelsLast: false },
    { name: 'aten deconv, channels-last', convTranspose: 'aten' as const, channelsLast: true },
  ];
  const engines = await Promise.all(variants.map((v) => createTorchEngine(spec, { threads: o.threads, device: o.device ?? 'cpu', ...v })));
  const { height, width, channels } = spec.image;
  const batch = new Uint8Array(o.batch * height * width * channels);
  const rng = new Rng(1, 'bench');
  for (let i = 0; i < batch.length; i++) batch[i] = rng.int(256);
  const times: number[][] = variants.map(() => []);
  const cpu: number[][] = variants.map(() => []); // process CPU seconds: less disturbed by other load than wall time
  try {
    for (let s = 0; s < o.warmup + o.steps; s++) {
      for (const [i, e] of engines.entries()) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        await e.trainStep(batch, o.batch, { seed: 1, step: s });
        const c = process.cpuUsage(c0);
        if (s >= o.warmup) times[i]!.push((performance.now() - t0) / 1000);
        if (s >= o.warmup) cpu[i]!.push((c.user + c.system) / 1e6);
      }
    }
  } finally {
    for (const e of engines) e.dispose();
  }
  log(`torch engine variants: ${o.preset} width ${o.width}, batch ${o.batch}, ${o.threads} threads, ${o.steps} interleaved steps each`);
  for (const [i, v] of variants.entries()) {
    const t = [...times[i]!].sort((a, b) => a - b);
    const min = t[0]!;
    const c = [...cpu[i]!].sort((a, b) => a - b);
    log(
      `  ${v.name.padEnd(28)} min ${min.toFixed(2)} s/step (${(o.batch / min).toFixed(1)} images/s), median ${t[t.length >> 1]!.toFixed(2)} s, CPU ${c[c.length >> 1]!.toFixed(2)} s/step`,
    );
  }
}

function parseArgs(argv: string[]): NativeBenchOptions {
  const o: NativeBenchOptions = { ...DEFAULT_NATIVE_BENCH, threads: Math.min(DEFAULT_NATIVE_BENCH.threads, availableParallelism()) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => argv[++i] ?? '';
    if (a === '--steps') o.steps = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--threads') o.threads = Number(next());
    else if (a === '--batch') o.batch = Number(next());
    else if (a === '--width') o.width = Number(next());
    else if (a === '--preset') o.preset = next();
    else if (a === '--device') o.device = next();
    else if (a === '--amp') o.amp = true;
    else if (a === '--channels-last') o.channelsLast = true;
    else if (a === '--conv-transpose') o.convTranspose = next() === 'aten' ? 'aten' : 'gemm';
  }
  return o;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = parseArgs(process.argv.slice(2));
  if (process.argv.includes('--variants')) await benchVariants(o);
  else await runNativeBench(o);
}
