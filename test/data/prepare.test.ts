import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import yazl from 'yazl';
import { DatasetReader } from '../../src/data/dataset-file.js';
import { prepareFromImages, type PrepareProgress } from '../../src/data/prepare.js';
import { openImageSource } from '../../src/data/sources.js';
import { prepareSynthetic } from '../../src/data/synthetic.js';
import { injectFsError } from '../support/inject.js';

/** Distinct solid colours so each prepared image names its source. */
const COLOURS: [number, number, number][] = [
  [250, 10, 10], [10, 250, 10], [10, 10, 250], [250, 250, 10], [10, 250, 250], [250, 10, 250], [128, 64, 32],
];

function solid(w: number, h: number, rgb: readonly number[]): Sharp {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) px.set(rgb, i * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
}

/** Centre pixel of image i in a data set of 4x4 images. */
function centre(r: DatasetReader, i: number): number[] {
  const img = r.read([i]);
  const o = (2 * 4 + 2) * 3;
  return [...img.subarray(o, o + 3)];
}

function near(a: number[], b: readonly number[], tol = 6): boolean {
  return a.length === b.length && a.every((v, i) => Math.abs(v - (b[i] ?? Number.NaN)) <= tol);
}

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-prepare-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/**
 * A folder like a messy real one: images in nested folders and mixed formats, plus a truncated
 * JPEG, a text file named .jpg, an empty .png, a README and a hidden file.
 */
async function makeFolder(root: string): Promise<{ good: string[] }> {
  const files: [string, Buffer][] = [
    ['b/03.jpg', await solid(40, 50, COLOURS[0]!).jpeg({ quality: 95 }).toBuffer()],
    ['a/01.png', await solid(30, 30, COLOURS[1]!).png().toBuffer()],
    ['a/02.webp', await solid(36, 20, COLOURS[2]!).webp({ lossless: true }).toBuffer()],
    ['00.JPEG', await solid(64, 64, COLOURS[3]!).jpeg({ quality: 95 }).toBuffer()],
    ['b/c/04.png', await solid(20, 20, COLOURS[4]!).png().toBuffer()],
  ];
  const big = await solid(80, 80, COLOURS[5]!).jpeg().toBuffer();
  files.push(['b/truncated.jpg', big.subarray(0, big.length >> 1)]);
  files.push(['b/notes-really.jpg', Buffer.from('this is text, not a JPEG\n')]);
  files.push(['empty.png', Buffer.alloc(0)]);
  files.push(['README.txt', Buffer.from('hello')]);
  files.push(['.DS_Store', Buffer.from('junk')]);
  for (const [name, data] of files) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), data);
  }
  // sorted: 00.JPEG, a/01.png, a/02.webp, b/03.jpg, b/c/04.png
  return { good: ['00.JPEG', 'a/01.png', 'a/02.webp', 'b/03.jpg', 'b/c/04.png'] };
}

const EXPECTED_ORDER = [COLOURS[3]!, COLOURS[1]!, COLOURS[2]!, COLOURS[0]!, COLOURS[4]!];

