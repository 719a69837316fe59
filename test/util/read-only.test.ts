import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CelebaGanError } from '../../src/errors.js';
import { ensureFolder } from '../../src/util/atomic.js';
import { readOnlyBind } from '../support/mounts.js';
import { tempDir } from '../inference/fixtures.js';

const dir = tempDir('cg-ro-');
const ro = join(dir, 'ro');
const mount = readOnlyBind(join(dir, 'source'), ro);
after(() => {
  mount.unmount();
  rmSync(dir, { recursive: true, force: true });
});

test('ERROR PATH - a new folder under a read-only mount is E_READ_ONLY naming that folder, not ENOENT', { skip: mount.skip ?? false }, () => {
  for (const target of [join(ro, 'gen'), join(ro, 'a', 'b', 'c')]) {
    assert.throws(
      () => ensureFolder(target, 'create the output folder'),
      (err: unknown) => {
        assert.ok(err instanceof CelebaGanError, String(err));
        assert.equal(err.code, 'E_READ_ONLY');
        assert.equal(err.kind, 'usage');
        assert.equal(err.message, `cannot create the output folder ${target}: ${target} is on a read-only file system (EROFS)`);
        return true;
      },
    );
    assert.equal(existsSync(target), false);
  }
});

test('a missing folder on a writable disk is still created (the ancestor test only explains failures)', () => {
  const target = join(dir, 'rw', 'x', 'y');
  assert.equal(ensureFolder(target), join(dir, 'rw'));
  assert.ok(existsSync(target));
});
