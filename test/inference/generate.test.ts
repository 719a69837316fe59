import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { STALE_AFTER_MS } from '../../src/inference/output-lock.js';
import { hostname } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { CelebaGanError } from '../../src/errors.js';
import { defaultPipelineDepth, generateImages, imageFileName, type GenerateOptions } from '../../src/inference/generate.js';
import { openGenerator, type GeneratorSession } from '../../src/inference/session.js';
import { fixBatch, tempDir, tinyModelBytes, writeTinyModel } from './fixtures.js';

const root = tempDir('cg-generate-');
const modelPath = writeTinyModel(root);
let session: GeneratorSession;

test.before(async () => {
  session = await openGenerator(modelPath, { provider: 'cpu' });
});
test.after(async () => {
  await session.close();
  rmSync(root, { recursive: true, force: true });
});

let counter = 0;
function freshOut(): string {
  return join(root, `out-${counter++}`);
}

function manifest(dir: string): { file: string; index: number; seed: number; modelSha256: string; step: number | null }[] {
  return readFileSync(join(dir, 'manifest.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

function faces(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith('face-'))
    .sort();
}

test('the same seed gives byte-identical images whatever the batch size (1, 7, 64)', async () => {
  const n = 20;
  const dirs = [1, 7, 64].map(() => freshOut());
  for (const [i, batchSize] of [1, 7, 64].entries()) await generateImages(session, { outDir: dirs[i]!, n, seed: 99, batchSize });
  const names = faces(dirs[0]!);
  assert.equal(names.length, n);
  assert.deepEqual(
    names,
    Array.from({ length: n }, (_, i) => imageFileName(i, 'png')),
  );
  for (const name of names) {
    const a = readFileSync(join(dirs[0]!, name));
    assert.deepEqual(readFileSync(join(dirs[1]!, name)), a, `${name}: batch 7 vs 1`);
    assert.deepEqual(readFileSync(join(dirs[2]!, name)), a, `${name}: batch 64 vs 1`);
  }
  // ... and the faces differ from each other and from another seed's.
  assert.notDeepEqual(readFileSync(join(dirs[0]!, names[0]!)), readFileSync(join(dirs[0]!, names[1]!)));
  const other = freshOut();
  await generateImages(session, { outDir: other, n: 1, seed: 100 });
  assert.notDeepEqual(readFileSync(join(other, names[0]!)), readFileSync(join(dirs[0]!, names[0]!)));
});

test('--index regenerates one face exactly, as the manifest says', async () => {
  const all = freshOut();
  await generateImages(session, { outDir: all, n: 30, seed: 5, batchSize: 8 });
  const line = manifest(all).find((l) => l.index === 17)!;
  assert.equal(line.file, 'face-000017.png');
  assert.equal(line.seed, 5);
  assert.equal(line.modelSha256, session.info.modelSha256);
  assert.equal(line.step, 1234);
  const one = freshOut();
  const r = await generateImages(session, { outDir: one, n: 1, startIndex: line.index, seed: line.seed });
  assert.deepEqual(faces(one), ['face-000017.png']);
  assert.equal(r.firstIndex, 17);
  assert.deepEqual(readFileSync(join(one, line.file)), readFileSync(join(all, line.file)));
});

/**
 * A session that looks at the output folder (from outside the pipeline) each time the pipeline
 * starts a batch: how many files have landed by then says how many batches are still alive.
 */
function watching(inner: GeneratorSession, dir: string, seen: { batch: number; filesOnDisk: number }[]): GeneratorSession {
  let batch = 0;
  return {
    info: inner.info,
    providerUsed: inner.providerUsed,
    providerNotes: inner.providerNotes,
    run: (z, n) => {
      seen.push({ batch: batch++, filesOnDisk: existsSync(dir) ? faces(dir).length : 0 });
      return inner.run(z, n);
    },
    close: () => inner.close(),
  };
}

test('bounded memory: when batch j starts, all but the last depth-1 batches are on disk (observed from the folder)', async () => {
  const B = 16;
  for (const depth of [1, 2, 3]) {
    const out = freshOut();
    const seen: { batch: number; filesOnDisk: number }[] = [];
    await generateImages(watching(session, out, seen), { outDir: out, n: 300, seed: 1, batchSize: B, pipelineDepth: depth });
    assert.equal(seen.length, Math.ceil(300 / B));
    for (const { batch, filesOnDisk } of seen) {
      assert.ok(filesOnDisk >= (batch - depth + 1) * B, `depth ${depth}: batch ${batch} started with only ${filesOnDisk} files on disk`);
    }
    if (depth === 1)
      assert.ok(
        seen.every(({ batch, filesOnDisk }) => filesOnDisk === batch * B),
        'depth 1: one batch at a time',
      );
    else
      assert.ok(
        seen.some(({ batch, filesOnDisk }) => filesOnDisk < batch * B),
        `depth ${depth}: a batch ran while the one before it was being written`,
      );
    assert.equal(faces(out).length, 300);
    assert.deepEqual(
      manifest(out).map((l) => l.index),
      Array.from({ length: 300 }, (_, i) => i),
      'manifest in index order, one line per file',
    );
  }
  // On the cpu provider the default is one batch at a time (encoding beside onnxruntime only contends for the cores).
  assert.equal(session.providerUsed, 'cpu');
  assert.equal(defaultPipelineDepth('cpu'), 1);
  assert.equal(defaultPipelineDepth('cuda'), 2);
});

test('formats, upscaling and the contact sheet', async () => {
  const out = freshOut();
  const gridPath = join(out, 'sheets', 'grid.png');
  await generateImages(session, { outDir: out, n: 10, seed: 3, format: 'jpeg', upscale: 4, resize: 'lanczos', grid: { path: gridPath, cols: 5 } });
  const jpeg = await sharp(join(out, 'face-000000.jpg')).metadata();
  assert.equal(jpeg.format, 'jpeg');
  assert.equal(jpeg.width, 112);
  assert.equal(jpeg.height, 112);
  const grid = await sharp(gridPath).metadata();
  // 5 x 2 tiles of 112 px with 2 px gaps.
  assert.equal(grid.width, 5 * 112 + 6 * 2);
  assert.equal(grid.height, 2 * 112 + 3 * 2);

  const webp = freshOut();
  await generateImages(session, { outDir: webp, n: 2, seed: 3, format: 'webp', upscale: 2, resize: 'nearest' });
  const meta = await sharp(join(webp, 'face-000001.webp')).metadata();
  assert.equal(meta.format, 'webp');
  assert.equal(meta.width, 56);

  // Nearest-neighbour upscaling repeats each pixel of the 1x face exactly.
  const one = freshOut();
  const two = freshOut();
  await generateImages(session, { outDir: one, n: 1, seed: 3 });
  await generateImages(session, { outDir: two, n: 1, seed: 3, upscale: 2, resize: 'nearest' });
  const small = await sharp(join(one, 'face-000000.png')).raw().toBuffer();
  const big = await sharp(join(two, 'face-000000.png')).raw().toBuffer();
  assert.equal(big.length, 4 * small.length);
  for (let y = 0; y < 56; y++) {
    for (let x = 0; x < 56; x++) {
      for (let ch = 0; ch < 3; ch++) assert.equal(big[(y * 56 + x) * 3 + ch], small[((y >> 1) * 28 + (x >> 1)) * 3 + ch]);
    }
  }
});

test('ERROR PATH - existing files are never overwritten without --force: the conflict is found at write time', async () => {
  const out = freshOut();
  await generateImages(session, { outDir: out, n: 5, seed: 1 });
  const seed1Face4 = readFileSync(join(out, 'face-000004.png'));
  writeFileSync(join(out, 'face-000003.png'), 'keep me');
  await assert.rejects(generateImages(session, { outDir: out, n: 5, startIndex: 3, seed: 2 }), (err: CelebaGanError) => {
    assert.equal(err.name, 'UsageError');
    assert.equal(err.code, 'E_OUTPUT_EXISTS');
    assert.match(err.message, /face-000003\.png already exists; not overwriting it$/);
    assert.match(err.hint!, /--force/);
    return true;
  });
  assert.equal(readFileSync(join(out, 'face-000003.png'), 'utf8'), 'keep me', 'nothing touched');
  assert.deepEqual(readFileSync(join(out, 'face-000004.png')), seed1Face4);
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('.') || f.endsWith('.lock')),
    [],
    'no temp file, lock released',
  );

  // A conflict in the middle of a run: the files before it are complete and listed, none after.
  const mid = freshOut();
  mkdirSync(mid);
  writeFileSync(join(mid, 'face-000007.png'), 'keep me');
  await assert.rejects(generateImages(session, { outDir: mid, n: 20, seed: 2, batchSize: 4 }), {
    code: 'E_OUTPUT_EXISTS',
    message: /face-000007\.png already exists/,
  });
  assert.deepEqual(
    faces(mid),
    Array.from({ length: 8 }, (_, i) => imageFileName(i, 'png')),
  );
  assert.deepEqual(
    manifest(mid).map((l) => l.index),
    [0, 1, 2, 3, 4, 5, 6],
    'each complete file has its line; the conflicting one has none',
  );
  assert.equal(readFileSync(join(mid, 'face-000007.png'), 'utf8'), 'keep me');
});