test(
  'folder: recursive, sorted, bad files skipped and listed, summary counts',
  withDir(async (dir) => {
    const input = join(dir, 'faces');
    await makeFolder(input);
    const out = join(dir, 'out', 'faces-4.cgds');
    const progress: PrepareProgress[] = [];
    const skippedSeen: string[] = [];
    const r = await prepareFromImages({ input, out, size: 4, crop: 108, workers: 2, onProgress: (p) => progress.push(p), onSkip: (s) => skippedSeen.push(s.name) });
    assert.equal(r.prepared, 5);
    assert.equal(r.source, 'folder');
    assert.deepEqual(
      r.skipped.map((s) => s.name),
      ['README.txt', 'b/notes-really.jpg', 'b/truncated.jpg', 'empty.png'],
    );
    assert.deepEqual([...skippedSeen].sort(), r.skipped.map((s) => s.name).sort());
    assert.match(r.skipped.find((s) => s.name === 'README.txt')!.reason, /not an image file: extension \.txt/);
    assert.match(r.skipped.find((s) => s.name === 'b/notes-really.jpg')!.reason, /not a readable image/);
    const last = progress.at(-1)!;
    assert.deepEqual(last, { prepared: 5, skipped: 4, processed: 9, total: 9 });

    const reader = new DatasetReader(out);
    reader.verify();
    assert.equal(reader.header.count, 5);
    assert.equal(reader.header.synthetic, false);
    assert.deepEqual([reader.header.height, reader.header.width, reader.header.channels], [4, 4, 3]);
    EXPECTED_ORDER.forEach((rgb, i) => assert.ok(near(centre(reader, i), rgb), `image ${i} should be [${rgb}], got [${centre(reader, i)}]`));
    reader.close();

    assert.equal(r.reportPath, `${out}.skipped.txt`);
    const report = readFileSync(r.reportPath, 'utf8').trim().split('\n');
    assert.match(report[0]!, /^# celeba-gan prepare: 4 inputs from .* skipped/);
    assert.deepEqual(report.slice(1).map((l) => l.split('\t')[0]), ['README.txt', 'b/notes-really.jpg', 'b/truncated.jpg', 'empty.png']);
    assert.deepEqual(readdirSync(dirname(out)).sort(), ['faces-4.cgds', 'faces-4.cgds.skipped.txt'], 'no temp files left');
  }),
);

test(
  'the file does not depend on concurrency; --limit takes the first N in name order',
  withDir(async (dir) => {
    const input = join(dir, 'faces');
    await makeFolder(input);
    const one = await prepareFromImages({ input, out: join(dir, 'w1.cgds'), size: 4, crop: 108, workers: 1 });
    const many = await prepareFromImages({ input, out: join(dir, 'w5.cgds'), size: 4, crop: 108, workers: 5 });
    assert.equal(many.header.checksum, one.header.checksum);
    const limited = await prepareFromImages({ input, out: join(dir, 'l3.cgds'), size: 4, crop: 108, workers: 3, limit: 3 });
    assert.equal(limited.prepared, 3);
    const r = new DatasetReader(join(dir, 'l3.cgds'));
    EXPECTED_ORDER.slice(0, 3).forEach((rgb, i) => assert.ok(near(centre(r, i), rgb)));
    r.close();
  }),
);

test(
  'ERROR PATH - existing output without overwrite, missing input, a plain file, an empty folder',
  withDir(async (dir) => {
    const input = join(dir, 'faces');
    await makeFolder(input);
    const out = join(dir, 'x.cgds');
    writeFileSync(out, 'keep me');
    await assert.rejects(prepareFromImages({ input, out, size: 4, crop: 108 }), (err: Error & { code?: string }) => {
      assert.equal(err.name, 'UsageError');
      assert.equal(err.code, 'E_OUTPUT_EXISTS');
      assert.match(err.message, /x\.cgds already exists/);
      return true;
    });
    assert.equal(readFileSync(out, 'utf8'), 'keep me');
    const r = await prepareFromImages({ input, out, size: 4, crop: 108, overwrite: true });
    assert.equal(r.prepared, 5);

    const fresh = join(dir, 'y.cgds');
    await assert.rejects(prepareFromImages({ input: join(dir, 'nope'), out: fresh, size: 4, crop: 108 }), { name: 'UsageError', code: 'E_INPUT_MISSING' });
    await assert.rejects(prepareFromImages({ input: join(input, 'README.txt'), out: fresh, size: 4, crop: 108 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_BAD_INPUT');
      assert.match(err.message, /Expected a folder or a \.zip file for --input but received .*README\.txt \(a file\)/);
      return true;
    });
    mkdirSync(join(dir, 'empty'));
    await assert.rejects(prepareFromImages({ input: join(dir, 'empty'), out: fresh, size: 4, crop: 108 }), { code: 'E_NO_IMAGES' });
    await assert.rejects(prepareFromImages({ input, out: fresh, size: 3, crop: 108 }), /Expected integer between 4 and 1024 for --size but received 3/);
    assert.equal(existsSync(fresh), false);
  }),
);

test(
  'ERROR PATH - a folder where nothing decodes writes no data set, only the report',
  withDir(async (dir) => {
    const input = join(dir, 'bad');
    mkdirSync(input);
    writeFileSync(join(input, 'a.jpg'), 'nope');
    writeFileSync(join(input, 'b.png'), 'nope');
    const out = join(dir, 'bad.cgds');
    await assert.rejects(prepareFromImages({ input, out, size: 4, crop: 108 }), (err: Error & { code?: string; hint?: string; kind?: string }) => {
      assert.equal(err.code, 'E_NOTHING_PREPARED');
      assert.equal(err.kind, 'runtime');
      assert.match(err.message, /none of the 2 images .* could be prepared \(skipped 2\)/);
      assert.match(err.hint!, /bad\.cgds\.skipped\.txt/);
      return true;
    });
    assert.equal(existsSync(out), false);
    assert.equal(readFileSync(`${out}.skipped.txt`, 'utf8').trim().split('\n').length, 3);
  }),
);

/** Build a zip in memory with yazl; `rename` rewrites entry names byte-for-byte afterwards. */
async function makeZip(entries: [string, Buffer][], rename: [string, string][] = []): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, data] of entries) {
    if (name.endsWith('/')) zip.addEmptyDirectory(name);
    else zip.addBuffer(data, name, { compress: name.endsWith('.png') });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  const buf = Buffer.concat(chunks);
  // yazl refuses unsafe names, so write same-length placeholders and patch both the local
  // header and the central directory copies of each name (names carry no checksum).
  for (const [from, to] of rename) {
    assert.equal(from.length, to.length);
    let at = buf.indexOf(from);
    let hits = 0;
    while (at >= 0) {
      buf.write(to, at, 'latin1');
      hits++;
      at = buf.indexOf(from, at + 1);
    }
    assert.equal(hits, 2, `${from} should appear in the local header and the central directory`);
  }
  return buf;
}

