/**
 * Serving speed, in one run, for each model width of --widths (seed28, initial weights, exported
 * by the project's exporter), all on 127.0.0.1 and bounded in time and request count:
 *
 *   (a) model only: onnxruntime-node session.run images/s at batch 64 and 1 (as bench:generate),
 *       with onnxruntime's default threads and with 1, and in a worker thread as serve runs it
 *   (b) `celeba-gan serve` in a child process, driven by autocannon: GET /v1/faces/S/I.png with a
 *       new index per request, at concurrency 1, 16, 64, with --max-batch 64 and --max-batch 1:
 *       images/s, p50 and p99 latency
 *   (c) 10x overload: 10x --max-queue connections against --max-batch 64: 503s, the server's
 *       peak RSS, and its RSS before and after (after a pause, when nothing is queued)
 *
 *   (d) GET /v1/batch (a tar stream of N PNGs, generate's bytes), two requests of 1024 faces
 *       in flight: faces/s
 *   (e) the floor: a bare fastify route answering a fixed PNG, same load as (b) at concurrency
 *       64: the server CPU per request that no change to serve's own work can go under
 *
 * The last table puts the widths side by side: model-only, served at concurrency 64 (rate, ratio,
 * server CPU per face and the part of it outside the model) and the batch route (rate, ratio).
 * Sections (b) at concurrency 1 and 16, --max-batch 1, (c) and (e) run at the first width only.
 *
 * Targets: issue 11: at concurrency 64, served/model-only(batch 64) >= 0.7; batching >= 3x
 * unbatched; under overload RSS stays under the stated bound and the excess gets 503. Issue 19:
 * served/model-only >= 0.7 at widths 1 and 0.25; the batch route >= 0.9 of model-only at every
 * width; server CPU per face outside the model <= 0.1 ms at width 0.125.
 *
 *   npm run bench:serve [-- --widths 0.125,0.25,1 --seconds 4 --provider cpu --threads N]
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { request } from 'node:http';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseProvider } from '../src/bindings/onnxruntime.js';
import { defaultServeThreads } from '../src/serve/limits.js';
import { buildSpec } from '../src/config/presets.js';
import { openGenerator } from '../src/inference/session.js';
import { openGeneratorInWorker } from '../src/inference/worker-session.js';
import { modelOnly } from './model-only.js';
import { initialWeights } from '../src/model/init.js';
import { buildGeneratorOnnx } from '../src/onnx/export.js';

const { values: args } = parseArgs({
  options: {
    widths: { type: 'string', default: '0.125,0.25,1' },
    seconds: { type: 'string', default: '4' },
    provider: { type: 'string', default: 'cpu' },
    /** onnxruntime threads for the served runs (default: serve's default). */
    threads: { type: 'string' },
    /** RSS bound stated for the overload run (MB). */
    'rss-bound': { type: 'string', default: '600' },
  },
});
const widths = args.widths.split(',').map(Number);
if (widths.some((w) => !(w > 0))) throw new Error(`--widths: expected numbers > 0 separated by commas, received ${args.widths}`);
const seconds = Number(args.seconds);
const provider = parseProvider(args.provider);
const RSS_BOUND_MB = Number(args['rss-bound']);
const CONCURRENCY = [1, 16, 64];
const OVERLOAD_QUEUE = 64;
/** Requests one autocannon run may send at most, whatever its duration. */
const MAX_REQUESTS = 200_000;
const SEED = 2018;
/** Faces per GET /v1/batch, and such requests in flight at once. */
const BATCH_FACES = 1024;
const BATCH_IN_FLIGHT = 2;
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
  return spawnServer([BIN, 'serve', '--model', model, '--port', '0', '--provider', provider, ...threadArgs, ...extra]);
}

/**
 * The floor of HTTP work per face on this machine: a bare fastify app (no hooks, schema or
 * metrics) answering every face URL with one fixed PNG of a 28x28 face's size (~2.5 kB).
 */
const FLOOR_APP = `
import Fastify from ${JSON.stringify(import.meta.resolve('fastify'))};
const png = Buffer.alloc(2500, 7);
const app = Fastify({ logger: false });
app.get('/v1/faces/:seed/:index.png', async (_request, reply) => reply.type('image/png').header('ETag', '"fixed"').send(png));
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
process.stdout.write(' at ' + (await app.listen({ port: 0, host: '127.0.0.1' })) + '\\n');
`;

async function spawnServer(argv: string[]): Promise<Server> {
  const child = spawn(process.execPath, argv);
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

type Rate = { rate: number; cpuPerImage: number };

/** Faces/s of GET /v1/batch: BATCH_IN_FLIGHT requests of BATCH_FACES faces each, for about `seconds`. */
async function batchRoute(url: string, secs: number): Promise<{ rate: number; faces: number }> {
  const one = (start: number): Promise<number> =>
    new Promise((resolve, reject) => {
      request(`${url}/v1/batch?seed=${SEED}&start=${start}&n=${BATCH_FACES}`, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`GET /v1/batch: ${res.statusCode}`))));
      })
        .on('error', reject)
        .end();
    });
  let next = 0;
  let faces = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: BATCH_IN_FLIGHT }, async () => {
      while (performance.now() - t0 < secs * 1000) {
        await one(next++ * BATCH_FACES);
        faces += BATCH_FACES;
      }
    }),
  );
  return { rate: faces / ((performance.now() - t0) / 1000), faces };
}

