import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The one walk up the folder tree. celeba-gan runs from src/ (tsx) and from dist/src/ (tsc), and
 * finds its own files (package.json, native/, bench/) relative to its package root; eval finds
 * the model files shipped in other npm packages the same way.
 */

/** The nearest folder at or above `start` for which `accept` holds, or null. */
export function findUp(start: string, accept: (dir: string) => boolean): string | null {
  let dir = start;
  for (;;) {
    if (accept(dir)) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** The package.json in `dir` (name and version), or null when there is none or it is not JSON. */
export function readPackageJson(dir: string): { name?: string; version?: string } | null {
  const path = join(dir, 'package.json');
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { name?: string; version?: string };
  } catch {
    return null;
  }
}

/** The root folder of the npm package `name` that holds `start` (a file or folder inside it), or null. */
export function packageRootOf(name: string, start: string): string | null {
  return findUp(start, (dir) => readPackageJson(dir)?.name === name);
}

let root: string | null | undefined;

/** celeba-gan's own package root (the folder holding its package.json), or null when not found. */
export function celebaGanRoot(): string | null {
  if (root === undefined) root = packageRootOf('celeba-gan', dirname(fileURLToPath(import.meta.url)));
  return root;
}
