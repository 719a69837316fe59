#!/usr/bin/env node
/**
 * Builds the libtorch addon (native/build/Release/celeba_gan_torch.node) with node-gyp.
 *
 * Where libtorch comes from, first match wins:
 *   1. LIBTORCH=/path/to/libtorch        a libtorch folder (include/, lib/), e.g. a CUDA build
 *   2. LIBTORCH_USE_PYTORCH=1            the libtorch inside a Python PyTorch install (python3, or $PYTHON)
 *   3. the system                        Debian/Ubuntu `libtorch-dev`
 *
 * Run by `npm install` (package "install" script): when libtorch is not found it prints one line
 * and exits 0, because the TensorFlow.js engine works without it. `--force` (npm run
 * build:native) always rebuilds and fails loudly when libtorch is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = dirname(fileURLToPath(import.meta.url));
const addonPath = join(nativeDir, 'build', 'Release', 'celeba_gan_torch.node');
const stampPath = join(nativeDir, 'build', 'libtorch.json');
const force = process.argv.includes('--force');
const say = (line) => process.stderr.write(`celeba-gan native: ${line}\n`);

/** A libtorch layout: include dirs, lib dir, and whether it is the system one (no rpath needed). */
function layoutAt(root, how) {
  const api = join(root, 'include', 'torch', 'csrc', 'api', 'include');
  const lib = join(root, 'lib');
  if (!existsSync(join(api, 'torch', 'torch.h')) || !existsSync(join(lib, 'libtorch.so'))) return null;
  return { how, includes: [join(root, 'include'), api], libDir: lib, system: false, root };
}