test('--force three times: the manifest lists each file once, with the seed that made it', async () => {
  const out = freshOut();
  await generateImages(session, { outDir: out, n: 10, seed: 1, batchSize: 4 });
  const notes2: string[] = [];
  await generateImages(session, { outDir: out, n: 10, seed: 2, batchSize: 4, force: true, onNote: (n) => notes2.push(n) });
  assert.match(notes2.join('\n'), /replaced 10 lines of earlier runs/);
  await generateImages(session, { outDir: out, n: 10, startIndex: 5, seed: 3, batchSize: 4, force: true });
  const lines = manifest(out);
  assert.deepEqual(lines.map((l) => l.file).sort(), faces(out), 'one line per file on disk');
  assert.deepEqual(
    lines.map((l) => [l.index, l.seed]).sort((a, b) => a[0]! - b[0]!),
    Array.from({ length: 15 }, (_, i) => [i, i < 5 ? 2 : 3]),
  );
  // And each file is what its line says.
  const check = freshOut();
  await generateImages(session, { outDir: check, n: 10, startIndex: 5, seed: 3 });
  for (let i = 5; i < 15; i++) assert.deepEqual(readFileSync(join(out, imageFileName(i, 'png'))), readFileSync(join(check, imageFileName(i, 'png'))));
});