test(
  'zip: read in place like img_align_celeba.zip; escaping and absolute entries refused and reported; nothing written outside',
  withDir(async (dir) => {
    const work = join(dir, 'work');
    mkdirSync(work);
    const jpg = (i: number) => solid(178, 218, COLOURS[i]!).jpeg({ quality: 95 }).toBuffer();
    const zipBytes = await makeZip(
      [
        ['img_align_celeba/', Buffer.alloc(0)],
        ['img_align_celeba/000002.jpg', await jpg(1)],
        ['img_align_celeba/000001.jpg', await jpg(0)],
        ['img_align_celeba/000003.png', await solid(178, 218, COLOURS[2]!).png().toBuffer()],
        ['img_align_celeba/000004.jpg', Buffer.from('garbage')],
        ['img_align_celeba/000005.png', await solid(178, 218, COLOURS[5]!).png().toBuffer()],
        ['xx/evil.jpg', await jpg(3)],
        ['xabs/evil.jpg', await jpg(4)],
        ['__MACOSX/img_align_celeba/._000001.jpg', Buffer.from('resource fork')],
        ['list_bbox_celeba.txt', Buffer.from('202599\n')],
      ],
      [
        ['xx/evil.jpg', '../evil.jpg'],
        ['xabs/evil.jpg', '/abs/evil.jpg'],
      ],
    );
    const input = join(work, 'img_align_celeba.zip');
    // Damage 000005.png's deflated data (found through its local header) so it no longer reads.
    const local = zipBytes.indexOf('img_align_celeba/000005.png') - 30;
    assert.equal(zipBytes.readUInt32LE(local), 0x04034b50);
    const dataStart = local + 30 + zipBytes.readUInt16LE(local + 26) + zipBytes.readUInt16LE(local + 28);
    zipBytes.fill(0xa5, dataStart + 2, dataStart + 40);
    writeFileSync(input, zipBytes);
    const out = join(work, 'data', 'celeba-4.cgds');
    const r = await prepareFromImages({ input, out, size: 4, crop: 108, workers: 2 });
    assert.equal(r.source, 'zip');
    assert.equal(r.prepared, 3);
    const byName = new Map(r.skipped.map((s) => [s.name, s.reason]));
    assert.deepEqual([...byName.keys()].sort(), ['../evil.jpg', '/abs/evil.jpg', 'img_align_celeba/000004.jpg', 'img_align_celeba/000005.png', 'list_bbox_celeba.txt']);
    assert.match(byName.get('img_align_celeba/000005.png')!, /^(unreadable|not a readable image): /);
    assert.match(byName.get('../evil.jpg')!, /refused: unsafe path in zip \(invalid relative path: \.\.\/evil\.jpg\)/);
    assert.match(byName.get('/abs/evil.jpg')!, /refused: unsafe path in zip \(absolute path: \/abs\/evil\.jpg\)/);
    const report = readFileSync(`${out}.skipped.txt`, 'utf8');
    assert.match(report, /^\.\.\/evil\.jpg\trefused/m);
    assert.match(report, /^\/abs\/evil\.jpg\trefused/m);

    const reader = new DatasetReader(out);
    reader.verify();
    [COLOURS[0]!, COLOURS[1]!, COLOURS[2]!].forEach((rgb, i) => assert.ok(near(centre(reader, i), rgb), `zip image ${i}`));
    reader.close();
    // Nothing beside the zip, above it, or at the absolute path.
    assert.deepEqual(readdirSync(work).sort(), ['data', 'img_align_celeba.zip']);
    assert.deepEqual(readdirSync(dir), ['work']);
    assert.equal(existsSync('/abs/evil.jpg'), false);
    assert.deepEqual(readdirSync(join(work, 'data')).sort(), ['celeba-4.cgds', 'celeba-4.cgds.skipped.txt']);
  }),
);

