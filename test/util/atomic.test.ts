import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CelebaGanError, escapeControl, fileError } from '../../src/errors.js';
import {
  findLeftovers,
  missingFolders,
  recoverLeftovers,
  removeEmptyFolders,
  tempPathFor,
  tempTargetPath,
  writeDirAtomicSync,
  writeFileAtomicSync,
} from '../../src/util/atomic.js';
import { injectFsError } from '../support/inject.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'cg-atomic-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The pid of a process that has exited (its leftovers are stale). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid;
}

function expectCode(code: string, path: string, kind?: 'usage' | 'runtime') {
  return (err: unknown) => {
    assert.ok(err instanceof CelebaGanError, String(err));
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.includes(path), `${err.message} names ${path}`);
    assert.ok(!/\.tmp\b/.test(err.message), `${err.message} names no temporary file`);
    if (kind) assert.equal(err.kind, kind);
    assert.ok(err.hint && err.hint.length > 10, 'has a hint');
    return true;
  };
}

test('writeFileAtomicSync: writes all parts, replaces, leaves no temporary file', () => {
  withDir((dir) => {
    const path = join(dir, 'a.bin');
    writeFileAtomicSync(path, [Buffer.from('ab'), Buffer.from('cd')]);
    assert.equal(readFileSync(path, 'utf8'), 'abcd');
    writeFileAtomicSync(path, 'second');
    assert.equal(readFileSync(path, 'utf8'), 'second');
    assert.deepEqual(readdirSync(dir), ['a.bin']);
  });
});