test('--force by a shard: the older lines for its files leave the other manifest parts too', async () => {
  const out = freshOut();
  await generateImages(session, { outDir: out, n: 10, seed: 1, batchSize: 4 });
  const notes: string[] = [];
  await generateImages(session, { outDir: out, n: 10, seed: 5, batchSize: 4, force: true, shard: { index: 1, count: 2 }, onNote: (n) => notes.push(n) });
  assert.match(notes.join('\n'), /manifest\.jsonl: removed 5 lines for files this run rewrote \(now listed in manifest-shard-1-of-2\.jsonl\)/);
  assert.deepEqual(
    manifest(out).map((l) => [l.index, l.seed]),
    [
      [0, 1],
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
    ],
  );
  const part = readFileSync(join(out, 'manifest-shard-1-of-2.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    part.map((l) => [l.index, l.seed]),
    [
      [5, 5],
      [6, 5],
      [7, 5],
      [8, 5],
      [9, 5],
    ],
  );
  assert.deepEqual(
    readdirSync(out).filter((f) => f.endsWith('.lock') || f.startsWith('.')),
    [],
  );
});

test('ERROR PATH - a full disk in the middle of a batch: complete files keep their lines, no temp files, E_NO_SPACE names the file and the rest command', async () => {
  const out = freshOut();
  let writes = 0;
  const fullAfter6 = (path: string, data: Uint8Array): void => {
    if (++writes > 6) throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
    writeFileSync(path, data);
  };
  const progress: number[] = [];
  await assert.rejects(
    generateImages(session, { outDir: out, n: 20, seed: 7, batchSize: 4, io: { writeFile: fullAfter6 }, onProgress: (d) => progress.push(d) }),
    (err: CelebaGanError) => {
      assert.equal(err.code, 'E_NO_SPACE');
      assert.equal(err.kind, 'runtime');
      assert.match(err.message, /^cannot write .*face-000006\.png: no space left on the device holding .*face-000006\.png \(ENOSPC\)$/);
      assert.doesNotMatch(err.message, /\.tmp/, 'names the face, not its temporary file');
      assert.match(err.hint!, /^Free some space or pass --out on another disk, then run the command printed for the rest\.$/);
      return true;
    },
  );
  assert.deepEqual(
    faces(out),
    Array.from({ length: 6 }, (_, i) => imageFileName(i, 'png')),
    'the first batch and half of the second',
  );
  assert.deepEqual(
    manifest(out).map((l) => l.index),
    [0, 1, 2, 3, 4, 5],
  );
  assert.equal(progress.at(-1), 6, 'the CLI learns how many landed (for the rest command)');
  assert.deepEqual(
    readdirSync(out).filter((f) => !f.startsWith('face-') && f !== 'manifest.jsonl'),
    [],
    'no temp file, no lock left',
  );

  // Nothing written at all: the folder the run created is removed again.
  const never = join(freshOut(), 'deeper');
  const failAll = (): void => {
    throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  };
  await assert.rejects(generateImages(session, { outDir: never, n: 3, seed: 7, io: { writeFile: failAll } }), { code: 'E_NO_SPACE' });
  assert.equal(existsSync(never), false);
  assert.equal(existsSync(join(never, '..')), false, 'and its parent, which it created too');
});

test('ERROR PATH - the model fails mid-run: the batches already computed still land, listed, before the lock is released', async () => {
  const out = freshOut();
  let calls = 0;
  const failing: GeneratorSession = {
    info: session.info,
    providerUsed: session.providerUsed,
    providerNotes: session.providerNotes,
    run: (z, n) => (++calls === 3 ? Promise.reject(new CelebaGanError('E_MODEL_RUN', 'out of memory')) : session.run(z, n)),
    close: async () => undefined,
  };
  await assert.rejects(generateImages(failing, { outDir: out, n: 40, seed: 2, batchSize: 8, pipelineDepth: 2 }), { code: 'E_MODEL_RUN' });
  assert.deepEqual(
    faces(out),
    Array.from({ length: 16 }, (_, i) => imageFileName(i, 'png')),
  );
  assert.deepEqual(
    manifest(out).map((l) => l.index),
    Array.from({ length: 16 }, (_, i) => i),
  );
  assert.equal(existsSync(join(out, 'generate.lock')), false);
});

test('ERROR PATH - a file system without hard links: E_OUTPUT_NO_LINKS says to use another --out or --force', async () => {
  const out = freshOut();
  const noLinks = (): void => {
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  };
  await assert.rejects(generateImages(session, { outDir: out, n: 3, seed: 1, io: { link: noLinks } }), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_OUTPUT_NO_LINKS');
    assert.match(err.message, /does not support hard links/);
    assert.match(err.hint!, /--force/);
    return true;
  });
  assert.equal(existsSync(out), false, 'no temp file and no folder left');
  const forced = await generateImages(session, { outDir: out, n: 3, seed: 1, force: true, io: { link: noLinks } });
  assert.equal(forced.written, 3, '--force renames instead of linking');
});

