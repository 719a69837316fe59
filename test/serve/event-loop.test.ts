import assert from 'node:assert/strict';
import { request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import { LIMITS } from '../../src/serve/app.js';
import { serveTiny } from './helpers.js';

/**
 * The event loop stays free under the heaviest requests the server allows: 8 clients fetch the
 * largest grid (64 faces at the largest upscale, which the default cost ceiling admits) while
 * /healthz is probed. Before the grid's upscaling and encoding moved into sharp's threads,
 * /healthz took 1.4-3.8 s here. The bound is generous (50 ms), read at the 90th percentile of
 * the probes and over the same server's latency without the load just before (what other
 * processes on a shared 2-core machine cost it), so a scheduler hiccup does not decide it; a
 * blocked event loop fails every round. The counts (clients x grids, probes, rounds) are fixed.
 */

const CLIENTS = 8;
const GRIDS_PER_CLIENT = 2;
const MAX_PROBES = 400;
const BOUND_MS = 50;
const ROUNDS = 3;
const CONTROL_PROBES = 20;

function get(port: number, path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
    })
      .on('error', reject)
      .end();
  });
}

/** The 90th percentile of `count` sequential /healthz probes on an otherwise idle server. */
async function probes(port: number, count: number): Promise<number> {
  const lags: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    assert.equal((await get(port, '/healthz')).status, 200);
    lags.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  return lags.sort((a, b) => a - b)[Math.floor(0.9 * (count - 1))]!;
}

/** One round: the load, and /healthz probed a few ms apart while it runs. */
async function round(port: number, seed0: number): Promise<{ p90: number; summary: string }> {
  const grid = (seed: number) => `/v1/grid?seed=${seed}&n=${LIMITS.maxImages}&upscale=${LIMITS.maxUpscale}`;
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let loading = true;
  const load = Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const sizes: number[] = [];
      for (let k = 0; k < GRIDS_PER_CLIENT; k++) {
        const r = await get(port, grid(seed0 + c * GRIDS_PER_CLIENT + k));
        assert.equal(r.status, 200);
        sizes.push(r.bytes);
      }
      return sizes;
    }),
  ).finally(() => (loading = false));
  const lags: number[] = [];
  while (loading && lags.length < MAX_PROBES) {
    const t0 = performance.now();
    assert.equal((await get(port, '/healthz')).status, 200);
    lags.push(performance.now() - t0);
    // Probes paced a few ms apart, so they sample the whole load rather than crowd it.
    await new Promise((r) => setTimeout(r, 5));
  }
  const sizes = (await load).flat();
  delay.disable();
  assert.ok(
    sizes.every((b) => b > 100_000),
    `grids of ${sizes.join(', ')} bytes`,
  );
  assert.ok(lags.length >= 3, `only ${lags.length} probes ran during the load`);
  const sorted = [...lags].sort((a, b) => a - b);
  const p90 = sorted[Math.floor(0.9 * (sorted.length - 1))]!;
  const loop = `event-loop delay p90 ${(delay.percentile(90) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`;
  return {
    p90,
    summary: `${lags.length} probes: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, p90 ${p90.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms; ${loop}`,
  };
}

test(`/healthz answers within ${BOUND_MS} ms (90th percentile, over its latency without load) while ${CLIENTS} clients fetch the largest allowed grid`, async () => {
  const s = await serveTiny({ batcher: { maxBatch: 64, maxDelayMs: 2, maxQueue: CLIENTS * LIMITS.maxImages } });
  try {
    const port = Number(new URL(await s.app.listen({ host: '127.0.0.1', port: 0 })).port);
    // Other processes share the cores: a round may lose the CPU for a while. A blocked event loop
    // (a synchronous encode on it) fails every round; up to ROUNDS rounds, the first under the bound passes.
    const seen: string[] = [];
    let passed = false;
    for (let r = 0; r < ROUNDS && !passed; r++) {
      const quiet = await probes(port, CONTROL_PROBES);
      const { p90, summary } = await round(port, 1000 * r);
      seen.push(`round ${r + 1}: without load p90 ${quiet.toFixed(1)} ms; with load ${summary}`);
      passed = p90 - quiet < BOUND_MS;
    }
    process.stdout.write(`# /healthz under load: ${seen.join(' | ')}\n`);
    assert.ok(passed, seen.join('\n'));
  } finally {
    await s.stop();
  }
});
