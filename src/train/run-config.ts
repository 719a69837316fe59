import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CelebaGanError, fileError } from '../errors.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { ensureFolder, writeFileAtomicSync } from '../util/atomic.js';
import { packageVersion } from '../version.js';

/**
 * `run.json`: what a run is (preset, width, full spec, seed, data set). Written once when the run
 * starts; every resume and export reads it and checks itself against it.
 *
 *   <run>/run.json          this file
 *   <run>/checkpoints/      checkpoint.ts
 *   <run>/metrics.jsonl     metrics-log.ts
 *   <run>/loss.svg          loss-plot.ts
 *   <run>/samples/          samples.ts
 */

export const RUN_FORMAT_VERSION = 1;
const RUN_FILE = 'run.json';

export interface DataRef {
  /** As given when the run was created (relative paths stay relative). */
  path: string;
  /** Hex SHA-256 of the pixel bytes (from the dataset header). */
  checksum: string;
  count: number;
  height: number;
  width: number;
}

export interface RunConfig {
  format: 'celeba-gan-run';
  formatVersion: number;
  packageVersion: string;
  preset: string;
  width: number;
  spec: ArchitectureSpec;
  seed: number;
  batchSize: number;
  data: DataRef;
  /** Engine that created the run (`tfjs` | `torch`); a resume may use another. */
  engine: string;
  /** ISO time. */
  created: string;
  /** Seed of the fixed noise behind `samples/step-*.png` (z for image i is derived from it). */
  sampleSeed: number;
  sampleCount: number;
  /** EMA decay the run was created with (`--ema`; 0 = none). Absent in runs made before the EMA generator. */
  ema?: number;
}

/** What a new run.json says about the run; the format fields and the preset/width headline come from the spec. */
export type NewRun = Omit<RunConfig, 'format' | 'formatVersion' | 'packageVersion' | 'preset' | 'width'>;

/** run.json for a run starting now (open-run.ts; test fixtures make theirs here too). */
export function newRunConfig(run: NewRun): RunConfig {
  return {
    format: 'celeba-gan-run',
    formatVersion: RUN_FORMAT_VERSION,
    packageVersion: packageVersion(),
    preset: run.spec.preset,
    width: run.spec.width,
    ...run,
  };
}

function runConfigPath(runDir: string): string {
  return join(runDir, RUN_FILE);
}

export function writeRunConfig(runDir: string, config: RunConfig): void {
  ensureFolder(runDir, 'create the run folder');
  writeFileAtomicSync(runConfigPath(runDir), `${JSON.stringify(config, null, 2)}\n`);
}

/** Read `run.json`; null when the folder holds no run. Its fields are checked: a bad one is blamed on run.json, not on a flag. */
export function readRunConfig(runDir: string): RunConfig | null {
  const path = runConfigPath(runDir);
  if (!existsSync(path)) return null;
  const corrupt = (why: string, cause?: unknown): CelebaGanError =>
    new CelebaGanError('E_RUN_CORRUPT', `${path} ${why}`, {
      hint: `Restore ${path} (it is written once when the run starts), or start a new run with another --out.`,
      cause,
    });
  let config: RunConfig;
  try {
    config = JSON.parse(readFileSync(path, 'utf8')) as RunConfig;
  } catch (err) {
    const mapped = fileError(err, path, 'read');
    if (mapped !== err) throw mapped;
    throw corrupt(`cannot be read as JSON (${(err as Error).message})`, err);
  }
  if (config?.format !== 'celeba-gan-run') throw corrupt('is not a celeba-gan run file');
  if (config.formatVersion !== RUN_FORMAT_VERSION) {
    throw new CelebaGanError(
      'E_CHECKPOINT_VERSION',
      `${path} has run format version ${String(config.formatVersion)}; this celeba-gan reads version ${RUN_FORMAT_VERSION}`,
      {
        hint: `Use celeba-gan ${config.packageVersion} for this run, or start a new run with another --out.`,
      },
    );
  }
  const field = (name: string, value: unknown, ok: boolean, expected: string): void => {
    if (!ok) throw corrupt(`has ${name} ${JSON.stringify(value)}; expected ${expected}`);
  };
  field('"preset"', config.preset, typeof config.preset === 'string', 'a preset name');
  field('"width"', config.width, typeof config.width === 'number' && Number.isFinite(config.width) && config.width > 0, 'a number > 0');
  field('"seed"', config.seed, Number.isInteger(config.seed) && config.seed >= 0, 'an integer >= 0');
  field('"batchSize"', config.batchSize, Number.isInteger(config.batchSize) && config.batchSize >= 2, 'an integer >= 2');
  field('"data"', config.data, typeof config.data?.path === 'string' && typeof config.data?.checksum === 'string', 'an object with "path" and "checksum"');
  field('"spec"', config.spec === undefined ? undefined : '{...}', typeof config.spec === 'object' && config.spec !== null, 'the architecture spec');
  return config;
}