test('ERROR PATH - two runs into one folder: the second fails with E_OUTPUT_LOCKED naming the holder and the lock', async () => {
  const out = freshOut();
  const first = generateImages(session, { outDir: out, n: 40, seed: 1, batchSize: 8 });
  await assert.rejects(generateImages(session, { outDir: out, n: 40, seed: 2, batchSize: 8 }), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_OUTPUT_LOCKED');
    assert.equal(err.kind, 'usage');
    assert.ok(err.message.includes(`pid ${process.pid} on `), err.message);
    assert.ok(err.message.includes(join(out, 'generate.lock')), err.message);
    return true;
  });
  await first;
  assert.deepEqual([...new Set(manifest(out).map((l) => l.seed))], [1], 'only the first run wrote');
  assert.equal(existsSync(join(out, 'generate.lock')), false, 'released at the end');
  // An overlapping shard of another sharding is refused too; a disjoint --index range is not.
  const held = generateImages(session, { outDir: out, n: 40, startIndex: 100, seed: 1, shard: { index: 0, count: 2 } });
  await assert.rejects(generateImages(session, { outDir: out, n: 10, startIndex: 110, seed: 1, force: true }), {
    code: 'E_OUTPUT_LOCKED',
    message: /overlap this run's 110\.\.119/,
  });
  await held;
});

