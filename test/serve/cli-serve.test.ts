import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultServeThreads } from '../../src/serve/limits.js';
import { checkBindSafety, isLoopback } from '../../src/serve/auth.js';
import { cli } from '../support/in-process.js';
import { tempDir, writeTinyModel } from '../inference/fixtures.js';
import { serveTiny, writeConditionalModel } from './helpers.js';
import { waitFor, waitForLine } from '../support/wait.js';

/**
 * `celeba-gan serve` as a user runs it: a child process on 127.0.0.1 (real sockets), its
 * shutdown on SIGTERM (drain, exit 0; a second signal quits at once; a bound on the drain), the
 * refusal to bind a public address without a token, and a disconnecting client's queued work.
 */

const dir = tempDir('cg-serve-cli-');
const model = writeTinyModel(join(dir, 'models'));
const children = new Set<ChildProcessWithoutNullStreams>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

// The child runs the CLI entry under the same loader flags as this process (tsx from src/, or plain from dist/).
const MAIN = new URL('../../src/cli/main.js', import.meta.url).href;
const loaderArgs = process.execArgv.flatMap((a, i, all) => {
  if (a === '--import') return [];
  if (all[i - 1] === '--import') return ['--import', import.meta.resolve(a)];
  return a.startsWith('--import=') ? ['--import', import.meta.resolve(a.slice('--import='.length))] : [];
});

