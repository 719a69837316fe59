import {
  chooseBackend,
  checkIdenticalWeights,
  createProcessGroup,
  groupOptionsFromEnv,
  readLaunchEnv,
  type ProcessGroup,
} from '../../src/distributed/index.js';
import { loadDistAddon } from '../../src/bindings/torch.js';
import { digest, rankTensors } from './helpers.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSpec } from '../../src/config/presets.js';
import { createTorchEngine } from '../../src/engines/torch/torch-engine.js';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.js';
import type { StepRandomness } from '../../src/engines/engine.js';

/**
 * One rank of the 2-rank tests, started by spawnLocalRanks, torchrun or the tests themselves:
 * it reads the launcher's environment, joins the group and runs a scenario, then prints one JSON
 * line `{"rank":…,"ok":…}` (errors: their code, lost rank and message) and exits 0 or 1.
 * Run as: node [--import tsx] -e "await import(<this file>)" <scenario> [arg]
 */

const say = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

async function scenario(name: string, arg: string | undefined, group: ProcessGroup): Promise<Record<string, unknown>> {
  const rank = group.rank;
  switch (name) {
    case 'allreduce': {
      const mean = await group.allReduceMean(rankTensors(rank), 64 * 1024);
      const fromRoot = await group.broadcast(rankTensors(rank), 1);
      const gathered = await group.allGather(Uint8Array.from([rank, 42, 255 - rank]));
      return { mean: digest(mean), meanHead: Array.from(mean[0]!), broadcast: digest(fromRoot), gathered: gathered.map((g) => Array.from(g)) };
    }
    case 'replicas': {
      // Different starting buffers per rank; after each all-reduce an identical local update.
      let buffers: Float32Array[] = [
        Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i * (rank + 1))),
        Float32Array.from({ length: 300_000 }, (_, i) => Math.cos(i + rank)),
      ];
      const before = digest(buffers);
      let differ: unknown = null;
      try {
        await checkIdenticalWeights(group, { 'g.w': buffers[0]!, 'g.v': buffers[1]! });
      } catch (err) {
        const e = err as { code?: string; lostRank?: number };
        differ = { code: e.code, lostRank: e.lostRank };
      }
      for (let k = 0; k < 6; k++) {
        buffers = await group.allReduceMean(buffers, 256 * 1024);
        for (const b of buffers) for (let i = 0; i < b.length; i++) b[i] = b[i]! * 0.9 + Math.fround(Math.sin(i + k)) * 0.1;
      }
      const same = await checkIdenticalWeights(group, { 'g.w': buffers[0]!, 'g.v': buffers[1]! });
      return { before, after: digest(buffers), differ, same };
    }
    case 'stall': {
      // Rank `arg` never enters the collective (the test kills it, or lets it time out).
      const stallRank = Number(arg);
      say({ rank, ready: true });
      if (rank === stallRank) await new Promise((resolve) => setTimeout(resolve, 600_000));
      await group.allReduceMean([new Float32Array(16).fill(rank)]);
      return { reached: true };
    }
    case 'train': {
      // `arg` is a folder: cfg.json { preset, width, n, steps, seed, given }, weights.safetensors
      // (the start), and with `given` inputs.safetensors: u8_<step>_<rank> (pixel values as
      // floats, HWC), z_<step>_<rank>, mD_<step>_<rank>_<i>, mG_<step>_<rank>_<i>. Without it each
      // rank trains on its own pixels (a function of rank and step) with the engine's own draws.
      // Rank 0 writes out.safetensors: weights and Adam moments after the steps.
      const dir = arg!;
      const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8')) as {
        preset: string;
        width: number;
        n: number;
        steps: number;
        seed: number;
        given: boolean;
        masks: number;
        syncBn?: boolean;
        attributes?: string[];
      };
      const spec = buildSpec(cfg.preset, cfg.width, { attributes: cfg.attributes });
      const { height: H, width: W, channels: C } = spec.image;
      const engine = await createTorchEngine(spec, { threads: 1 });
      try {
        await engine.setWeights(readSafetensors(join(dir, 'weights.safetensors')).tensors);
        await engine.setEma(0);
        await engine.setGroup(group, { syncBn: cfg.syncBn ?? false });
        const inputs = cfg.given ? readSafetensors(join(dir, 'inputs.safetensors')).tensors : null;
        let allReduceMs = 0;
        for (let step = 0; step < cfg.steps; step++) {
          let batch: Uint8Array;
          let randomness: StepRandomness | undefined;
          if (inputs) {
            batch = Uint8Array.from(inputs.get(`u8_${step}_${rank}`)!.data);
            const masks = (tag: string): Float32Array[] => Array.from({ length: cfg.masks }, (_, i) => inputs.get(`${tag}_${step}_${rank}_${i}`)!.data);
            randomness = {
              z: inputs.get(`z_${step}_${rank}`)!.data,
              dropoutD: cfg.masks > 0 ? masks('mD') : null,
              dropoutG: cfg.masks > 0 ? masks('mG') : null,
            };
          } else {
            batch = Uint8Array.from({ length: cfg.n * H * W * C }, (_, i) => (i * 31 + step * 17 + rank * 101) % 256);
          }
          const labels = inputs?.get(`y_${step}_${rank}`)?.data; // a conditional spec's label rows
          const m = await engine.trainStep(batch, cfg.n, { seed: cfg.seed, step, labels, ...(randomness ? { randomness } : {}) });
          allReduceMs += m.allReduceMs ?? NaN;
        }
        const weights = await engine.getWeights();
        const opt = await engine.getOptimizerState();
        if (rank === 0) writeSafetensors(join(dir, 'out.safetensors'), new Map([...weights, ...opt.tensors]));
        const sorted = [...weights.keys()].sort();
        return {
          weights: digest(sorted.map((k) => weights.get(k)!.data)),
          adam: digest([...opt.tensors.keys()].sort().map((k) => opt.tensors.get(k)!.data)),
          allReduceMs,
        };
      } finally {
        engine.dispose();
      }
    }
    case 'join':
      await group.barrier();
      return {};
    default:
      throw new Error(`unknown scenario ${name}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [name, arg] = argv;
  let rank = -1;
  const started = Date.now();
  try {
    const launch = readLaunchEnv();
    if (!launch) throw new Error('no launch environment');
    rank = launch.rank;
    const timeoutS = Number(process.env.CGT_TEST_DIST_TIMEOUT_S ?? 20);
    const { backend } = chooseBackend('auto', 'cpu', loadDistAddon().backends);
    // The ranks may start seconds apart on a busy machine: only the collectives get the short limit.
    const rendezvousTimeoutS = Number(process.env.CGT_TEST_DIST_RENDEZVOUS_S ?? timeoutS);
    const group = await createProcessGroup(groupOptionsFromEnv(launch, { timeoutS, rendezvousTimeoutS, backend }));
    const out = await scenario(name!, arg, group);
    await group.barrier();
    group.close();
    say({ rank, ok: true, worldSize: launch.worldSize, localRank: launch.localRank, agentStore: launch.agentStore, ...out });
    return 0;
  } catch (err) {
    const e = err as { code?: string; lostRank?: number; message?: string };
    say({ rank, ok: false, code: e.code, lostRank: e.lostRank, message: e.message, elapsedMs: Date.now() - started });
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(1));