test(
  'ERROR PATH - a file named .zip that is not a zip',
  withDir(async (dir) => {
    const input = join(dir, 'broken.zip');
    writeFileSync(input, 'PK but not really');
    await assert.rejects(prepareFromImages({ input, out: join(dir, 'o.cgds'), size: 4, crop: 108 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_ZIP_UNREADABLE');
      assert.match(err.message, /broken\.zip could not be read as a zip/);
      return true;
    });
  }),
);

test(
  'zip listing: a central directory larger than the 1 MiB read block lists every entry, and each reads back its own bytes',
  withDir(async (dir) => {
    const n = 16000; // ~80 bytes of directory each: about 1.3 MB, so block boundaries are crossed
    const names = Array.from({ length: n }, (_, i) => `img_align_celeba/${String(n - i).padStart(6, '0')}-with-a-longer-name.jpg`);
    const input = join(dir, 'many.zip');
    writeFileSync(input, await makeZip(names.map((name) => [name, Buffer.from(name)])));
    const src = await openImageSource(input);
    try {
      assert.equal(src.kind, 'zip');
      assert.equal(src.names.length, n);
      assert.deepEqual(src.names, [...names].sort());
      for (const i of [0, 1, 7777, n - 2, n - 1]) assert.equal((await src.read(i)).toString(), src.names[i]);
      const together = await Promise.all([3, 9000, 15000, 12].map((i) => src.read(i)));
      assert.deepEqual(together.map(String), [3, 9000, 15000, 12].map((i) => src.names[i]));
    } finally {
      await src.close();
    }
  }),
);

test(
  'ERROR PATH - an aborted prepare (Ctrl-C) throws E_ABORTED and leaves no file, temporary or final',
  withDir(async (dir) => {
    const input = join(dir, 'faces');
    await makeFolder(input);
    mkdirSync(join(dir, 'out'));
    const out = join(dir, 'out', 'a.cgds');
    const stop = new AbortController();
    await assert.rejects(
      prepareFromImages({ input, out, size: 4, crop: 108, workers: 1, signal: stop.signal, onProgress: (p) => p.prepared >= 1 && stop.abort() }),
      (err: Error & { code?: string }) => {
        assert.equal(err.name, 'CelebaGanError');
        assert.equal(err.code, 'E_ABORTED');
        assert.match(err.message, /prepare was interrupted; nothing was written to .*a\.cgds/);
        return true;
      },
    );
    const stopSynth = new AbortController();
    await assert.rejects(
      prepareSynthetic({ count: 2000, out: join(dir, 'out', 's.cgds'), size: 28, seed: 1, signal: stopSynth.signal, onProgress: () => stopSynth.abort() }),
      { code: 'E_ABORTED' },
    );
    // No wait here: prepare lets the decodes it started settle before it rejects, so nothing can appear later.
    assert.deepEqual(readdirSync(join(dir, 'out')), []);
  }),
);

test(
  'a file name with a tab or newline stays on one line of the report',
  withDir(async (dir) => {
    const input = join(dir, 'odd');
    mkdirSync(input);
    await solid(8, 8, [1, 2, 3]).png().toFile(join(input, 'ok.png'));
    writeFileSync(join(input, 'bad\tname\n.jpg'), 'nope');
    const out = join(dir, 'odd.cgds');
    const r = await prepareFromImages({ input, out, size: 4, crop: 108 });
    assert.equal(r.prepared, 1);
    const lines = readFileSync(`${out}.skipped.txt`, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, /^bad\\tname\\n\.jpg\tnot a readable image/);
  }),
);

for (const errno of ['EMFILE', 'ENFILE'] as const) {
  test(
    `ERROR PATH - ${errno} while reading an image stops the run with E_TOO_MANY_FILES (not a skipped image); nothing is written`,
    withDir(async (dir) => {
      const input = join(dir, 'in');
      await makeFolder(input);
      const out = join(dir, 'o.cgds');
      const skipped: string[] = [];
      const restore = injectFsError('openSync', errno, (args) => String(args[0]).endsWith('03.jpg'));
      try {
        await assert.rejects(prepareFromImages({ input, out, size: 4, crop: 0, workers: 2, onSkip: (s) => skipped.push(s.name) }), (err: Error & { code?: string; hint?: string }) => {
          assert.equal(err.code, 'E_TOO_MANY_FILES');
          assert.match(err.message, new RegExp(`^cannot read .*b/03\\.jpg: .*\\(${errno}\\)$`));
          assert.match(err.hint!, errno === 'EMFILE' ? /ulimit -n/ : /fs\.file-max/);
          return true;
        });
      } finally {
        restore();
      }
      assert.deepEqual(skipped.filter((n) => n.endsWith('03.jpg')), [], 'the image was not skipped');
      assert.deepEqual(readdirSync(dir), ['in'], 'no data set, no report, no temporary file');
    }),
  );
}
