import { celebaGanRoot, readPackageJson } from './util/package-root.js';

let cached: string | undefined;

/** The package version from package.json (works from src/ via tsx and from dist/src/). */
export function packageVersion(): string {
  if (cached) return cached;
  const root = celebaGanRoot();
  return (cached = (root && readPackageJson(root)?.version) || '0.0.0');
}
