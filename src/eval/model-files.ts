import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CelebaGanError } from '../errors.js';
import { packageRootOf, readPackageJson } from '../util/package-root.js';

/**
 * The pretrained extractors ship as files inside npm packages (no download at run time):
 *   @vladmandic/human 3.3.6     models/faceres.json + faceres.bin   (tfjs graph model)
 *   @vladmandic/face-api 1.7.15 model/tiny_face_detector_model-weights_manifest.json + .bin
 * This module finds those files and reads them into the shapes tfjs loaders take. Only the files
 * are used; the packages' own code (which wants tfjs-node or a browser) is never imported.
 */

export interface ExtractorPackage {
  name: string;
  /** The version celeba-gan was built and measured with; any other is reported but refused. */
  version: string;
}

export const HUMAN_PACKAGE: ExtractorPackage = Object.freeze({ name: '@vladmandic/human', version: '3.3.6' });
export const FACE_API_PACKAGE: ExtractorPackage = Object.freeze({ name: '@vladmandic/face-api', version: '1.7.15' });

const require = createRequire(import.meta.url);

function missing(pkg: ExtractorPackage, why: string): CelebaGanError {
  return new CelebaGanError('E_EXTRACTOR_MISSING', `the feature extractor package ${pkg.name} ${why}`, {
    hint: `Install it: \`npm install ${pkg.name}@${pkg.version}\` (it ships the model files; nothing is downloaded at run time), or choose another extractor (see \`celeba-gan eval --help\`).`,
  });
}

/** The package's root folder and installed version. */
export function findPackage(pkg: ExtractorPackage): { dir: string; version: string } {
  let entry: string;
  try {
    // Some packages' `exports` hide package.json, so resolve the main entry and walk up.
    entry = require.resolve(pkg.name);
  } catch {
    throw missing(pkg, 'is not installed');
  }
  const dir = packageRootOf(pkg.name, dirname(entry));
  const json = dir === null ? null : readPackageJson(dir);
  if (dir !== null && json) {
    if (json.version !== pkg.version) {
      throw new CelebaGanError(
        'E_EXTRACTOR_VERSION',
        `${pkg.name} ${json.version} is installed; celeba-gan's feature numbers are defined with ${pkg.version}`,
        {
          hint: `Install the expected version: \`npm install ${pkg.name}@${pkg.version}\` (features from other model versions are not comparable).`,
        },
      );
    }
    return { dir, version: json.version };
  }
  throw missing(pkg, `is installed but its package.json was not found above ${entry}`);
}

/** Read one file shipped in `pkg`; a missing file is reported with the install command. */
function readPackageFile(pkg: ExtractorPackage, relPath: string): Buffer {
  const { dir } = findPackage(pkg);
  const path = join(dir, relPath);
  try {
    return readFileSync(path);
  } catch {
    throw missing(pkg, `lacks ${relPath} (expected at ${path}; a partial install?)`);
  }
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string' | 'complex64';
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}
export interface WeightsGroup {
  paths: string[];
  weights: WeightSpec[];
}

/** Concatenate a manifest's weight files (relative to `baseDir` inside the package) into one buffer. */
export function readWeights(pkg: ExtractorPackage, baseDir: string, manifest: WeightsGroup[]): { specs: WeightSpec[]; data: ArrayBuffer } {
  const parts = manifest.flatMap((g) => g.paths.map((p) => readPackageFile(pkg, join(baseDir, p))));
  const total = parts.reduce((a, b) => a + b.byteLength, 0);
  const data = new Uint8Array(total);
  let off = 0;
  for (const part of parts) {
    data.set(part, off);
    off += part.byteLength;
  }
  return { specs: manifest.flatMap((g) => g.weights), data: data.buffer };
}

export function readJson<T>(pkg: ExtractorPackage, relPath: string): T {
  const text = readPackageFile(pkg, relPath).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new CelebaGanError('E_EXTRACTOR_CORRUPT', `${pkg.name}/${relPath} is not valid JSON: ${(err as Error).message}`, {
      hint: `Reinstall it: \`npm install ${pkg.name}@${pkg.version}\`.`,
    });
  }
}