test('ERROR PATH - ENOSPC while writing: E_NO_SPACE naming the target (not the temp file); the old file stays; no temp left', () => {
  withDir((dir) => {
    const path = join(dir, 'model.onnx');
    writeFileSync(path, 'old');
    const restore = injectFsError('writeSync', 'ENOSPC');
    try {
      assert.throws(() => writeFileAtomicSync(path, 'new bytes'), expectCode('E_NO_SPACE', path, 'runtime'));
    } finally {
      restore();
    }
    assert.equal(readFileSync(path, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['model.onnx']);
  });
});

test('ERROR PATH - EROFS and EACCES when creating the file: E_READ_ONLY / E_PERMISSION naming the target', () => {
  withDir((dir) => {
    const path = join(dir, 'x.cgds');
    for (const [errno, code] of [
      ['EROFS', 'E_READ_ONLY'],
      ['EACCES', 'E_PERMISSION'],
      ['EMFILE', 'E_TOO_MANY_FILES'],
    ] as const) {
      const restore = injectFsError('openSync', errno, (args) => String(args[0]).includes('.x.cgds.'));
      try {
        assert.throws(() => writeFileAtomicSync(path, 'x'), expectCode(code, path));
      } finally {
        restore();
      }
    }
  });
});

test('ERROR PATH - real ENOTDIR and EISDIR: E_NOT_FOLDER / E_IS_FOLDER naming the path', () => {
  withDir((dir) => {
    const file = join(dir, 'file.txt');
    writeFileSync(file, 'x');
    assert.throws(() => writeFileAtomicSync(join(file, 'child.json'), '{}'), expectCode('E_NOT_FOLDER', join(file, 'child.json'), 'usage'));
    const folder = join(dir, 'folder');
    mkdirSync(join(folder, 'inside'), { recursive: true });
    assert.throws(() => writeFileAtomicSync(folder, 'x'), expectCode('E_IS_FOLDER', folder, 'usage'));
    assert.deepEqual(readdirSync(dir).sort(), ['file.txt', 'folder']);
  });
});

test('writeFileAtomicSync replace: false never replaces a file: E_OUTPUT_EXISTS, the old file and no temp left', () => {
  withDir((dir) => {
    const path = join(dir, 'face-000001.png');
    writeFileAtomicSync(path, 'first', { replace: false });
    assert.equal(readFileSync(path, 'utf8'), 'first');
    assert.throws(
      () => writeFileAtomicSync(path, 'second', { replace: false, hints: { E_OUTPUT_EXISTS: 'Pass --force.' } }),
      (err: CelebaGanError) => {
        assert.equal(err.name, 'UsageError');
        assert.equal(err.code, 'E_OUTPUT_EXISTS');
        assert.equal(err.message, `${path} already exists; not overwriting it`);
        assert.equal(err.hint, 'Pass --force.');
        return true;
      },
    );
    assert.equal(readFileSync(path, 'utf8'), 'first');
    const noLinks = (): void => {
      throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
    };
    assert.throws(() => writeFileAtomicSync(join(dir, 'b'), 'x', { replace: false, io: { link: noLinks } }), { code: 'E_OUTPUT_NO_LINKS' });
    assert.deepEqual(readdirSync(dir), ['face-000001.png']);
  });
});

test('writeFileAtomicSync sync: false skips every fsync (an fsync failing with ENOSPC is not reached); sync by default', () => {
  withDir((dir) => {
    const path = join(dir, 'a.png');
    const restore = injectFsError('fsyncSync', 'ENOSPC');
    try {
      assert.throws(() => writeFileAtomicSync(path, 'x'), expectCode('E_NO_SPACE', path, 'runtime'));
      assert.deepEqual(readdirSync(dir), [], 'no temp left');
      writeFileAtomicSync(path, 'x', { sync: false }); // the same failing fsync, not called
    } finally {
      restore();
    }
    assert.equal(readFileSync(path, 'utf8'), 'x');
  });
});

test('fileError maps each OS code once and passes other errors through', () => {
  const cases = {
    ENOSPC: 'E_NO_SPACE',
    EDQUOT: 'E_NO_SPACE',
    EROFS: 'E_READ_ONLY',
    EACCES: 'E_PERMISSION',
    EPERM: 'E_PERMISSION',
    EISDIR: 'E_IS_FOLDER',
    ENOTDIR: 'E_NOT_FOLDER',
    EMFILE: 'E_TOO_MANY_FILES',
    ENFILE: 'E_TOO_MANY_FILES',
  };
  for (const [errno, code] of Object.entries(cases)) {
    const err = fileError(Object.assign(new Error(errno), { code: errno }), '/data/x', 'write') as CelebaGanError;
    assert.equal(err.code, code, errno);
    assert.match(err.message, new RegExp(`^cannot write /data/x: .*\\(${errno}\\)$`));
  }
  const other = Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  assert.equal(fileError(other, '/x'), other);
  const plain = new TypeError('x');
  assert.equal(fileError(plain, '/x'), plain);
  // Always an Error to throw: a thrown string comes back wrapped.
  const wrapped = fileError('disk on fire', '/x');
  assert.ok(wrapped instanceof Error);
  assert.equal(wrapped.message, 'disk on fire');
});

test('writeDirAtomicSync: a new folder, then a safe replacement; every file complete', () => {
  withDir((dir) => {
    const ck = join(dir, 'step-000000002');
    writeDirAtomicSync(ck, [
      ['a', 'one'],
      ['b', [Buffer.from('t'), Buffer.from('wo')]],
    ]);
    assert.deepEqual(readdirSync(ck).sort(), ['a', 'b']);
    writeDirAtomicSync(ck, [
      ['a', 'ONE'],
      ['c', 'three'],
    ]);
    assert.deepEqual(readdirSync(ck).sort(), ['a', 'c']);
    assert.equal(readFileSync(join(ck, 'a'), 'utf8'), 'ONE');
    assert.deepEqual(readdirSync(dir), ['step-000000002']);
  });
});

test('ERROR PATH - writeDirAtomicSync out of space mid-folder: E_NO_SPACE naming the folder, the old folder intact, no temp left', () => {
  withDir((dir) => {
    const ck = join(dir, 'step-000000004');
    writeDirAtomicSync(ck, [
      ['weights', 'old weights'],
      ['manifest', 'old'],
    ]);
    const restore = injectFsError('openSync', 'ENOSPC', (args) => String(args[0]).endsWith('manifest'));
    try {
      assert.throws(
        () =>
          writeDirAtomicSync(ck, [
            ['weights', 'new weights'],
            ['manifest', 'new'],
          ]),
        expectCode('E_NO_SPACE', ck),
      );
    } finally {
      restore();
    }
    assert.equal(readFileSync(join(ck, 'weights'), 'utf8'), 'old weights');
    assert.deepEqual(readdirSync(dir), ['step-000000004']);
  });
});

test('replacing a folder is safe at every point: recoverLeftovers restores or removes what a kill left', () => {
  withDir((dir) => {
    const target = join(dir, 'step-000000006');
    const pid = deadPid();
    const tmp = join(dir, `.step-000000006.${pid}.abc.tmp`);
    // Killed after the old folder was renamed aside, before the new one was renamed in.
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'w'), 'new');
    mkdirSync(`${tmp}.old`);
    writeFileSync(join(`${tmp}.old`, 'w'), 'old');
    assert.deepEqual(
      findLeftovers(dir)
        .map((l) => [l.target, l.replaced, l.pid])
        .sort(),
      [
        [target, false, pid],
        [target, true, pid],
      ],
    );
    const done = recoverLeftovers(dir);
    assert.deepEqual(done.map((d) => d.action).sort(), ['removed', 'restored']);
    assert.deepEqual(readdirSync(dir), ['step-000000006']);
    assert.equal(readFileSync(join(target, 'w'), 'utf8'), 'old');
    // Killed after the new one was renamed in, before the old one was deleted.
    mkdirSync(`${tmp}.old`);
    writeFileSync(join(`${tmp}.old`, 'w'), 'older');
    assert.deepEqual(
      recoverLeftovers(dir).map((d) => d.action),
      ['removed'],
    );
    assert.deepEqual(readdirSync(dir), ['step-000000006']);
    assert.equal(readFileSync(join(target, 'w'), 'utf8'), 'old');
    // A live writer's temporary file is not touched.
    const mine = tempPathFor(join(dir, 'x.cgds'));
    writeFileSync(mine, 'in progress');
    assert.deepEqual(recoverLeftovers(dir), []);
    assert.ok(existsSync(mine));
  });
});

test('temporary names map back to their target; missing folders are found and removed only when empty', () => {
  assert.equal(tempTargetPath('/d/.faces-28.cgds.123.lz4x.tmp'), '/d/faces-28.cgds');
  assert.equal(tempTargetPath('/d/plain.cgds'), '/d/plain.cgds');
  withDir((dir) => {
    const deep = join(dir, 'a', 'b', 'c');
    const created = missingFolders(deep);
    assert.deepEqual(created, [deep, join(dir, 'a', 'b'), join(dir, 'a')]);
    mkdirSync(deep, { recursive: true });
    removeEmptyFolders(created);
    assert.deepEqual(readdirSync(dir), []);
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(dir, 'a', 'keep.txt'), 'x');
    removeEmptyFolders(created);
    assert.deepEqual(readdirSync(join(dir, 'a')), ['keep.txt']);
  });
});

test('escapeControl shows escape sequences instead of sending them to the terminal', () => {
  assert.equal(escapeControl('skipped \x1b[31mred\x1b[0m.jpg\r\n'), 'skipped \\x1b[31mred\\x1b[0m.jpg\\x0d\n');
  assert.equal(escapeControl('tab\tand \u009b csi'), 'tab\tand \\x9b csi');
});
