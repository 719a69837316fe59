import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

/**
 * Make one node:fs function fail with an OS error code (ENOSPC, EROFS, EACCES, ...) when
 * `when(args)` holds, as the kernel would, for conditions a test cannot create for real here
 * (tests run as root, so chmod does not deny; no tiny tmpfs). Named ESM imports of node:fs see
 * the change through syncBuiltinESMExports. Returns the function that restores the original.
 */
type FsName = 'openSync' | 'writeSync' | 'mkdirSync' | 'renameSync' | 'appendFileSync' | 'fsyncSync' | 'readdirSync' | 'rmSync';

export function injectFsError(name: FsName, code: string, when: (args: unknown[]) => boolean = () => true): () => void {
  const table = fs as unknown as Record<FsName, (...args: unknown[]) => unknown>;
  const original = table[name];
  let calls = 0;
  table[name] = (...args: unknown[]) => {
    if (when(args)) {
      calls++;
      const path = typeof args[0] === 'string' ? args[0] : undefined;
      throw Object.assign(new Error(`${code}: injected failure, ${name}${path ? ` '${path}'` : ''}`), { code, syscall: name, ...(path ? { path } : {}) });
    }
    return original(...args);
  };
  syncBuiltinESMExports();
  const restore = () => {
    table[name] = original;
    syncBuiltinESMExports();
  };
  return Object.assign(restore, {
    get calls() {
      return calls;
    },
  });
}