/** (a) for one model: the faster of default threads and 1 at batch 64 (and batch 1), and in a worker as serve runs it. */
async function modelOnlyFigures(model: string, serveThreads: number, verbose: boolean): Promise<{ m64: Rate; best1: Rate }> {
  const modelRuns: { threads: string; b64: Rate; b1: Rate }[] = [];
  for (const threads of [undefined, 1]) {
    const session = await openGenerator(model, { provider, threads });
    modelRuns.push({
      threads: threads === undefined ? `default (${availableParallelism()})` : String(threads),
      b64: await modelOnly(session, 64, seconds, SEED),
      b1: await modelOnly(session, 1, seconds, SEED),
    });
    await session.close();
  }
  const m64 = modelRuns.reduce((a, b) => (b.b64.rate > a.b64.rate ? b : a)).b64;
  const best1 = modelRuns.reduce((a, b) => (b.b1.rate > a.b1.rate ? b : a)).b1;
  if (verbose) {
    const inWorker = await openGeneratorInWorker(model, { provider, threads: serveThreads, spinning: false });
    const viaWorker = { b64: await modelOnly(inWorker, 64, seconds, SEED), b1: await modelOnly(inWorker, 1, seconds, SEED) };
    await inWorker.close();
    log(`(a) model only (${provider}):`);
    for (const r of modelRuns) {
      log(
        `  threads ${r.threads}: batch 64 ${r.b64.rate.toFixed(1)} images/s (CPU ${r.b64.cpuPerImage.toFixed(2)} ms/image), batch 1 ${r.b1.rate.toFixed(1)} images/s (CPU ${r.b1.cpuPerImage.toFixed(2)} ms/image)`,
      );
    }
    log(
      `  in a worker thread, threads ${serveThreads}, no spinning (as serve): batch 64 ${viaWorker.b64.rate.toFixed(1)} images/s, batch 1 ${viaWorker.b1.rate.toFixed(1)} images/s`,
    );
    log(`  batching in the model itself (best batch 64 / best batch 1): ${(m64.rate / best1.rate).toFixed(2)}x`);
  }
  return { m64, best1 };
}

interface Point {
  rate: number;
  cpuPerImage: number;
}

/** (b) one served point: images/s and the server's CPU per image at `c` connections. */
async function servedPoint(server: Server, c: number, model64: number | null, maxBatch: number | '-'): Promise<Point> {
  const cpu0 = cpuMsOf(server.child.pid!);
  const r = await load(server.url, c, seconds);
  const served = r.requests.total - r.non2xx;
  const ips = served / r.duration;
  const cpu = (cpuMsOf(server.child.pid!) - cpu0) / served;
  log(
    `  | ${maxBatch} | ${c} | ${ips.toFixed(1)} | ${r.latency.p50} | ${r.latency.p99} | ${model64 === null ? '-' : (ips / model64).toFixed(2)} | ${cpu.toFixed(3)} | ${r.non2xx + r.errors} |`,
  );
  return { rate: ips, cpuPerImage: cpu };
}

/** (c) 10x overload: 503s and the server's RSS. */
async function overload(model: string, servers: Set<Server>): Promise<void> {
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
  log(
    `  server RSS: fresh ${fresh.toFixed(0)} MB; after a first overload round ${before.toFixed(0)} MB; during the second: peak ${peak.toFixed(0)} MB (bound ${RSS_BOUND_MB} MB); 2 s after it ${after.toFixed(0)} MB`,
  );
  log(
    `  overload: peak RSS ${peak.toFixed(0)} MB ${peak < RSS_BOUND_MB ? '<' : '>='} ${RSS_BOUND_MB} MB; 503s ${r.statusCodeStats['503']?.count ?? 0}; after - before ${(after - before).toFixed(0)} MB`,
  );
  await stopServer(server);
  servers.delete(server);
}

interface WidthRow {
  width: number;
  model: Rate;
  served: Point;
  batch: Point;
}