test('a stale lock (its pid is gone) is taken over, and the run says so', async () => {
  const out = freshOut();
  mkdirSync(out);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(dead.stdout);
  writeFileSync(join(out, 'generate.lock'), JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00.000Z', range: [0, 10], extension: 'png' }));
  const notes: string[] = [];
  const r = await generateImages(session, { outDir: out, n: 3, seed: 1, onNote: (n) => notes.push(n) });
  assert.equal(r.written, 3);
  assert.match(notes.join('\n'), new RegExp(`took over the stale lock .*generate\\.lock of pid ${pid}`));
  assert.equal(existsSync(join(out, 'generate.lock')), false);

  // From another host (a killed pod): respected while it is fresh, taken over once not refreshed for STALE_AFTER_MS.
  const lock = join(out, 'generate.lock');
  writeFileSync(lock, JSON.stringify({ pid: 1, host: 'pod-that-was-killed', started: '2026-01-01T00:00:00.000Z', range: [0, 10], extension: 'png' }));
  await assert.rejects(generateImages(session, { outDir: out, n: 3, seed: 1, force: true }), {
    code: 'E_OUTPUT_LOCKED',
    message: /pid 1 on pod-that-was-killed/,
  });
  const old = new Date(Date.now() - STALE_AFTER_MS - 5000);
  utimesSync(lock, old, old);
  const takenNotes: string[] = [];
  await generateImages(session, { outDir: out, n: 3, seed: 1, force: true, onNote: (n) => takenNotes.push(n) });
  assert.match(takenNotes.join('\n'), /took over the stale lock .* of pid 1 on pod-that-was-killed .*its lock was not refreshed for \d+ s/);
});

test('shards: the union of K/N slices is byte-identical to the unsharded run; each manifest part covers its slice once', async () => {
  const whole = freshOut();
  await generateImages(session, { outDir: whole, n: 23, startIndex: 4, seed: 9, batchSize: 5 });
  const sharded = freshOut();
  const N = 3;
  // All shards at once into one folder: each holds its own lock and writes its own manifest part.
  const results = await Promise.all(
    Array.from({ length: N }, (_, k) =>
      generateImages(session, { outDir: sharded, n: 23, startIndex: 4, seed: 9, batchSize: 4, shard: { index: k, count: N } }),
    ),
  );
  assert.deepEqual(
    results.map((r) => [r.firstIndex, r.total]),
    [
      [4, 7],
      [11, 8],
      [19, 8],
    ],
  );
  assert.deepEqual(faces(sharded), faces(whole));
  for (const f of faces(whole)) assert.deepEqual(readFileSync(join(sharded, f)), readFileSync(join(whole, f)), f);
  const parts = readdirSync(sharded)
    .filter((f) => f.endsWith('.jsonl'))
    .sort();
  assert.deepEqual(parts, ['manifest-shard-0-of-3.jsonl', 'manifest-shard-1-of-3.jsonl', 'manifest-shard-2-of-3.jsonl']);
  const indices = parts.flatMap((p) =>
    readFileSync(join(sharded, p), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).index as number),
  );
  assert.deepEqual(
    indices.sort((a, b) => a - b),
    Array.from({ length: 23 }, (_, i) => 4 + i),
    'every index exactly once',
  );
  assert.equal(JSON.parse(readFileSync(join(sharded, parts[1]!), 'utf8').split('\n')[0]!).shard, '1/3');
  // More shards than images: the empty ones make nothing, not even a folder.
  const tiny = join(freshOut(), 'few');
  const empty = await generateImages(session, { outDir: tiny, n: 2, seed: 9, shard: { index: 0, count: 4 } });
  assert.deepEqual([empty.total, empty.written, existsSync(tiny)], [0, 0, false]);
});

test('a model with a fixed batch runs in chunks of it and gives the same faces', async () => {
  const fixedPath = join(root, 'fixed4.onnx');
  writeFileSync(fixedPath, tinyModelBytes({ edit: fixBatch(4) }));
  const fixed = await openGenerator(fixedPath, { provider: 'cpu' });
  try {
    const a = freshOut();
    const b = freshOut();
    await generateImages(fixed, { outDir: a, n: 10, seed: 6, batchSize: 7 });
    await generateImages(session, { outDir: b, n: 10, seed: 6, batchSize: 7 });
    for (const f of faces(b)) assert.deepEqual(readFileSync(join(a, f)), readFileSync(join(b, f)), f);
  } finally {
    await fixed.close();
  }
});

