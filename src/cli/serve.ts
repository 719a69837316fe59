import type { Argv, CommandModule } from 'yargs';
import { PROVIDER_NAMES, parseProvider } from '../bindings/onnxruntime.js';
import { CelebaGanError, assertInteger } from '../errors.js';
import { attributeDraw } from '../inference/attributes.js';
import { openGeneratorInWorker } from '../inference/worker-session.js';
import { buildApp, DEFAULT_CONNECTION_LIMITS, DEFAULT_DEADLINE_MS, DEFAULT_MAX_PIXELS, type ServeApp } from '../serve/app.js';
import { defaultServeThreads } from '../serve/limits.js';
import { checkBindSafety } from '../serve/auth.js';
import { pickModel } from './defaults.js';
import { Screen } from './output.js';
import { catchStopSignals } from './signals.js';

/** serve's notes (stderr) and its address (stdout), each line escaped. */
const screen = new Screen();

/** `celeba-gan serve`: faces over HTTP, dynamically batched, with a page at `/`. */

/**
 * Stop accepting and wait up to `drainMs` for the requests in flight and any work they left
 * running. Past it, their work is aborted and their connections closed; work that cannot be
 * interrupted (one libvips encode, one model call) gets one more second before the process
 * exits regardless. The log line says which happened; true when the drain completed.
 */
async function drainWithin(served: ServeApp, drainMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const completed = await Promise.race([
    served.close().then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), drainMs))),
  ]).finally(() => clearTimeout(timer));
  if (completed) {
    screen.say('drain completed: every request and its work finished');
    return true;
  }
  const cut = served.cutOff();
  served.app.server.closeAllConnections();
  screen.say(
    `drain cut off: ${cut} request${cut === 1 ? '' : 's'} or their work did not finish within ${drainMs / 1000} s (--drain-ms); aborted them and closed their connections`,
  );
  setTimeout(() => process.exit(1), 1000).unref();
  return false;
}

