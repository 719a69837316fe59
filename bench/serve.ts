/**
 * Serving speed, in one run on one model (seed28 at --width, initial weights, exported by the
 * project's exporter), all on 127.0.0.1 and bounded in time and request count:
 *
 *   (a) model only: onnxruntime-node session.run images/s at batch 64 and 1 (as bench:generate),
 *       with onnxruntime's default threads and with 1, and in a worker thread as serve runs it
 *   (b) `celeba-gan serve` in a child process, driven by autocannon: GET /v1/faces/S/I.png with a
 *       new index per request, at concurrency 1, 16, 64, with --max-batch 64 and --max-batch 1:
 *       images/s, p50 and p99 latency
 *   (c) 10x overload: 10x --max-queue connections against --max-batch 64: 503s, the server's
 *       peak RSS, and its RSS before and after (after a pause, when nothing is queued)
 *
 * Targets (issue 11): at concurrency 64, served/model-only(batch 64) >= 0.7; batching >= 3x
 * unbatched; under overload RSS stays under the stated bound and the excess gets 503.
 *
 *   npm run bench:serve [-- --width 1 --seconds 4 --provider cpu --threads N]
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseProvider } from '../src/bindings/onnxruntime.js';
import { defaultServeThreads } from '../src/cli/serve.js';
import { buildSpec } from '../src/config/presets.js';
import { openGenerator } from '../src/inference/session.js';
import { openGeneratorInWorker } from '../src/inference/worker-session.js';
import { modelOnly } from './model-only.js';
import { initialWeights } from '../src/model/init.js';
import { buildGeneratorOnnx } from '../src/onnx/export.js';

const { values: args } = parseArgs({
  options: {
    width: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '4' },
    provider: { type: 'string', default: 'cpu' },
    /** onnxruntime threads for the served runs (default: serve's default). */
    threads: { type: 'string' },
    /** RSS bound stated for the overload run (MB). */
    'rss-bound': { type: 'string', default: '600' },
  },
});
const width = Number(args.width);
const seconds = Number(args.seconds);
const provider = parseProvider(args.provider);
const RSS_BOUND_MB = Number(args['rss-bound']);
const CONCURRENCY = [1, 16, 64];
const OVERLOAD_QUEUE = 64;
/** Requests one autocannon run may send at most, whatever its duration. */
const MAX_REQUESTS = 200_000;
const SEED = 2018;
const BIN = fileURLToPath(new URL('../../bin/celeba-gan', import.meta.url));

interface CannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p99: number };
  duration: number;
  non2xx: number;
  errors: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}


/** CPU ms (user + system, all threads) a process has used, from /proc. */
function cpuMsOf(pid: number): number {
  // After the `)` that closes the command name: state, ppid, ..., utime (14th field), stime (15th).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)?.split(' ') ?? [];
  const utime = fields[11];
  const stime = fields[12];
  if (utime === undefined || stime === undefined) throw new Error(`/proc/${pid}/stat has no utime and stime fields`);
  return ((Number(utime) + Number(stime)) * 1000) / 100; // clock ticks (100/s)
}

interface Server {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startServer(model: string, extra: string[]): Promise<Server> {
  const threadArgs = args.threads === undefined ? [] : ['--threads', args.threads];
  const child = spawn(process.execPath, [BIN, 'serve', '--model', model, '--port', '0', '--provider', provider, ...threadArgs, ...extra]);
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += String(d);
      const url = / at (http:\/\/\S+?)\/?\n/.exec(out)?.[1];
      if (url !== undefined) {
        clearTimeout(timer);
        resolve(url);
      }
    });
    child.on('exit', () => reject(new Error(`serve exited: ${err}`)));
  });
  return { child, url, stderr: () => err, exited };
}

async function stopServer(s: Server): Promise<void> {
  s.child.kill('SIGTERM');
  const code = await s.exited;
  if (code !== 0) throw new Error(`serve exited ${code} on SIGTERM: ${s.stderr()}`);
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** GET faces of one seed, a new index per request (nothing is cached anywhere). */
function load(url: string, connections: number, duration: number): Promise<CannonResult> {
  let index = 0;
  return autocannon({
    url,
    connections,
    duration,
    maxOverallRequests: Math.max(MAX_REQUESTS, connections),
    timeout: 30,
    requests: [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: `/v1/faces/${SEED}/${index++}.png` }) }],
  });
}

