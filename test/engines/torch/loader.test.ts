import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADDON_ENV, loadTorchAddon } from '../../../src/bindings/torch.js';
import { classifyBlas, blasNotes } from '../../../src/engines/torch/torch-engine.js';
import { CelebaGanError } from '../../../src/errors.js';
import { torchSkip } from '../../support/torch-addon.js';

// Each test file runs in its own process, so the loader's cache starts empty here.

function withAddonPath<T>(path: string, fn: () => T): T {
  const before = process.env[ADDON_ENV];
  process.env[ADDON_ENV] = path;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env[ADDON_ENV];
    else process.env[ADDON_ENV] = before;
  }
}

test('ERROR PATH - addon missing: E_TORCH_UNAVAILABLE says what was tried and the possible solutions', () => {
  withAddonPath('/nonexistent/celeba_gan_torch.node', () => {
    assert.throws(loadTorchAddon, (err: unknown) => {
      assert.ok(err instanceof CelebaGanError);
      assert.equal(err.name, 'CelebaGanError');
      assert.equal(err.code, 'E_TORCH_UNAVAILABLE');
      assert.match(err.message, /^Could not load the libtorch addon \(the torch engine\)\./);
      assert.match(err.message, /Tried:\n {2}- \/nonexistent\/celeba_gan_torch\.node: not found \(the addon was not built\)/);
      assert.match(err.message, /Possible solutions:\n/);
      assert.match(err.message, /apt-get install libtorch-dev libopenblas0-pthread && npm run build:native/);
      assert.match(err.message, /LIBTORCH=\/path\/to\/libtorch npm run build:native/);
      assert.match(err.message, /LIBTORCH_USE_PYTORCH=1 npm run build:native/);
      assert.match(err.message, new RegExp(`unset ${ADDON_ENV}`));
      assert.match(err.message, /--engine tfjs/);
      assert.match(err.hint ?? '', /npm run build:native/);
      return true;
    });
  });
});

test('ERROR PATH - addon file that is not a library: the dlopen message is in the error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cgt-addon-'));
  try {
    const bogus = join(dir, 'celeba_gan_torch.node');
    writeFileSync(bogus, 'not an ELF file');
    withAddonPath(bogus, () => {
      assert.throws(loadTorchAddon, (err: unknown) => {
        assert.ok(err instanceof CelebaGanError);
        assert.equal(err.code, 'E_TORCH_UNAVAILABLE');
        assert.ok(err.message.includes(`${bogus}: `), err.message);
        assert.match(err.message, /invalid ELF header|file too short|not a valid/i);
        return true;
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Last: loading succeeds, and is then cached (the failures above used overridden paths).
test('the addon loads and describes its libtorch (required where CELEBA_GAN_REQUIRE_TORCH is set)', (t) => {
  const skip = torchSkip(); // evaluated here, not at registration: a successful load is cached
  if (skip) return t.skip(skip);
  const sys = loadTorchAddon().systemInfo();
  assert.match(sys.torchVersion, /^\d+\.\d+\.\d+/);
  assert.equal(typeof sys.cuda, 'boolean');
  assert.ok(sys.cuda || sys.cudaDevices === 0);
  assert.ok(Array.isArray(sys.blasLibraries));
  assert.ok(sys.threads >= 1);
});

test('BLAS detection: reference BLAS warns, optimised ones do not', () => {
  const cases: [string[], string][] = [
    [['/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3', '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so'], 'openblas'],
    [['/usr/lib/x86_64-linux-gnu/blas/libblas.so.3'], 'reference'],
    [['/opt/intel/mkl/lib/libmkl_rt.so'], 'mkl'],
    [['/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3'], 'blis'],
    [[], 'unknown'],
  ];
  for (const [paths, kind] of cases) assert.equal(classifyBlas(paths), kind, paths.join(', '));
  assert.equal(blasNotes('reference').length, 1);
  assert.match(blasNotes('reference')[0]!, /reference BLAS.*libopenblas0-pthread/);
  assert.doesNotMatch(blasNotes('reference')[0]!, /\d+ ?x\b/, 'no benchmark figure in a message (figures live in docs/benchmarks.md)');
  assert.deepEqual(blasNotes('openblas'), []);
});
