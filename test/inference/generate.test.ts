import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { CelebaGanError } from '../../src/errors.js';
import { defaultPipelineDepth, generateImages, imageFileName, type GenerateOptions } from '../../src/inference/generate.js';
import { openGenerator, type GeneratorSession } from '../../src/inference/session.js';
import { tempDir, writeTinyModel } from './fixtures.js';

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
  return readFileSync(join(dir, 'manifest.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

function faces(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('face-')).sort();
}

test('the same seed gives byte-identical images whatever the batch size (1, 7, 64)', async () => {
  const n = 20;
  const dirs = [1, 7, 64].map(() => freshOut());
  for (const [i, batchSize] of [1, 7, 64].entries()) await generateImages(session, { outDir: dirs[i]!, n, seed: 99, batchSize });
  const names = faces(dirs[0]!);
  assert.equal(names.length, n);
  assert.deepEqual(names, Array.from({ length: n }, (_, i) => imageFileName(i, 'png')));
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

test('bounded memory: 300 images in batches of 16 never hold more than 2 batches at once', async () => {
  const out = freshOut();
  const seen: number[] = [];
  const r = await generateImages(session, { outDir: out, n: 300, seed: 1, batchSize: 16, pipelineDepth: 2, onInFlight: (k) => seen.push(k) });
  assert.equal(Math.max(...seen), 2, 'the next batch ran while the previous one was written, and no further ahead');
  assert.equal(r.maxInFlight, 2);
  assert.equal(seen.at(-1), 0, 'everything written at the end');
  assert.equal(faces(out).length, 300);
  const lines = manifest(out);
  assert.deepEqual(lines.map((l) => l.index), Array.from({ length: 300 }, (_, i) => i), 'manifest in index order, one line per file');

  const deeper: number[] = [];
  await generateImages(session, { outDir: freshOut(), n: 100, seed: 1, batchSize: 8, pipelineDepth: 3, onInFlight: (k) => deeper.push(k) });
  assert.ok(Math.max(...deeper) <= 3);
  assert.ok(deeper.includes(3), 'depth 3 lets two batches be written while a third runs');
  // On the cpu provider the default is one batch at a time (encoding beside onnxruntime only contends for the cores).
  assert.equal(session.providerUsed, 'cpu');
  assert.equal(defaultPipelineDepth('cpu'), 1);
  assert.equal(defaultPipelineDepth('cuda'), 2);
  const serial: number[] = [];
  await generateImages(session, { outDir: freshOut(), n: 40, seed: 1, batchSize: 8, onInFlight: (k) => serial.push(k) });
  assert.equal(Math.max(...serial), 1);
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

test('EXPECTED FAILURE - existing files are not overwritten without --force', async () => {
  const out = freshOut();
  await generateImages(session, { outDir: out, n: 5, seed: 1 });
  writeFileSync(join(out, 'face-000003.png'), 'keep me');
  await assert.rejects(generateImages(session, { outDir: out, n: 5, startIndex: 3, seed: 2 }), (err: CelebaGanError) => {
    assert.equal(err.name, 'UsageError');
    assert.equal(err.code, 'E_OUTPUT_EXISTS');
    assert.match(err.message, /face-000003\.png already exists \(and 1 more\); not overwriting it/);
    assert.match(err.hint!, /--force/);
    return true;
  });
  assert.equal(readFileSync(join(out, 'face-000003.png'), 'utf8'), 'keep me', 'nothing touched');
  // Starting after the existing faces is fine, and --force overwrites.
  await generateImages(session, { outDir: out, n: 2, startIndex: 5, seed: 1 });
  await generateImages(session, { outDir: out, n: 5, seed: 1, force: true });
  assert.equal((await sharp(join(out, 'face-000003.png')).metadata()).format, 'png');
  assert.equal(faces(out).length, 7);
});

test('EXPECTED FAILURE - an output folder that cannot be created', async () => {
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  await assert.rejects(generateImages(session, { outDir: join(file, 'faces'), n: 1, seed: 1 }), (err: CelebaGanError) => {
    assert.equal(err.code, 'E_OUTPUT_UNWRITABLE');
    assert.equal(err.kind, 'usage');
    assert.match(err.message, /^cannot write to output folder .*a-file\/faces: /);
    assert.match(err.hint!, /--out/);
    return true;
  });
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
  assert.ok(r.files.length >= 10 && r.files.length <= 30 && r.files.length % 10 === 0, `${r.files.length} files: whole batches only`);
  assert.deepEqual(faces(out), r.files.map((f) => f.slice(out.length + 1)));
  assert.deepEqual(manifest(out).map((l) => l.index), Array.from({ length: r.files.length }, (_, i) => i));
  assert.deepEqual(readdirSync(out).filter((f) => f.startsWith('.')), [], 'no temp files left');
  assert.equal((await sharp(join(out, 'grid.png')).metadata()).format, 'png');
});
