import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * npm run check:gpu / check:gpu:prepare (scripts/), every part that runs without a GPU: options,
 * the prepared .gpu/ folder, unpacking node when it is missing, refusing stale compiled code, the
 * output folder, and the failure when CUDA is required but absent.
 */

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'scripts', 'check-gpu.sh'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('scripts/check-gpu.sh not found above this test');
    dir = up;
  }
  return dir;
}
const ROOT = repoRoot();
const work = mkdtempSync(join(tmpdir(), 'cg-check-gpu-'));
after(() => rmSync(work, { recursive: true, force: true }));

function script(name: 'check-gpu' | 'prepare-gpu', args: string[], env: Record<string, string> = {}): { status: number | null; out: string } {
  const base = { ...process.env };
  delete base.OUT;
  delete base.NODE_TEST_CONTEXT;
  const r = spawnSync('bash', [join(ROOT, 'scripts', `${name}.sh`), ...args], { encoding: 'utf8', env: { ...base, ...env }, timeout: 300_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('BAD CALL - check:gpu options', () => {
  test('--help lists the steps and the output files, exit 0', () => {
    const r = script('check-gpu', ['--help']);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /CELEBA_GAN_REQUIRE_CUDA=1/);
    assert.match(r.out, /summary\.md {2}status\.json {2}env\.txt/);
  });
  for (const [args, message] of [
    [['--bogus'], /check:gpu: unknown option --bogus \(see --help\)/],
    [['--steps', '0'], /--steps needs an integer >= 1, got '0'/],
    [['--widths', 'wide'], /--widths needs a list like 1,0.25, got 'wide'/],
    [['--out'], /--out needs a folder/],
  ] as const) {
    test(`${args.join(' ')}: exit 2, nothing run`, () => {
      const out = join(work, `bad-${args[0]}`);
      const r = script('check-gpu', [...args], { OUT: out });
      assert.equal(r.status, 2, r.out);
      assert.match(r.out, message);
      assert.equal(existsSync(out), false, 'no output folder');
    });
  }
  test('check:gpu:prepare takes no arguments: exit 2', () => {
    const r = script('prepare-gpu', ['--fast']);
    assert.equal(r.status, 2);
    assert.match(r.out, /unknown argument --fast/);
  });
});

describe('check:gpu:prepare, then check:gpu on a machine without node', () => {
  const gpu = join(work, '.gpu');
  const fake = join(work, 'fake');
  before(() => {
    // A "node" to pack that runs this machine's node, headers with an openssl/ to leave out, an
    // npm holding node-gyp, and a stand-in compiled tree.
    mkdirSync(join(fake, 'bin'), { recursive: true });
    writeFileSync(join(fake, 'bin', 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`);
    chmodSync(join(fake, 'bin', 'node'), 0o755);
    mkdirSync(join(fake, 'include', 'node', 'openssl'), { recursive: true });
    writeFileSync(join(fake, 'include', 'node', 'node_api.h'), '/* N-API */\n');
    writeFileSync(join(fake, 'include', 'node', 'openssl', 'ssl.h'), '/* big */\n');
    mkdirSync(join(fake, 'npm', 'node_modules', 'node-gyp', 'bin'), { recursive: true });
    writeFileSync(join(fake, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), '// node-gyp\n');
    mkdirSync(join(fake, 'dist', 'test', 'engines', 'torch'), { recursive: true });
    writeFileSync(join(fake, 'dist', 'test', 'engines', 'torch', 'cuda.test.js'), '// compiled\n');
    const r = script('prepare-gpu', [], {
      CELEBA_GAN_GPU_DIR: gpu,
      NODE_BIN: join(fake, 'bin', 'node'),
      NODE_INCLUDE: join(fake, 'include', 'node'),
      NPM_DIR: join(fake, 'npm'),
      CELEBA_GAN_GPU_DIST_FROM: join(fake, 'dist'),
    });
    assert.equal(r.status, 0, r.out);
  });

  test('prepare: node.tar.xz (bin/node, headers without openssl/, npm with node-gyp), dist/, node-addon-api, the source hash, a manifest', () => {
    assert.deepEqual(readdirSync(gpu).sort(), ['MANIFEST.txt', 'dist', 'node.tar.xz', 'node_modules', 'source.sha256']);
    const listing = spawnSync('tar', ['-tJf', join(gpu, 'node.tar.xz')], { encoding: 'utf8' }).stdout.split('\n');
    for (const want of ['bin/node', 'include/node/node_api.h', 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'])
      assert.ok(listing.includes(want), `${want} in node.tar.xz`);
    assert.ok(!listing.some((f) => f.includes('openssl')), 'openssl headers left out');
    assert.ok(existsSync(join(gpu, 'dist', 'test', 'engines', 'torch', 'cuda.test.js')));
    assert.ok(existsSync(join(gpu, 'node_modules', 'node-addon-api', 'package.json')));
    const hash = spawnSync('bash', [join(ROOT, 'scripts', 'source-hash.sh')], { encoding: 'utf8' }).stdout.trim();
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal(readFileSync(join(gpu, 'source.sha256'), 'utf8').trim(), hash);
    assert.match(
      readFileSync(join(gpu, 'MANIFEST.txt'), 'utf8'),
      new RegExp(`node ${process.version} from .*fake/bin/node[\\s\\S]*total \\d+ KiB \\(limit 64 MiB\\)`),
    );
  });

  test('check: unpacks node from .gpu/node.tar.xz, writes every report into $OUT, fails where the compiled tree lacks the engine', () => {
    const out = join(work, 'out-unpack');
    const nodeDir = join(work, 'unpacked-node');
    const r = script('check-gpu', ['--skip-build', '--skip-tests', '--skip-bench'], {
      OUT: out,
      CELEBA_GAN_GPU_DIR: gpu,
      CELEBA_GAN_GPU_NODE: 'unpack',
      CELEBA_GAN_GPU_NODE_DIR: nodeDir,
    });
    assert.equal(r.status, 1, r.out);
    assert.equal(readFileSync(join(out, 'node.log'), 'utf8').trim(), `node ${process.version} unpacked from ${gpu}/node.tar.xz into ${nodeDir}`);
    assert.ok(existsSync(join(nodeDir, 'include', 'node', 'node_api.h')), 'headers where node-gyp --nodedir looks');
    assert.equal(readFileSync(join(out, 'javascript.log'), 'utf8').trim(), join(gpu, 'dist'));
    for (const f of ['env.txt', 'nvidia-smi.txt', 'node.log', 'javascript.log', 'torch-system.json', 'summary.md', 'status.json'])
      assert.ok(existsSync(join(out, f)), f);
    const status = JSON.parse(readFileSync(join(out, 'status.json'), 'utf8')) as { ok: boolean; out: string; steps: { name: string; status: string }[] };
    assert.equal(status.ok, false);
    assert.equal(status.out, out);
    assert.deepEqual(
      status.steps.map((s) => [s.name, s.status]),
      [
        ['node', 'ok'],
        ['javascript', 'ok'],
        ['build', 'skipped'],
        ['torch-system', 'FAILED'],
        ['tests', 'skipped'],
        ['bench', 'skipped'],
      ],
    );
    assert.match(readFileSync(join(out, 'summary.md'), 'utf8'), /\| torch-system \| FAILED \| \d+ \| exit 1, see torch-system\.json \|/);
  });

  test('ERROR PATH - check: compiled code from other sources is refused (run prepare again)', () => {
    writeFileSync(join(gpu, 'source.sha256'), `${'0'.repeat(64)}\n`);
    const out = join(work, 'out-stale');
    const r = script('check-gpu', ['--skip-build', '--skip-tests', '--skip-bench'], { OUT: out, CELEBA_GAN_GPU_DIR: gpu });
    assert.equal(r.status, 1);
    assert.match(
      readFileSync(join(out, 'javascript.log'), 'utf8'),
      /\.gpu\/dist was compiled from other sources \(0{64}, now [0-9a-f]{64}\): run npm run check:gpu:prepare again/,
    );
  });
});

// The whole check on this machine (no GPU), from the compiled tree npm test builds.
const compiled = import.meta.url.endsWith('.js') && existsSync(join(ROOT, 'dist', 'test', 'engines', 'torch', 'cuda.test.js'));
test(
  'ERROR PATH - check:gpu without a GPU: CUDA REQUIRED fails the tests, the GPU benchmarks do not run, exit 1',
  { skip: compiled ? false : 'runs from the compiled tests (npm test), which check:gpu uses as dist/' },
  () => {
    const out = join(work, 'out-no-gpu');
    const r = script('check-gpu', ['--skip-build', '--steps', '1', '--warmup', '0', '--widths', '0.0625'], {
      OUT: out,
      CELEBA_GAN_GPU_DIR: join(work, 'no-gpu-dir'),
      PYTHON: '/usr/bin/python3',
    });
    assert.equal(r.status, 1, r.out);
    const status = JSON.parse(readFileSync(join(out, 'status.json'), 'utf8')) as { steps: { name: string; status: string }[] };
    assert.deepEqual(
      status.steps.map((s) => [s.name, s.status]),
      [
        ['node', 'ok'],
        ['javascript', 'ok'],
        ['build', 'skipped'],
        ['torch-system', 'FAILED'],
        ['tests', 'FAILED'],
        ['bench-cuda', 'FAILED'],
        ['bench-cuda-amp', 'FAILED'],
      ],
    );
    assert.match(readFileSync(join(out, 'tests.log'), 'utf8'), /CUDA REQUIRED - the torch engine on a CUDA device/);
    assert.match(readFileSync(join(out, 'tests.tap'), 'utf8'), /not ok \d+ - CUDA REQUIRED/);
    assert.match(
      readFileSync(join(out, 'bench-cuda.log'), 'utf8'),
      /did not run: torch engine at width 0\.0625: skipped: --device cuda needs a libtorch built with CUDA/,
    );
    const bench = JSON.parse(readFileSync(join(out, 'bench-cuda-amp.json'), 'utf8')) as { case: { device: string; amp: boolean } };
    assert.deepEqual([bench.case.device, bench.case.amp], ['cuda', true]);
  },
);