test('ERROR PATH - an output folder that cannot be created: a file in the way is E_NOT_FOLDER', async () => {
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  await assert.rejects(generateImages(session, { outDir: join(file, 'faces'), n: 1, seed: 1 }), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_NOT_FOLDER');
    assert.equal(err.kind, 'usage');
    assert.match(err.message, /^cannot create the output folder .*a-file\/faces: a part of .*a-file\/faces is a file, but a folder is needed there/);
    return true;
  });
});

test('ERROR PATH - a read-only or forbidden output folder: E_READ_ONLY / E_PERMISSION with the --out hint', async () => {
  for (const [errno, code] of [
    ['EROFS', 'E_READ_ONLY'],
    ['EACCES', 'E_PERMISSION'],
  ] as const) {
    const out = freshOut();
    const refuse = (): void => {
      throw Object.assign(new Error(`${errno}: injected`), { code: errno });
    };
    await assert.rejects(generateImages(session, { outDir: out, n: 2, seed: 1, io: { writeFile: refuse } }), (err: CelebaGanError) => {
      assert.equal(err.code, code);
      assert.equal(err.kind, 'usage');
      assert.match(err.message, new RegExp(`^cannot write .*face-000000\\.png: .*\\(${errno}\\)$`));
      assert.match(err.hint!, /^Pass --out <folder> somewhere you can write/);
      return true;
    });
  }
});

const badCalls: { name: string; opts: Partial<GenerateOptions>; message: RegExp }[] = [
  { name: 'n = 0', opts: { n: 0 }, message: /^Expected integer >= 1 for n but received 0 of type number$/ },
  { name: 'n < 0', opts: { n: -1 }, message: /^Expected integer >= 1 for n but received -1 of type number$/ },
  { name: 'n not an integer', opts: { n: 2.5 }, message: /^Expected integer >= 1 for n but received 2.5/ },
  { name: 'a negative index', opts: { startIndex: -3 }, message: /for index but received -3/ },
  { name: 'batch size 0', opts: { batchSize: 0 }, message: /for batch-size but received 0/ },
  { name: 'an unknown format', opts: { format: 'gif' as never }, message: /^Unsupported format "gif" of type string. Should be one of: png, jpeg, webp$/ },
  { name: 'an unknown resize filter', opts: { resize: 'cubic' as never }, message: /Should be one of: lanczos, nearest$/ },
  { name: 'upscale 0', opts: { upscale: 0 }, message: /for upscale but received 0/ },
  { name: 'truncation 2 on uniform latents', opts: { truncation: 2 }, message: /latent is uniform\) for truncation but received 2/ },
];
for (const bad of badCalls) {
  test(`BAD CALL - ${bad.name}`, async () => {
    const out = freshOut();
    await assert.rejects(generateImages(session, { outDir: out, n: 3, seed: 1, ...bad.opts }), (err: CelebaGanError) => {
      assert.equal(err.name, 'UsageError');
      assert.equal(err.code, 'E_BAD_ARGUMENT');
      assert.match(err.message, bad.message);
      return true;
    });
  });
}

test('an abort signal stops after the batches already computed: whole files, matching manifest, no temp files', async () => {
  const out = freshOut();
  const abort = new AbortController();
  const r = await generateImages(session, {
    outDir: out,
    n: 200,
    seed: 4,
    batchSize: 10,
    grid: { path: join(out, 'grid.png') },
    onProgress: (done) => {
      if (done === 5) abort.abort();
    },
    signal: abort.signal,
  });
  assert.equal(r.stopped, true);
  assert.ok(r.written >= 10 && r.written <= 30 && r.written % 10 === 0, `${r.written} files: whole batches only`);
  assert.deepEqual(
    faces(out),
    Array.from({ length: r.written }, (_, i) => imageFileName(i, 'png')),
  );
  assert.deepEqual(
    manifest(out).map((l) => l.index),
    Array.from({ length: r.written }, (_, i) => i),
  );
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('.')),
    [],
    'no temp files left',
  );
  assert.equal((await sharp(join(out, 'grid.png')).metadata()).format, 'png');
});
