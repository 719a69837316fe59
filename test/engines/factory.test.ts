import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSpec } from '../../src/config/presets.js';
import { createEngine, torchUnavailable } from '../../src/engines/create-engine.js';
import { CelebaGanError, UsageError } from '../../src/errors.js';
import { torchSkip } from '../support/torch-addon.js';

const spec = buildSpec('seed28', 0.03125);

test('ERROR PATH - --amp on the tfjs engine is a usage error, not ignored', async () => {
  await assert.rejects(createEngine(spec, { engine: 'tfjs', amp: true }), {
    name: 'UsageError',
    code: 'E_BAD_ARGUMENT',
    message: /--amp is for the torch engine on CUDA/,
  });
});

test('ERROR PATH - --engine auto --threads 0 is a usage error whichever engine would run', async () => {
  for (const engine of ['auto', 'tfjs'] as const) {
    await assert.rejects(createEngine(spec, { engine, threads: 0 }), {
      name: 'UsageError',
      code: 'E_BAD_ARGUMENT',
      message: /^Expected integer between 1 and 1024 for threads but received 0 of type number$/,
    });
  }
});

test('torchUnavailable: only "the addon or the engine module cannot load" may fall back', () => {
  const moduleMissing = Object.assign(new Error("Cannot find module '/x/dist/src/engines/torch/torch-engine.js'"), { code: 'ERR_MODULE_NOT_FOUND' });
  const otherModule = Object.assign(new Error("Cannot find package 'protobufjs'"), { code: 'ERR_MODULE_NOT_FOUND' });
  const table: [unknown, boolean][] = [
    [new CelebaGanError('E_TORCH_UNAVAILABLE', 'Could not load the libtorch addon'), true],
    [moduleMissing, true],
    [new UsageError('E_BAD_ARGUMENT', 'Unsupported device "gpu" for the torch engine'), false],
    [new CelebaGanError('E_TORCH_DEVICE', '--device cuda needs a libtorch built with CUDA'), false],
    [otherModule, false],
    [new TypeError('native.trainStep is not a function'), false],
    ['a string', false],
  ];
  for (const [err, expected] of table) assert.equal(torchUnavailable(err), expected, String((err as Error).message ?? err));
});

// With the addon built: every error of the torch engine reaches the user under `auto`.
describe('--engine auto with the torch addon loaded', { skip: torchSkip() }, () => {
  const rejectsWith = async (p: Promise<unknown>, code: string, message: RegExp): Promise<void> => {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof CelebaGanError, `expected a CelebaGanError, got ${String(err)}`);
      assert.equal(err.code, code);
      assert.equal(err.kind, 'usage');
      assert.match(err.message, message);
      return true;
    });
  };

  test("ERROR PATH - auto --device gpu is the torch engine's error, not a fallback to tfjs", async () => {
    await rejectsWith(
      createEngine(spec, { engine: 'auto', device: 'gpu' }),
      'E_BAD_ARGUMENT',
      /^Unsupported device "gpu" for the torch engine\. Should be one of: auto, cpu, cuda, cuda:N$/,
    );
  });

  test('ERROR PATH - auto --amp --device cpu says what is wrong, not that torch is unavailable', async () => {
    await assert.rejects(createEngine(spec, { engine: 'auto', amp: true, device: 'cpu' }), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.equal(err.code, 'E_BAD_ARGUMENT');
      assert.match(err.message, /^Mixed precision \(--amp\) needs --device cuda$/);
      assert.doesNotMatch(err.message, /not available|cannot load/);
      return true;
    });
  });

  test('auto with good options gives the torch engine and no fallback note', async () => {
    const e = await createEngine(spec, { engine: 'auto', device: 'cpu', threads: 1 });
    try {
      assert.equal(e.info.engine, 'torch');
      assert.ok(!e.info.notes.some((n) => /engine auto/.test(n)), e.info.notes.join('; '));
    } finally {
      e.dispose();
    }
  });
});

/**
 * Without the addon (CELEBA_GAN_TORCH_ADDON naming a missing file, in a child process so the
 * addon this process may have loaded is not cached): auto falls back to tfjs and says why; --amp
 * says the engine cannot load.
 */
function withoutAddon(opts: Record<string, unknown>): { engine?: string; notes?: string[]; code?: string; message?: string } {
  const url = new URL('../../src/engines/create-engine.js', import.meta.url).href;
  const presets = new URL('../../src/config/presets.js', import.meta.url).href;
  const script = `
    const { createEngine } = await import(${JSON.stringify(url)});
    const { buildSpec } = await import(${JSON.stringify(presets)});
    try {
      const e = await createEngine(buildSpec('seed28', 0.03125), ${JSON.stringify(opts)});
      console.log(JSON.stringify({ engine: e.info.engine, notes: e.info.notes }));
      e.dispose();
    } catch (err) {
      console.log(JSON.stringify({ code: err.code, message: err.message }));
    }`;
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, CELEBA_GAN_TORCH_ADDON: '/nonexistent/celeba_gan_torch.node' },
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ReturnType<typeof withoutAddon>;
}

describe('--engine auto without the torch addon', () => {
  test('falls back to tfjs and names the load failure', () => {
    const r = withoutAddon({ engine: 'auto' });
    assert.equal(r.engine, 'tfjs', JSON.stringify(r));
    assert.match(r.notes![0]!, /^engine auto: torch not used \(Could not load the libtorch addon \(the torch engine\)\.\); using tfjs$/);
  });

  test('ERROR PATH - --amp says the torch engine cannot load here', () => {
    const r = withoutAddon({ engine: 'auto', amp: true });
    assert.equal(r.code, 'E_BAD_ARGUMENT');
    assert.match(r.message!, /^--amp needs the torch engine on CUDA, but the torch engine cannot load here \(Could not load the libtorch addon/);
  });

  test('ERROR PATH - --engine torch is an error, never a fallback', () => {
    const r = withoutAddon({ engine: 'torch' });
    assert.equal(r.code, 'E_TORCH_UNAVAILABLE');
    assert.match(r.message!, /\/nonexistent\/celeba_gan_torch\.node: not found/);
  });
});