async function oneWidth(width: number, dir: string, first: boolean, servers: Set<Server>): Promise<WidthRow> {
  const spec = buildSpec('seed28', width);
  const model = join(dir, `seed28-w${width}.onnx`);
  writeFileSync(model, buildGeneratorOnnx(spec, initialWeights(spec, SEED), {}));
  log(`--- width ${width}`);
  const serveThreads = args.threads === undefined ? defaultServeThreads() : Number(args.threads);
  const { m64 } = await modelOnlyFigures(model, serveThreads, first);
  log(`(b) served (serve's default: ${serveThreads} onnxruntime thread${serveThreads === 1 ? '' : 's'}): GET /v1/faces/S/I.png, one face per request`);
  log('  | --max-batch | concurrency | images/s | p50 ms | p99 ms | / model-only b64 | server CPU ms/image | non-2xx |');
  const points = new Map<string, Point>();
  for (const maxBatch of first ? [64, 1] : [64]) {
    const server = await startServer(model, ['--max-batch', String(maxBatch), '--max-queue', '4096']);
    servers.add(server);
    await load(server.url, 4, 1); // warm-up
    for (const c of first ? CONCURRENCY : [64]) points.set(`${maxBatch}/${c}`, await servedPoint(server, c, m64.rate, maxBatch));
    if (maxBatch === 64) {
      await batchRoute(server.url, 1); // warm-up
      const cpu0 = cpuMsOf(server.child.pid!);
      const b = await batchRoute(server.url, seconds);
      // Every face of the requests started within `seconds`: the last ones may run past it.
      const cpu = (cpuMsOf(server.child.pid!) - cpu0) / b.faces;
      points.set('batch', { rate: b.rate, cpuPerImage: cpu });
      log(
        `(d) GET /v1/batch, ${BATCH_IN_FLIGHT} requests of ${BATCH_FACES} faces in flight: ${b.rate.toFixed(1)} faces/s (${(b.rate / m64.rate).toFixed(2)} of model-only), server CPU ${cpu.toFixed(3)} ms/face`,
      );
    }
    await stopServer(server);
    servers.delete(server);
  }
  if (first) {
    const floor = await spawnServer(['--input-type=module', '-e', FLOOR_APP]);
    servers.add(floor);
    await load(floor.url, 4, 1); // warm-up
    log('(e) the floor: a bare fastify route answering a fixed 2.5 kB PNG (no model, no encoding, no hooks)');
    log('  | - | concurrency | requests/s | p50 ms | p99 ms | - | server CPU ms/request | non-2xx |');
    await servedPoint(floor, 64, null, '-');
    await stopServer(floor);
    servers.delete(floor);
    const at64 = points.get('64/64')!;
    const gain = at64.rate / points.get('1/64')!.rate;
    log(`  --max-batch 64 / --max-batch 1 at concurrency 64: ${gain.toFixed(2)}x (target >= 3x) ${gain >= 3 ? 'ok' : 'BELOW TARGET'}`);
    await overload(model, servers);
  }
  return { width, model: m64, served: points.get('64/64')!, batch: points.get('batch')! };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-serve-'));
  const servers = new Set<Server>();
  try {
    log(
      `celeba-gan bench:serve: seed28 widths ${widths.join(', ')}, ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, node ${process.version}, OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? '(unset)'}, ${seconds} s per point`,
    );
    log(
      `  load average at start: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} (other processes share the cores)`,
    );
    const rows: WidthRow[] = [];
    for (const [i, width] of widths.entries()) rows.push(await oneWidth(width, dir, i === 0, servers));

    log('side by side (concurrency 64, --max-batch 64; CPU per face: the server process, all threads):');
    log(
      '  | width | model-only b64 img/s | model CPU ms/face | served img/s | served / model-only | server CPU ms/face | outside the model ms/face | batch route faces/s | batch / model-only | batch server CPU ms/face |',
    );
    for (const r of rows) {
      const outside = r.served.cpuPerImage - r.model.cpuPerImage;
      log(
        `  | ${r.width} | ${r.model.rate.toFixed(1)} | ${r.model.cpuPerImage.toFixed(3)} | ${r.served.rate.toFixed(1)} | ${(r.served.rate / r.model.rate).toFixed(2)} | ${r.served.cpuPerImage.toFixed(3)} | ${outside.toFixed(3)} | ${r.batch.rate.toFixed(1)} | ${(r.batch.rate / r.model.rate).toFixed(2)} | ${r.batch.cpuPerImage.toFixed(3)} |`,
      );
    }
    log('targets:');
    for (const r of rows) {
      const ratio = r.served.rate / r.model.rate;
      const batch = r.batch.rate / r.model.rate;
      const servedTarget =
        r.width === 1 || r.width === 0.25 ? ` served/model-only ${ratio.toFixed(2)} (target >= 0.7) ${ratio >= 0.7 ? 'ok' : 'BELOW TARGET'};` : '';
      const outside = r.served.cpuPerImage - r.model.cpuPerImage;
      const cpuTarget = r.width === 0.125 ? ` outside the model ${outside.toFixed(3)} ms/face (target <= 0.1) ${outside <= 0.1 ? 'ok' : 'ABOVE TARGET'};` : '';
      log(`  width ${r.width}:${servedTarget}${cpuTarget} batch/model-only ${batch.toFixed(2)} (target >= 0.9) ${batch >= 0.9 ? 'ok' : 'BELOW TARGET'}`);
    }
    log(
      `  load average at the end: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    for (const s of servers) s.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