interface Server {
  child: ChildProcessWithoutNullStreams;
  base: URL;
  port: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startServe(...args: string[]): Promise<Server> {
  return startServing(model, ...args);
}

async function startServing(modelPath: string, ...args: string[]): Promise<Server> {
  const script = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
  const child = spawn(process.execPath, [
    ...loaderArgs,
    '--input-type=module',
    '-e',
    script,
    'serve',
    '--model',
    modelPath,
    '--port',
    '0',
    '--provider',
    'cpu',
    ...args,
  ]);
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => (children.delete(child), resolve(code))));
  const base = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in 60 s: ${stderr}`)), 60_000);
    child.stdout.on('data', (d) => {
      stdout += String(d);
      // `serving <model> at <url>/` (with --verbose, fastify's JSON log lines come first).
      const m = /^serving .* at (http:\/\/\S+?)\/?$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(new URL(m[1]!));
      }
    });
    child.on('exit', () => reject(new Error(`serve exited before listening: ${stderr}`)));
  });
  return { child, base, port: Number(base.port), stdout: () => stdout, stderr: () => stderr, exited };
}

function get(base: URL, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(new URL(path, base), (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
}

/** A POST /v1/generate whose body arrives in two parts: an in-flight request we control. */
function slowPost(port: number): { finish: () => void; response: Promise<string> } {
  const body = JSON.stringify({ z: [Array.from({ length: 100 }, () => 0.25)] });
  const socket = connect(port, '127.0.0.1');
  socket.write(
    `POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`,
  );
  let text = '';
  socket.on('data', (d) => (text += String(d)));
  const response = new Promise<string>((resolve) => {
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  return { finish: () => socket.write(body.slice(10)), response };
}

/**
 * Resolves once the server has read the headers of slowPost's request (it is in flight): fastify's
 * `incoming request` log line, which `--verbose` turns on.
 */
function inFlightSeen(s: Server): Promise<unknown> {
  return waitForLine(
    s.child.stdout,
    /"msg":"incoming request".*"method":"POST","url":"\/v1\/generate"|"method":"POST","url":"\/v1\/generate".*"msg":"incoming request"/,
    30_000,
    s.stdout,
  );
}

/** Resolves once the server has taken the first stop signal (its `no longer accepting` line). */
function stopSeen(s: Server): Promise<unknown> {
  return waitForLine(s.child.stderr, /SIGTERM: no longer accepting/, 30_000, s.stderr);
}

test('serve: answers on 127.0.0.1; SIGTERM stops accepting, finishes the in-flight request, exits 0', async () => {
  const s = await startServe('--max-delay-ms', '1', '--verbose');
  const face = await get(s.base, '/v1/faces/7/3.png');
  assert.equal(face.status, 200);
  // The model runs in a worker thread with onnxruntime on all the cores (docs/benchmarks.md, bench:serve).
  assert.match(s.stderr(), new RegExp(`provider cpu, ${defaultServeThreads()} onnxruntime threads?\\n`));
  assert.equal(defaultServeThreads(), availableParallelism());
  assert.deepEqual(face.body.subarray(1, 4), Buffer.from('PNG'));
  const inFlight = slowPost(s.port);
  await inFlightSeen(s);
  s.child.kill('SIGTERM');
  await stopSeen(s);
  // No longer accepting new connections (once the listening socket is closed, just after the line).
  await waitFor(
    () =>
      get(s.base, '/healthz').then(
        () => false,
        (err: Error) => /ECONNREFUSED|ECONNRESET|socket hang up/.test(err.message) || assert.fail(err),
      ),
    { timeoutMs: 30_000, what: 'new connections to be refused after SIGTERM' },
  );
  inFlight.finish();
  const answer = await inFlight.response;
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.match(answer, /"images":\["iVBOR/);
  assert.equal(await s.exited, 0, s.stderr());
  assert.match(s.stderr(), /SIGTERM: no longer accepting; finishing in-flight requests/);
  assert.match(s.stderr(), /stopped cleanly/);
});

test('serve: a conditional model says so at start, with its attributes, and answers attr=', async () => {
  const s = await startServing(writeConditionalModel(join(dir, 'models'), 'cond.onnx'));
  // stderr and stdout are separate pipes: the line may arrive after `serving ...`.
  await waitForLine(
    s.child.stderr,
    /conditional on 3 attributes \(Smiling, Eyeglasses, Blond_Hair\): attr= on the face, grid, batch and interpolate routes/,
    30_000,
    s.stderr,
  );
  const face = await get(s.base, '/v1/faces/7/3.png?attr=Smiling,-Eyeglasses');
  assert.equal(face.status, 200, String(face.body));
  const bad = await get(s.base, '/v1/faces/7/3.png?attr=Bald');
  assert.equal(bad.status, 400);
  assert.match(String(bad.body), /"code":"E_ATTR_UNKNOWN"/);
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0, s.stderr());
});

test('serve: a second SIGTERM quits at once with 143', async () => {
  const s = await startServe('--verbose');
  const inFlight = slowPost(s.port);
  await inFlightSeen(s);
  s.child.kill('SIGTERM');
  await stopSeen(s);
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 143, s.stderr());
  assert.match(s.stderr(), /SIGTERM again: quitting now/);
  await inFlight.response;
});

test('serve: an in-flight request that outlasts --drain-ms is cut off, exit 1', async () => {
  const s = await startServe('--drain-ms', '400', '--verbose');
  const inFlight = slowPost(s.port);
  await inFlightSeen(s);
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 1, s.stderr());
  assert.match(s.stderr(), /drain cut off: 1 request or their work did not finish within 0.4 s \(--drain-ms\)/);
  assert.doesNotMatch(s.stderr(), /stopped cleanly/);
  await inFlight.response;
});

/** Resolves with `p`'s value, or rejects once `ms` have passed. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)))]).finally(
    () => clearTimeout(timer),
  );
}

async function metricValue(base: URL, name: string): Promise<number> {
  const text = (await get(base, '/metrics')).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

test('ERROR PATH - clients abandon the largest walks, then SIGTERM: serve exits within --drain-ms + 1 s and says whether the drain completed', async () => {
  const drainMs = 1500;
  const s = await startServe('--drain-ms', String(drainMs));
  // The largest walk the default cost ceiling admits: 64 frames at upscale 8, as a PNG strip.
  const walk = 'GET /v1/interpolate?from=7:1&to=9:2&steps=64&upscale=8&format=png HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
  const clients = [0, 1, 2].map(() => {
    const socket = connect(s.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(walk);
    return socket;
  });
  // Their work has begun once the model has made frames for them (a capped poll: it fails when it runs out).
  await waitFor(async () => (await metricValue(s.base, 'celeba_gan_images_generated_total')) >= 64, {
    timeoutMs: 10_000,
    what: 'the model making 64 frames for the abandoned walks',
  });
  for (const c of clients) c.destroy();
  const t0 = performance.now();
  s.child.kill('SIGTERM');
  // drain-ms + 1 s is the promise; the other second is for the process's own exit on a shared machine.
  const code = await within(s.exited, drainMs + 2000, 'the exit after SIGTERM');
  const elapsed = performance.now() - t0;
  if (code === 0) assert.match(s.stderr(), /drain completed: every request and its work finished\n.*stopped cleanly/s);
  else {
    assert.equal(code, 1, s.stderr());
    assert.match(s.stderr(), /drain cut off: \d+ requests? or their work did not finish within 1.5 s/);
  }
  assert.ok(elapsed < drainMs + 2000, `exited after ${elapsed.toFixed(0)} ms`);
});

test('ERROR PATH - serve refuses a non-loopback address without a token (E_INSECURE_BIND, exit 2)', async () => {
  const r = await cli('serve', '--model', model, '--host', '0.0.0.0', '--port', '0');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /error \[E_INSECURE_BIND\]: refusing to serve on 0\.0\.0\.0 without an auth token/);
  assert.match(r.stderr, /--auth-token/);
});

test('bind safety: loopback always; other addresses need a token or --insecure', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) assert.equal(isLoopback(host), true, host);
  for (const host of ['0.0.0.0', '::', '192.168.1.5', 'example.com', '10.0.0.1']) assert.equal(isLoopback(host), false, host);
  assert.throws(() => checkBindSafety('0.0.0.0', undefined, false), { code: 'E_INSECURE_BIND' });
  assert.doesNotThrow(() => checkBindSafety('0.0.0.0', 'T', false));
  assert.doesNotThrow(() => checkBindSafety('0.0.0.0', undefined, true));
});

test('BAD CALL - serve flags are checked before the model loads', async () => {
  for (const [flag, value] of [
    ['--max-batch', '0'],
    ['--max-queue', '0'],
    ['--port', '70000'],
    ['--max-delay-ms', '-1'],
  ] as const) {
    const r = await cli('serve', '--model', join(dir, 'missing.onnx'), flag, value);
    assert.equal(r.code, 2, `${flag} ${value}`);
    assert.match(r.stderr, new RegExp(`E_BAD_ARGUMENT.*for ${flag.slice(2)}`));
  }
});

test('a client that disconnects has its queued work dropped (real socket)', async () => {
  const s = await serveTiny({ batcher: { maxBatch: 64, maxDelayMs: 60_000, maxQueue: 64 } });
  try {
    const base = new URL(await s.app.listen({ host: '127.0.0.1', port: 0 }));
    const socket = connect(Number(base.port), '127.0.0.1');
    socket.write('GET /v1/faces/7/3.png HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(() => s.batcher.queued > 0, { timeoutMs: 30_000, what: 'the request in the queue' });
    assert.equal(s.batcher.queued, 1);
    socket.destroy();
    await waitFor(() => s.batcher.queued === 0, { timeoutMs: 30_000, what: "the disconnected client's work to leave the queue" });
    assert.equal(s.batcher.queued, 0);
    const metrics = (await s.app.inject('/metrics')).body;
    assert.match(metrics, /celeba_gan_images_generated_total 0/);
    assert.match(metrics, /celeba_gan_http_requests_total\{route="\/v1\/faces\/:seed\/:index\.:ext",method="GET",status="499"\} 1/);
  } finally {
    await s.stop();
  }
});