interface ServeArgs {
  model?: string;
  host: string;
  port: number;
  provider: string;
  device: number;
  threads?: number;
  'max-batch': number;
  'max-delay-ms': number;
  'max-queue': number;
  'deadline-ms': number;
  'drain-ms': number;
  'max-pixels': number;
  'headers-timeout-ms': number;
  'request-timeout-ms': number;
  'max-connections': number;
  'auth-token'?: string;
  insecure: boolean;
  verbose: boolean;
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve faces over HTTP (dynamic batching, Prometheus metrics) with a web page at /',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', describe: 'ONNX generator; default: the newest .onnx in models/' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to bind (not loopback: needs --auth-token or --insecure)' })
      .option('port', { type: 'number', default: 8080, describe: 'Port (0: any free port, printed)' })
      .option('provider', { type: 'string', default: 'auto', describe: `Execution provider: ${PROVIDER_NAMES.join(', ')}` })
      .option('device', { type: 'number', default: 0, describe: 'GPU index for cuda / dml' })
      .option('threads', { type: 'number', describe: `onnxruntime intra-op threads (default: the CPUs, here ${defaultServeThreads()})` })
      .option('max-batch', { type: 'number', default: 64, describe: 'Most faces in one model call' })
      .option('max-delay-ms', { type: 'number', default: 5, describe: 'Longest wait for a batch to fill' })
      .option('max-queue', { type: 'number', default: 1024, describe: 'Most faces waiting; beyond it requests get 503 + Retry-After' })
      .option('deadline-ms', {
        type: 'number',
        default: DEFAULT_DEADLINE_MS,
        describe: 'A request not answered by then (queued, computing or encoding) stops and gets 503 + Retry-After',
      })
      .option('drain-ms', {
        type: 'number',
        default: 10_000,
        describe: 'On SIGTERM/Ctrl-C: longest wait for in-flight requests; then they are cut off and serve exits 1 within 1 s',
      })
      .option('max-pixels', {
        type: 'number',
        default: DEFAULT_MAX_PIXELS,
        describe: 'Most pixels one request may have encoded (faces/grid cells/frames x pixels, weighted by format: GIF 24x PNG); more gets 400 E_COST_LIMIT',
      })
      .option('headers-timeout-ms', {
        type: 'number',
        default: DEFAULT_CONNECTION_LIMITS.headersTimeoutMs,
        describe: 'A client must send its request headers within this (else 408)',
      })
      .option('request-timeout-ms', {
        type: 'number',
        default: DEFAULT_CONNECTION_LIMITS.requestTimeoutMs,
        describe: 'A client must send its whole request (headers and body) within this (else 408)',
      })
      .option('max-connections', {
        type: 'number',
        default: DEFAULT_CONNECTION_LIMITS.maxConnections,
        describe: 'Open connections at most; more are closed as they arrive',
      })
      .option('auth-token', { type: 'string', describe: 'Require `Authorization: Bearer T` on every route but /healthz (default: env CELEBA_GAN_TOKEN)' })
      .option('insecure', { type: 'boolean', default: false, describe: 'Allow a non-loopback --host without a token' })
      .example('$0 serve', 'the newest model in models/ at http://127.0.0.1:8080/')
      .example('$0 serve --model models/celeba28.onnx --port 9000 --max-batch 128', 'another model, port and batch size')
      .example('CELEBA_GAN_TOKEN=s3cret $0 serve --host 0.0.0.0', 'reachable from the network, with a token')
      .example('curl -o face.png http://127.0.0.1:8080/v1/faces/7/417.png', 'the face `generate --seed 7 --index 417` writes') as unknown as Argv<ServeArgs>,
  handler: async (argv) => {
    const provider = parseProvider(argv.provider);
    const port = assertInteger('port', argv.port, 0, 65535);
    const device = assertInteger('device', argv.device, 0, 255);
    const batcher = {
      maxBatch: assertInteger('max-batch', argv['max-batch'], 1, 4096),
      maxDelayMs: assertInteger('max-delay-ms', argv['max-delay-ms'], 0, 10_000),
      maxQueue: assertInteger('max-queue', argv['max-queue'], 1, 1_000_000),
    };
    const deadlineMs = assertInteger('deadline-ms', argv['deadline-ms'], 1, 3_600_000);
    const drainMs = assertInteger('drain-ms', argv['drain-ms'], 0, 3_600_000);
    const maxPixels = assertInteger('max-pixels', argv['max-pixels'], 1, 2 ** 40);
    const headersTimeoutMs = assertInteger('headers-timeout-ms', argv['headers-timeout-ms'], 100, 3_600_000);
    const connections = {
      headersTimeoutMs,
      requestTimeoutMs: assertInteger('request-timeout-ms', argv['request-timeout-ms'], headersTimeoutMs, 3_600_000),
      maxConnections: assertInteger('max-connections', argv['max-connections'], 1, 1_000_000),
    };
    const token = argv['auth-token'] ?? (process.env.CELEBA_GAN_TOKEN || undefined);
    checkBindSafety(argv.host, token, argv.insecure);

    let model = argv.model;
    if (!model) {
      const pick = pickModel();
      model = pick.path;
      screen.say(`model ${model} (${pick.why})`);
    }
    const threads = argv.threads ?? defaultServeThreads();
    // The model runs in a worker thread, so this thread answers HTTP while a batch computes.
    const session = await openGeneratorInWorker(model, { provider, device, threads, spinning: false });
    const stop = catchStopSignals({ finishing: () => `no longer accepting; finishing in-flight requests (at most ${drainMs / 1000} s)` });
    try {
      const { info } = session;
      const served = await buildApp({ session, batcher, authToken: token, deadlineMs, maxPixels, connections, logger: argv.verbose });
      const notes = provider === 'auto' ? ` (auto${session.providerNotes.length ? `; not used: ${session.providerNotes.join('; ')}` : ''})` : '';
      let address: string;
      try {
        address = await served.app.listen({ host: argv.host, port });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new CelebaGanError('E_LISTEN', `cannot listen on ${argv.host}:${port}: ${(err as Error).message}`, {
          hint:
            code === 'EADDRINUSE'
              ? 'Another program uses that port: pass --port <other> (or 0 for any free one).'
              : 'Check --host (an address of this machine) and --port.',
          cause: err,
        });
      }
      screen.say(
        `provider ${session.providerUsed}${notes}${session.providerUsed === 'cpu' ? `, ${threads} onnxruntime thread${threads === 1 ? '' : 's'}` : ''}`,
      );
      screen.say(
        `${info.preset} width ${info.width}${info.step === null ? '' : ` step ${info.step}`}, z ${info.zDim} ~ ${info.latent}, ` +
          `${info.image.channels}x${info.image.height}x${info.image.width}; batches of up to ${batcher.maxBatch} within ${batcher.maxDelayMs} ms, queue ${batcher.maxQueue}${token ? '; auth token required' : ''}`,
      );
      if (info.attributes) {
        screen.say(
          `conditional on ${info.attributes.names.length} attributes (${info.attributes.names.join(', ')}): attr= on the face, grid, batch and interpolate routes`,
        );
        for (const note of attributeDraw(info.attributes, undefined, model)!.notes) screen.say(note);
      }
      screen.result(`serving ${model} at ${address}/`);

      // Until a stop signal, or until the model's thread dies (then there is nothing to serve).
      const failure = await Promise.race([
        new Promise<null>((resolve) => stop.signal.addEventListener('abort', () => resolve(null), { once: true })),
        session.failed,
      ]);
      const drained = await drainWithin(served, drainMs);
      // Reported like any other error (message, hint, exit 1), after the requests were answered.
      if (failure) throw failure;
      if (drained) screen.say('stopped cleanly');
      // A requested shutdown that drained is a success for a service (SIGTERM: 0); Ctrl-C keeps 130.
      process.exitCode = drained ? (stop.received === 'SIGINT' ? 130 : 0) : 1;
    } finally {
      stop.dispose();
      await session.close();
    }
  },
};
