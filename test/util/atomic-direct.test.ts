import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { openAtomicSync, tempPathFor, writeFileAtomic, writeFileAtomicSync } from '../../src/util/atomic.js';

/** src/util/atomic.ts directly: the new content or the old one, never a mix, and no leftovers. */

const root = mkdtempSync(join(tmpdir(), 'cg-atomic-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const dir = join(root, `case-${n++}`);
  mkdirSync(dir);
  return dir;
};

test('tempPathFor: a hidden .tmp name in the same folder (so the rename stays on one file system)', () => {
  const tmp = tempPathFor('/some/dir/model.onnx');
  assert.equal(dirname(tmp), '/some/dir');
  assert.match(tmp, /^\/some\/dir\/\.model\.onnx\.\d+\.[0-9a-z]+\.tmp$/);
});

for (const [name, write] of [
  ['writeFileAtomicSync', async (p: string, d: Parameters<typeof writeFileAtomicSync>[1]) => writeFileAtomicSync(p, d)],
  ['writeFileAtomic', writeFileAtomic],
] as const) {
  test(`${name}: string, bytes and a list of parts; replaces an existing file; leaves nothing else`, async () => {
    const dir = fresh();
    const path = join(dir, 'out.bin');
    await write(path, 'hello');
    assert.equal(readFileSync(path, 'utf8'), 'hello');
    await write(path, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
    const big = new Uint8Array(3 << 20).map((_, i) => i & 0xff);
    await write(path, [Buffer.from('head'), big, new Uint8Array(0), Buffer.from('tail')]);
    const back = readFileSync(path);
    assert.equal(back.length, 8 + big.length);
    assert.equal(back.subarray(0, 4).toString(), 'head');
    assert.deepEqual(back.subarray(4, 4 + big.length), Buffer.from(big));
    assert.equal(back.subarray(-4).toString(), 'tail');
    assert.deepEqual(readdirSync(dir), ['out.bin']);
  });

  test(`ERROR PATH - ${name}: a write failing half way (ENOSPC) is E_NO_SPACE, keeps the old file and removes the temp file`, async () => {
    const dir = fresh();
    const path = join(dir, 'keep.txt');
    writeFileSync(path, 'old');
    // The second part fails (as a full disk would) after the first reached the temp file.
    const failing = {
      get byteLength(): number {
        throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      },
    } as unknown as Uint8Array;
    await assert.rejects(write(path, [Buffer.from('new, half written'), failing]), { code: 'E_NO_SPACE' });
    assert.equal(readFileSync(path, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['keep.txt']);
  });

  test(`ERROR PATH - ${name}: a target that is a folder fails with E_IS_FOLDER, the folder untouched and no temp file left`, async () => {
    const dir = fresh();
    const path = join(dir, 'a-folder');
    mkdirSync(path);
    writeFileSync(join(path, 'inside.txt'), 'x');
    await assert.rejects(write(path, 'data'), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'E_IS_FOLDER');
      return true;
    });
    assert.deepEqual(readdirSync(dir), ['a-folder']);
    assert.deepEqual(readdirSync(path), ['inside.txt']);
  });

  test(`ERROR PATH - ${name}: a missing parent folder fails with ENOENT and creates nothing`, async () => {
    const dir = fresh();
    await assert.rejects(write(join(dir, 'no', 'such', 'file'), 'x'), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
    assert.deepEqual(readdirSync(dir), []);
  });
}

test('openAtomicSync: nothing at the target until commit(); commit renames, twice is a no-op', () => {
  const dir = fresh();
  const path = join(dir, 'data.cgds');
  writeFileSync(path, 'previous');
  const f = openAtomicSync(path);
  writeSync(f.fd, 'partial ');
  writeSync(f.fd, 'then complete');
  assert.equal(readFileSync(path, 'utf8'), 'previous', 'the old file stays while writing');
  assert.deepEqual(readdirSync(dir).sort(), ['data.cgds', f.tempPath.slice(dir.length + 1)].sort());
  f.commit();
  f.commit();
  f.abort(); // after commit: nothing to undo
  assert.equal(readFileSync(path, 'utf8'), 'partial then complete');
  assert.deepEqual(readdirSync(dir), ['data.cgds']);
});

test('openAtomicSync: abort() removes the temp file and keeps the old one', () => {
  const dir = fresh();
  const path = join(dir, 'data.cgds');
  writeFileSync(path, 'previous');
  const f = openAtomicSync(path);
  writeSync(f.fd, 'never committed');
  f.abort();
  f.abort();
  assert.equal(readFileSync(path, 'utf8'), 'previous');
  assert.deepEqual(readdirSync(dir), ['data.cgds']);
});