function findLibtorch() {
  const tried = [];
  if (process.env.LIBTORCH) {
    const root = resolve(process.env.LIBTORCH);
    const found = layoutAt(root, `LIBTORCH=${root}`);
    if (found) return { found, tried };
    tried.push(`LIBTORCH=${root} (no include/torch/csrc/api/include/torch/torch.h or lib/libtorch.so)`);
    return { found: null, tried }; // asked for by name: do not silently pick another one
  }
  if (process.env.LIBTORCH_USE_PYTORCH === '1') {
    const python = process.env.PYTHON || 'python3';
    try {
      const out = execFileSync(python, ['-c', 'import os, torch; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
        .trim()
        .split('\n');
      const found = layoutAt(out[0], `LIBTORCH_USE_PYTORCH=1 (${python}: ${out[0]})`);
      if (found) return { found: { ...found, cxx11Abi: out[1] }, tried };
      tried.push(`LIBTORCH_USE_PYTORCH=1 (${out[0]} has no include/ or lib/libtorch.so)`);
    } catch (err) {
      tried.push(
        `LIBTORCH_USE_PYTORCH=1 (${python} cannot import torch: ${String(err.stderr || err.message)
          .trim()
          .split('\n')
          .pop()})`,
      );
    }
    return { found: null, tried };
  }
  const api = '/usr/include/torch/csrc/api/include';
  const libDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
  const libDir = libDirs.find((d) => existsSync(join(d, 'libtorch.so')));
  if (existsSync(join(api, 'torch', 'torch.h')) && libDir) {
    return { found: { how: `system libtorch (${libDir})`, includes: ['/usr/include', api], libDir, system: true }, tried };
  }
  tried.push(`system libtorch (${api}/torch/torch.h + libtorch.so in ${libDirs.join(', ')})`);
  return { found: null, tried };
}

/** The C++ ABI a downloaded libtorch was built with, from its CMake config (0 for old pip builds). */
function cxx11Abi(found) {
  if (found.cxx11Abi !== undefined) return found.cxx11Abi;
  if (found.system) return undefined;
  const cfg = join(found.root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  if (!existsSync(cfg)) return undefined;
  return /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(readFileSync(cfg, 'utf8'))?.[1];
}

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    candidates.push(createRequire(join(nativeDir, '..', 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a project dependency: fall back to the copy that ships inside npm
  }
  const nodeDir = dirname(dirname(process.execPath));
  candidates.push(join(nodeDir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    const prefix = execFileSync('npm', ['prefix', '-g'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  } catch {
    // npm not on PATH
  }
  return candidates.find((c) => existsSync(c)) ?? null;
}

function newestSource() {
  const files = [join(nativeDir, 'binding.gyp'), fileURLToPath(import.meta.url)];
  for (const f of readdirSync(join(nativeDir, 'src'))) files.push(join(nativeDir, 'src', f));
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

const { found, tried } = findLibtorch();
if (!found) {
  say(
    `libtorch not found (tried ${tried.join('; ')}); the torch engine is unavailable, the tfjs engine still works. ` +
      'To get it: apt-get install libtorch-dev libopenblas0-pthread, or LIBTORCH=/path/to/libtorch (or LIBTORCH_USE_PYTORCH=1), then npm run build:native',
  );
  process.exit(force ? 1 : 0);
}

// One build at a time: `npm install` runs this script, and several may run in one checkout.
const lockDir = join(nativeDir, '.build-lock');
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
for (let waited = false; ;) {
  try {
    mkdirSync(lockDir);
    break;
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
    if (Date.now() - statSync(lockDir).mtimeMs > 15 * 60 * 1000) {
      rmSync(lockDir, { recursive: true, force: true }); // left behind by a killed build
      continue;
    }
    if (!waited) say('another build of the addon is running; waiting for it');
    waited = true;
    sleep(2000);
  }
}
process.on('exit', () => rmSync(lockDir, { recursive: true, force: true }));

/**
 * Data-parallel training (native/src/dist.cc) needs c10d's Gloo headers: torch's
 * ProcessGroupGloo.hpp and Gloo's own (Debian: libgloo-dev). Without them the addon is built
 * without it and says so when asked (`dist.available` false). CELEBA_GAN_DIST=0 leaves it out.
 */
function findDistributed(found, hasCuda) {
  const includeDirs = [...found.includes, '/usr/include', '/usr/local/include'];
  const has = (rel) => includeDirs.find((d) => existsSync(join(d, rel)));
  if (process.env.CELEBA_GAN_DIST === '0') return { on: false, why: 'CELEBA_GAN_DIST=0' };
  if (!has('torch/csrc/distributed/c10d/ProcessGroupGloo.hpp')) return { on: false, why: 'this libtorch has no c10d headers' };
  const glooDir = has('gloo/config.h');
  if (!glooDir) return { on: false, why: 'Gloo headers not found (Debian: apt-get install libgloo-dev)' };
  const defines = ['CELEBA_GAN_DIST', 'USE_C10D_GLOO'];
  const includes = found.includes.includes(glooDir) ? [] : [glooDir];
  // Debian splits Gloo into libgloo.so; pytorch.org and pip builds link it into libtorch_cpu.
  const libs = existsSync(join(found.libDir, 'libgloo.so')) ? ['-lgloo'] : [];
  let nccl = 'no NCCL (CPU libtorch)';
  if (hasCuda) {
    const ncclDir = [...includeDirs, '/usr/local/cuda/include'].find((d) => existsSync(join(d, 'nccl.h')));
    if (has('torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp') && ncclDir) {
      defines.push('USE_C10D_NCCL');
      // ProcessGroupNCCL.hpp includes nccl.h and the CUDA runtime's headers.
      for (const d of [ncclDir, '/usr/local/cuda/include']) if (!found.includes.includes(d) && existsSync(d)) includes.push(d);
      nccl = 'NCCL';
    } else {
      nccl = 'no NCCL (nccl.h or ProcessGroupNCCL.hpp not found)';
    }
  }
  return { on: true, why: `Gloo${defines.includes('USE_C10D_NCCL') ? ' + NCCL' : ''}, ${nccl}`, defines, includes, libs };
}

const distributed = findDistributed(found, existsSync(join(found.libDir, 'libtorch_cuda.so')));
const stamp = JSON.stringify({ how: found.how, includes: found.includes, libDir: found.libDir, distributed });
if (!force && existsSync(addonPath) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp && statSync(addonPath).mtimeMs >= newestSource()) {
  say(`addon up to date (${found.how}); npm run build:native rebuilds it`);
  process.exit(0);
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) {
  say('node-gyp not found (npm ships it; or npm install -g node-gyp); the torch engine is unavailable, the tfjs engine still works');
  process.exit(force ? 1 : 0);
}

const hasCuda = existsSync(join(found.libDir, 'libtorch_cuda.so'));
const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
// A CUDA libtorch registers its CUDA kernels only when libtorch_cuda is loaded: keep it linked
// even though no symbol of it is referenced directly.
if (hasCuda) libs.push('-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed');
const ldflags = [`-L${found.libDir}`];
if (!found.system) ldflags.push(`-Wl,-rpath,${found.libDir}`);
const defines = [];
const abi = cxx11Abi(found);
if (abi !== undefined) defines.push(`_GLIBCXX_USE_CXX11_ABI=${abi}`);
const includes = [...found.includes];
if (distributed.on) {
  defines.push(...distributed.defines);
  includes.push(...distributed.includes);
  libs.push(...distributed.libs);
}

// Build against this Node's own headers when it ships them (no download: installs may be offline).
const gypFlags = ['--release', '--loglevel=warn', `--jobs=${Math.max(1, Math.min(4, availableParallelism()))}`];
const nodePrefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(nodePrefix, 'include', 'node', 'node_api.h'))) gypFlags.push(`--nodedir=${nodePrefix}`);

// Every source includes <torch/torch.h>, and parsing it is about 14 s of each file's 14-26 s of
// compiling: it is compiled once into a precompiled header that every source loads first
// (-include). GCC uses the .gch only when it was made with the same flags, and otherwise reads
// the header itself (-Winvalid-pch says so): the addon is the same either way.
const pchDir = join(nativeDir, 'build', 'pch');
const pchHeader = join(pchDir, 'torch-pch.h');
const gypEnv = {
  ...process.env,
  CELEBA_GAN_TORCH_INCLUDES: includes.join(' '),
  CELEBA_GAN_TORCH_LIBS: libs.join(' '),
  CELEBA_GAN_TORCH_LDFLAGS: ldflags.join(' '),
  CELEBA_GAN_TORCH_DEFINES: defines.join(' '),
  CELEBA_GAN_TORCH_PCH: process.env.CELEBA_GAN_PCH === '0' ? '' : `-include ${pchHeader} -Winvalid-pch`,
};
const nodeGypRun = (commands) =>
  spawnSync(process.execPath, [nodeGyp, ...commands, ...gypFlags], { cwd: nativeDir, stdio: ['ignore', 'inherit', 'inherit'], env: gypEnv });

say(
  `building the libtorch addon against ${found.how}${hasCuda ? ' (CUDA)' : ''} (about a minute); ` +
    `distributed training: ${distributed.on ? distributed.why : `not built (${distributed.why})`}`,
);
const started = Date.now();
let result = nodeGypRun(['clean', 'configure']);
if (result.status === 0) {
  if (gypEnv.CELEBA_GAN_TORCH_PCH) buildPrecompiledHeader();
  result = nodeGypRun(['build']);
}
if (result.status !== 0) {
  say(`node-gyp failed (exit ${result.status}) building against ${found.how}; the tfjs engine still works. Fix the error above, then npm run build:native`);
  process.exit(force ? 1 : 0);
}
// The precompiled header is about 570 MB and only this build reads it; its one-line header stays,
// so that a later make in build/ still compiles (reading <torch/torch.h> itself).
rmSync(`${pchHeader}.gch`, { force: true });
mkdirSync(dirname(stampPath), { recursive: true });
writeFileSync(stampPath, stamp);
say(`built ${addonPath} in ${((Date.now() - started) / 1000).toFixed(0)} s`);

/**
 * Compiles <torch/torch.h> into build/pch/torch-pch.h.gch with the C++ flags node-gyp's configure
 * wrote for the sources (build/celeba_gan_torch.target.mk), less the -include of the header itself.
 * A failure costs only speed: the sources then read the header as before, and this says so.
 */
function buildPrecompiledHeader() {
  const buildDir = join(nativeDir, 'build');
  const makefile = readFileSync(join(buildDir, 'celeba_gan_torch.target.mk'), 'utf8');
  // A make variable written one value a line: `NAME := \` then `\t'value' \` lines.
  const lines = makefile.split('\n');
  const variable = (name) => {
    const values = [];
    let i = lines.indexOf(`${name} := \\`);
    if (i < 0) return values;
    for (let more = true; more && ++i < lines.length;) {
      more = lines[i].endsWith('\\');
      const value = lines[i]
        .replace(/\\$/, '')
        .trim()
        .replace(/^'(.*)'$/, '$1');
      if (value !== '') values.push(value.replaceAll('$(srcdir)', nativeDir));
    }
    return values;
  };
  const flags = [...variable('DEFS_Release'), ...variable('INCS_Release'), ...variable('CFLAGS_Release'), ...variable('CFLAGS_CC_Release')];
  const own = new Set(gypEnv.CELEBA_GAN_TORCH_PCH.split(' '));
  const cxxFlags = flags.filter((flag) => !own.has(flag));
  mkdirSync(pchDir, { recursive: true });
  writeFileSync(pchHeader, '// Precompiled by native/build.mjs; every source of the addon loads it first (-include).\n#include <torch/torch.h>\n');
  const cxx = process.env.CXX || 'g++';
  const t = Date.now();
  const pch = spawnSync(cxx, [...cxxFlags, '-x', 'c++-header', pchHeader, '-o', `${pchHeader}.gch`], {
    cwd: buildDir,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (pch.status === 0) say(`precompiled <torch/torch.h> in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  else say(`could not precompile <torch/torch.h> (${cxx} exit ${pch.status ?? pch.error?.message}); each source reads it instead (slower, the same addon)`);
}