async function main(): Promise<void> {
  const spec = buildSpec('seed28', width);
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-serve-'));
  const servers = new Set<Server>();
  try {
    const model = join(dir, `seed28-w${width}.onnx`);
    writeFileSync(model, buildGeneratorOnnx(spec, initialWeights(spec, SEED), {}));
    log(`celeba-gan bench:serve: seed28 width ${width}, ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, node ${process.version}, ${seconds} s per point`);

    log(`  load average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other processes share the cores)`);
    // Model-only with onnxruntime's default threads (the cores, as bench:generate and `generate`)
    // and with 1; served figures are compared with the faster of the two at batch 64. The last
    // line runs the model in a worker thread as serve does (the latents and images cross threads).
    const serveThreads = args.threads === undefined ? defaultServeThreads() : Number(args.threads);
    type Rate = { rate: number; cpuPerImage: number };
    const modelRuns: { threads: string; b64: Rate; b1: Rate }[] = [];
    for (const threads of [undefined, 1]) {
      const session = await openGenerator(model, { provider, threads });
      modelRuns.push({ threads: threads === undefined ? `default (${availableParallelism()})` : String(threads), b64: await modelOnly(session, 64, seconds, SEED), b1: await modelOnly(session, 1, seconds, SEED) });
      await session.close();
    }
    const inWorker = await openGeneratorInWorker(model, { provider, threads: serveThreads, spinning: false });
    const viaWorker = { b64: await modelOnly(inWorker, 64, seconds, SEED), b1: await modelOnly(inWorker, 1, seconds, SEED) };
    await inWorker.close();
    log(`(a) model only (${provider}):`);
    for (const r of modelRuns) {
      log(`  threads ${r.threads}: batch 64 ${r.b64.rate.toFixed(1)} images/s (CPU ${r.b64.cpuPerImage.toFixed(2)} ms/image), batch 1 ${r.b1.rate.toFixed(1)} images/s (CPU ${r.b1.cpuPerImage.toFixed(2)} ms/image)`);
    }
    log(`  in a worker thread, threads ${serveThreads}, no spinning (as serve): batch 64 ${viaWorker.b64.rate.toFixed(1)} images/s, batch 1 ${viaWorker.b1.rate.toFixed(1)} images/s`);
    const m64 = modelRuns.reduce((a, b) => (b.b64.rate > a.b64.rate ? b : a)).b64;
    const best1 = modelRuns.reduce((a, b) => (b.b1.rate > a.b1.rate ? b : a)).b1;
    log(`  batching in the model itself (best batch 64 / best batch 1): ${(m64.rate / best1.rate).toFixed(2)}x`);
    const model64 = m64.rate;

    log(`(b) served (serve's default: ${serveThreads} onnxruntime thread${serveThreads === 1 ? '' : 's'}): GET /v1/faces/S/I.png, one face per request`);
    log('  | --max-batch | concurrency | images/s | p50 ms | p99 ms | / model-only b64 | server CPU ms/image | non-2xx |');
    const rate = new Map<string, number>();
    const cpuPer = new Map<string, number>();
    for (const maxBatch of [64, 1]) {
      const server = await startServer(model, ['--max-batch', String(maxBatch), '--max-queue', '4096']);
      servers.add(server);
      await load(server.url, 4, 1); // warm-up
      for (const c of CONCURRENCY) {
        const cpu0 = cpuMsOf(server.child.pid!);
        const r = await load(server.url, c, seconds);
        const served = r.requests.total - r.non2xx;
        const ips = served / r.duration;
        const cpu = (cpuMsOf(server.child.pid!) - cpu0) / served;
        rate.set(`${maxBatch}/${c}`, ips);
        cpuPer.set(`${maxBatch}/${c}`, cpu);
        log(`  | ${maxBatch} | ${c} | ${ips.toFixed(1)} | ${r.latency.p50} | ${r.latency.p99} | ${(ips / model64).toFixed(2)} | ${cpu.toFixed(2)} | ${r.non2xx + r.errors} |`);
      }
      await stopServer(server);
      servers.delete(server);
    }

    log(`(c) 10x overload: ${10 * OVERLOAD_QUEUE} connections, --max-batch 64 --max-queue ${OVERLOAD_QUEUE}`);
    const server = await startServer(model, ['--max-batch', '64', '--max-queue', String(OVERLOAD_QUEUE)]);
    servers.add(server);
    const pid = server.child.pid!;
    const fresh = rssMb(pid);
    // A first overload round warms everything up (JIT, heap, libuv pools); "before" is after it,
    // so before -> after compares two states that should be the same if nothing leaks.
    await load(server.url, 10 * OVERLOAD_QUEUE, seconds);
    await new Promise((r) => setTimeout(r, 2000));
    const before = rssMb(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
    const r = await load(server.url, 10 * OVERLOAD_QUEUE, seconds * 2);
    clearInterval(sampler);
    await new Promise((r2) => setTimeout(r2, 2000));
    const after = rssMb(pid);
    const codes = Object.entries(r.statusCodeStats)
      .map(([code, v]) => `${code}: ${v.count}`)
      .join(', ');
    const ok = r.statusCodeStats['200']?.count ?? 0;
    log(`  status codes: ${codes}; connection errors ${r.errors}; ${(ok / r.duration).toFixed(1)} images/s served meanwhile`);
    log(`  server RSS: fresh ${fresh.toFixed(0)} MB; after a first overload round ${before.toFixed(0)} MB; during the second: peak ${peak.toFixed(0)} MB (bound ${RSS_BOUND_MB} MB); 2 s after it ${after.toFixed(0)} MB`);
    await stopServer(server);
    servers.delete(server);

    const at64 = rate.get('64/64')!;
    const ratio = at64 / model64;
    const gain = at64 / rate.get('1/64')!;
    log('targets:');
    log(`  concurrency 64, --max-batch 64 / model-only batch 64: ${ratio.toFixed(2)} (target >= 0.7) ${ratio >= 0.7 ? 'ok' : 'BELOW TARGET'}`);
    log(`  --max-batch 64 / --max-batch 1 at concurrency 64: ${gain.toFixed(2)}x (target >= 3x) ${gain >= 3 ? 'ok' : 'BELOW TARGET'}`);
    log(`  CPU per image, model-only batch 64 / served at concurrency 64: ${(m64.cpuPerImage / cpuPer.get('64/64')!).toFixed(2)} (--max-batch 64), ${(m64.cpuPerImage / cpuPer.get('1/64')!).toFixed(2)} (--max-batch 1)`);
    log(`  load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    log(`  overload: peak RSS ${peak.toFixed(0)} MB ${peak < RSS_BOUND_MB ? '<' : '>='} ${RSS_BOUND_MB} MB; 503s ${r.statusCodeStats['503']?.count ?? 0}; after - before ${(after - before).toFixed(0)} MB`);
  } finally {
    for (const s of servers) s.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
