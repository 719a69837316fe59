import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CelebaGanError, UsageError, assertInteger } from '../errors.js';

/**
 * The only importer of onnxruntime-node. It loads the package lazily (so `celeba-gan --help`
 * never touches the native binary), holds the one table mapping user-facing provider names to
 * onnxruntime execution providers, and knows, per platform, whether a provider can work here
 * and how to get it when it cannot. Sessions themselves are created in src/inference/session.ts.
 */

export type Ort = typeof import('onnxruntime-node');

/** What users type after --provider. */
export const PROVIDER_NAMES = ['auto', 'cuda', 'dml', 'cpu'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];
/** A provider that really runs a session (`auto` resolves to one of these). */
export type ConcreteProvider = Exclude<ProviderName, 'auto'>;

export interface ProviderEntry {
  /** onnxruntime's execution provider name. */
  readonly executionProvider: string;
  /** Whether the provider takes a device (GPU) index. */
  readonly takesDevice: boolean;
  readonly describe: string;
}

/** The one table of providers; `auto` tries them in this order. */
export const PROVIDERS: Readonly<Record<ConcreteProvider, ProviderEntry>> = Object.freeze({
  cuda: Object.freeze({ executionProvider: 'cuda', takesDevice: true, describe: 'NVIDIA GPU through CUDA 12' }),
  dml: Object.freeze({ executionProvider: 'dml', takesDevice: true, describe: 'any DirectX 12 GPU on Windows (DirectML)' }),
  cpu: Object.freeze({ executionProvider: 'cpu', takesDevice: false, describe: 'the CPU (always bundled)' }),
});
export const AUTO_ORDER: readonly ConcreteProvider[] = Object.freeze(['cuda', 'dml', 'cpu'] as const);

const CUDA_INSTALL_HINT =
  'To use CUDA: add the CUDA 12 provider to onnxruntime-node (its install script downloads it from NuGet): ' +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` where it is installed, or `ONNXRUNTIME_NODE_INSTALL=cuda12 npm install onnxruntime-node`. ' +
  "npm 11 runs that script only for packages allowed in package.json's allowScripts (celeba-gan allows onnxruntime-node; " +
  'elsewhere run `npm install-scripts approve onnxruntime-node` first). It also needs an NVIDIA GPU with a CUDA 12 runtime and cuDNN 9 ' +
  'on the library path. Or use --provider cpu.';
const DML_HINT = 'DirectML runs only on Windows (x64 or arm64). Use --provider cuda on an NVIDIA GPU or --provider cpu.';

export function parseProvider(value: unknown): ProviderName {
  if (typeof value !== 'string' || !(PROVIDER_NAMES as readonly string[]).includes(value)) {
    throw new UsageError('E_BAD_PROVIDER', `Unsupported provider ${JSON.stringify(String(value))}. Should be one of: ${PROVIDER_NAMES.join(', ')}`, {
      hint: 'Use --provider auto to take the best one available here.',
    });
  }
  return value as ProviderName;
}

/** Highest GPU index --device accepts for cuda / dml. */
const MAX_PROVIDER_DEVICE = 255;

/**
 * The one validator of an inference `--device` (the GPU index given to cuda / dml; the cpu
 * provider ignores it). Training devices are parsed in src/engines/device.ts.
 */
export function parseProviderDevice(value: unknown): number {
  return assertInteger('device', value, 0, MAX_PROVIDER_DEVICE);
}

let loaded: Ort | undefined;

/** Load onnxruntime-node once; a failure says what was tried and what to do. */
export async function loadOnnxruntime(): Promise<Ort> {
  if (loaded) return loaded;
  try {
    loaded = await import('onnxruntime-node');
    return loaded;
  } catch (err) {
    throw new CelebaGanError('E_ONNXRUNTIME_LOAD', `could not load onnxruntime-node on ${process.platform}-${process.arch}: ${(err as Error).message}`, {
      cause: err,
      hint:
        'Possible solutions: run `npm install` in the project (it installs onnxruntime-node with its CPU provider); ' +
        `check that onnxruntime-node ships binaries for ${process.platform}-${process.arch} (linux/win32/darwin, x64/arm64); ` +
        'Node >= 20 is required.',
    });
  }
}

/** Folder holding onnxruntime-node's native binaries for this platform. */
function onnxruntimeBinDir(): string | null {
  try {
    const main = createRequire(import.meta.url).resolve('onnxruntime-node');
    return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

export interface ProviderCheck {
  ok: boolean;
  /** Why it cannot be used here (when !ok). */
  reason?: string;
  /** How to get it. */
  hint?: string;
}

/**
 * What can be known about a provider before creating a session: the platform, and whether
 * its shared libraries were installed. A provider that passes may still fail at session
 * creation (no GPU, no CUDA runtime); session.ts reports that failure too.
 */
export function checkProvider(provider: ConcreteProvider, env: { platform?: string; arch?: string; binDir?: string | null } = {}): ProviderCheck {
  const platform = env.platform ?? process.platform;
  const arch = env.arch ?? process.arch;
  switch (provider) {
    case 'cpu':
      return { ok: true };
    case 'dml':
      if (platform !== 'win32') return { ok: false, reason: `DirectML needs Windows; this is ${platform}-${arch}`, hint: DML_HINT };
      return { ok: true };
    case 'cuda': {
      if (!((platform === 'linux' || platform === 'win32') && arch === 'x64')) {
        return {
          ok: false,
          reason: `onnxruntime-node has no CUDA provider for ${platform}-${arch} (only linux-x64 and win32-x64)`,
          hint: 'Use --provider cpu.',
        };
      }
      const binDir = env.binDir === undefined ? onnxruntimeBinDir() : env.binDir;
      const lib = platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
      if (!binDir || !existsSync(join(binDir, lib))) {
        return {
          ok: false,
          reason: `the CUDA provider is not installed (${lib} is missing from ${binDir ?? 'onnxruntime-node'}; the package was installed without ONNXRUNTIME_NODE_INSTALL=cuda12)`,
          hint: CUDA_INSTALL_HINT,
        };
      }
      return { ok: true };
    }
  }
}

/** The `executionProviders` entry for onnxruntime's session options. */
export function executionProviderConfig(provider: ConcreteProvider, device: number): string | { name: string; deviceId: number } {
  const entry = PROVIDERS[provider];
  return entry.takesDevice ? { name: entry.executionProvider, deviceId: device } : entry.executionProvider;
}

/** Hint for a provider that passed `checkProvider` but failed to start a session. */
export function providerStartHint(provider: ConcreteProvider): string {
  if (provider === 'cuda')
    return `Check that an NVIDIA GPU is visible (nvidia-smi) and that CUDA 12 and cuDNN 9 libraries are on the library path. ${CUDA_INSTALL_HINT}`;
  if (provider === 'dml') return 'Check that a DirectX 12 capable GPU and driver are present, or use --provider cpu.';
  return 'The model may use an operator this onnxruntime build lacks; re-export it with `celeba-gan export --onnx`.';
}
