import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yazl from 'yazl';
import { DatasetReader } from '../../src/data/dataset-file.js';
import { prepareFromImages } from '../../src/data/prepare.js';
import { SYNTHETIC_ATTRIBUTES, exportSyntheticFolder, renderLabelledFace } from '../../src/data/synthetic.js';
import { ATTRIBUTE_FILE_NAME, parseAttributeFile } from '../../src/data/attributes.js';

const dir = mkdtempSync(join(tmpdir(), 'cg-prepare-labels-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const COUNT = 24;
const SIZE = 28;
const SEED = 3;

/** The labels the synthetic maker draws for images 0..count-1, K per image. */
function drawnLabels(count: number, names: readonly string[] = SYNTHETIC_ATTRIBUTES): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const { labels } = renderLabelledFace(SEED, i, SIZE);
    for (const n of names) out.push(labels[SYNTHETIC_ATTRIBUTES.indexOf(n)]!);
  }
  return out;
}

let exported: string | null = null;
/** One export shared by the tests that read it (copied where a test changes it). */
async function exportOnce(): Promise<string> {
  if (exported === null) {
    exported = join(dir, 'faces');
    await exportSyntheticFolder({ count: COUNT, out: `${exported}/`, size: SIZE, seed: SEED });
  }
  return exported;
}

function copyOf(folder: string, name: string): string {
  const to = join(dir, name);
  mkdirSync(to);
  for (const f of readdirSync(folder)) writeFileSync(join(to, f), readFileSync(join(folder, f)));
  return to;
}

test('synthetic -> PNG folder + list_attr_celeba.txt -> prepare: labels intact, pixels identical', async () => {
  const folder = await exportOnce();
  const files = readdirSync(folder).sort();
  assert.deepEqual(files, [...Array.from({ length: COUNT }, (_, i) => `${String(i + 1).padStart(6, '0')}.png`), ATTRIBUTE_FILE_NAME].sort());
  const text = readFileSync(join(folder, ATTRIBUTE_FILE_NAME), 'utf8');
  // CelebA's layout: count, names with a trailing space, `000001.png -1  1 ...`.
  const lines = text.split('\n');
  assert.equal(lines[0], String(COUNT));
  assert.equal(lines[1], `${SYNTHETIC_ATTRIBUTES.join(' ')} `);
  assert.match(lines[2]!, /^000001\.png( -1| {2}1){10}$/);

  const out = join(dir, 'round-trip.cgds');
  const r = await prepareFromImages({ input: folder, out, size: SIZE, crop: 0 });
  assert.equal(r.prepared, COUNT);
  assert.deepEqual(r.skipped, [], 'the attribute file is an input, not a skipped file');
  assert.deepEqual(r.attributes, { source: join(folder, ATTRIBUTE_FILE_NAME), names: SYNTHETIC_ATTRIBUTES });
  const reader = new DatasetReader(out);
  reader.verify();
  const all = Array.from({ length: COUNT }, (_, i) => i);
  assert.deepEqual([...reader.readLabels(all)], drawnLabels(COUNT));
  assert.deepEqual(reader.attributes?.names, SYNTHETIC_ATTRIBUTES);
  const expected = new Uint8Array(COUNT * SIZE * SIZE * 3);
  for (const i of all) renderLabelledFace(SEED, i, SIZE, expected, i * SIZE * SIZE * 3);
  assert.deepEqual(reader.read(all), expected, 'PNG is lossless and a same-size resize is the identity');
  reader.close();
});

test('--attributes from elsewhere and --attr-subset keep the named attributes in order', async () => {
  const folder = copyOf(await exportOnce(), 'moved');
  const attrs = join(dir, 'elsewhere.txt');
  renameSync(join(folder, ATTRIBUTE_FILE_NAME), attrs);
  const out = join(dir, 'subset.cgds');
  const subset = ['Smiling', 'Eyeglasses', 'Blond_Hair'];
  const r = await prepareFromImages({ input: folder, out, size: SIZE, crop: 0, attributes: attrs, attrSubset: subset, limit: 10 });
  assert.deepEqual(r.attributes?.names, subset);
  const reader = new DatasetReader(out);
  assert.deepEqual([...reader.readLabels(Array.from({ length: 10 }, (_, i) => i))], drawnLabels(10, subset));
  const counts = subset.map((_, a) => drawnLabels(10, subset).filter((v, j) => j % 3 === a && v === 1).length);
  assert.deepEqual(reader.attributes?.frequencies, counts.map((c) => c / 10));
  reader.close();
});

test('a zip holding the images and list_attr_celeba.txt (CelebA-style bare names) is labelled with no flag', async () => {
  const folder = await exportOnce();
  const zip = new yazl.ZipFile();
  for (const f of readdirSync(folder)) {
    const inZip = f === ATTRIBUTE_FILE_NAME ? `Anno/${f}` : `img_align_celeba/${f}`;
    zip.addBuffer(readFileSync(join(folder, f)), inZip);
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  const zipPath = join(dir, 'faces.zip');
  writeFileSync(zipPath, Buffer.concat(chunks));
  const out = join(dir, 'zip.cgds');
  const r = await prepareFromImages({ input: zipPath, out, size: SIZE, crop: 0 });
  assert.equal(r.attributes?.source, `${zipPath} entry Anno/${ATTRIBUTE_FILE_NAME}`);
  assert.deepEqual(r.skipped, []);
  const reader = new DatasetReader(out);
  assert.deepEqual([...reader.readLabels(Array.from({ length: COUNT }, (_, i) => i))], drawnLabels(COUNT));
  reader.close();
});

test('a folder with no attribute file gives an unlabelled, version-2 data set as before', async () => {
  const folder = copyOf(await exportOnce(), 'plain');
  rmSync(join(folder, ATTRIBUTE_FILE_NAME));
  const out = join(dir, 'plain.cgds');
  const r = await prepareFromImages({ input: folder, out, size: SIZE, crop: 0 });
  assert.equal(r.attributes, null);
  const reader = new DatasetReader(out);
  assert.equal(reader.header.version, 2);
  assert.equal(reader.attributes, undefined);
  reader.close();
});

/** Write `text` as the folder's attribute file; returns the folder. */
function withAttributeText(name: string, edit: (lines: string[]) => string[]): string {
  const folder = copyOf(exported!, name);
  const lines = readFileSync(join(folder, ATTRIBUTE_FILE_NAME), 'utf8').split('\n');
  writeFileSync(join(folder, ATTRIBUTE_FILE_NAME), edit(lines).join('\n'));
  return folder;
}

test('ERROR PATH - bad attribute files stop prepare before any image, naming the file and line; nothing is written', async () => {
  await exportOnce();
  const cases: [string, (l: string[]) => string[], string, RegExp][] = [
    ['a row for a missing image', (l) => [String(COUNT + 1), ...l.slice(1, -1), `999999.png${'  1'.repeat(10)}`, ''], 'E_ATTR_ROW_NO_IMAGE', /list_attr_celeba\.txt line 27: a row for 999999\.png, but .* has no such image/],
    ['an image with no row', (l) => [String(COUNT - 1), ...l.slice(1, 4), ...l.slice(5)], 'E_ATTR_IMAGE_NO_ROW', /1 image in .* has no row in .*list_attr_celeba\.txt: 000003\.png/],
    ['a wrong value count', (l) => l.map((s, i) => (i === 6 ? `${s} -1` : s)), 'E_ATTR_VALUE_COUNT', /line 7: 000005\.png has 11 values, but line 2 names 10 attributes/],
    ['a value other than 1/-1', (l) => l.map((s, i) => (i === 2 ? s.replace(/-?1$/, '2') : s)), 'E_ATTR_VALUE', /line 3: 000001\.png has "2" for Smiling; values are 1 or -1/],
    ['a count line that disagrees', (l) => ['25', ...l.slice(1)], 'E_ATTR_COUNT_MISMATCH', /line 1: the count line says 25 images, but the file has 24 image rows/],
  ];
  for (const [what, edit, code, message] of cases) {
    const folder = withAttributeText(what.replace(/\W+/g, '-'), edit);
    const out = join(dir, 'errors', `${code}.cgds`);
    await assert.rejects(prepareFromImages({ input: folder, out, size: SIZE, crop: 0 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, code, `${what}: ${err.message}`);
      assert.match(err.message, message, what);
      return true;
    });
    assert.equal(existsSync(out), false, `${what}: no data set`);
    assert.deepEqual(existsSync(join(dir, 'errors')) ? readdirSync(join(dir, 'errors')) : [], [], `${what}: no temporary file`);
  }
});

test('ERROR PATH - attribute flags: a missing --attributes, an unknown --attr-subset name, a subset with no file, two attribute files', async () => {
  const folder = await exportOnce();
  const out = join(dir, 'flags.cgds');
  const run = (opts: { attributes?: string; attrSubset?: string[]; input?: string }) =>
    prepareFromImages({ input: opts.input ?? folder, out, size: SIZE, crop: 0, attributes: opts.attributes, attrSubset: opts.attrSubset });
  const expectError = (code: string, message: RegExp, kind: string) => (err: Error & { code?: string; kind?: string; hint?: string }) => {
    assert.equal(err.code, code, err.message);
    assert.equal(err.kind, kind);
    assert.match(`${err.message}\n${err.hint}`, message);
    return true;
  };
  await assert.rejects(run({ attributes: join(dir, 'nope.txt') }), expectError('E_ATTR_MISSING', /--attributes .*nope\.txt does not exist/, 'usage'));
  await assert.rejects(run({ attrSubset: ['Smiling', 'Wearing_Hat'] }), expectError('E_ATTR_UNKNOWN', /names Wearing_Hat, which is not an attribute of .*\nIts attributes are: Bangs, Black_Hair, .*, Smiling\./, 'usage'));
  const plain = copyOf(folder, 'no-attrs');
  rmSync(join(plain, ATTRIBUTE_FILE_NAME));
  await assert.rejects(run({ input: plain, attrSubset: ['Smiling'] }), expectError('E_ATTR_MISSING', /--attr-subset needs an attribute file, and .* holds no list_attr_celeba\.txt/, 'usage'));
  const two = copyOf(folder, 'two');
  mkdirSync(join(two, 'Anno'));
  writeFileSync(join(two, 'Anno', ATTRIBUTE_FILE_NAME), readFileSync(join(folder, ATTRIBUTE_FILE_NAME)));
  await assert.rejects(run({ input: two }), expectError('E_ATTR_AMBIGUOUS', /holds 2 attribute files: Anno\/list_attr_celeba\.txt, list_attr_celeba\.txt\nSay which one/, 'usage'));
  assert.equal(existsSync(out), false);
  // A parse of the file the export wrote, to show the cases above started from a valid file.
  assert.equal(parseAttributeFile(readFileSync(join(folder, ATTRIBUTE_FILE_NAME), 'utf8'), 'x').images.length, COUNT);
});

test('ERROR PATH - a folder --out that holds other files is never replaced; an earlier export is, with overwrite', async () => {
  const taken = join(dir, 'taken');
  mkdirSync(taken);
  writeFileSync(join(taken, 'mine.txt'), 'keep me');
  for (const overwrite of [false, true]) {
    await assert.rejects(exportSyntheticFolder({ count: 3, out: `${taken}/`, size: SIZE, seed: 1, overwrite }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_OUTPUT_EXISTS');
      assert.match(err.message, /is a folder that already holds 1 file/);
      return true;
    });
  }
  assert.equal(readFileSync(join(taken, 'mine.txt'), 'utf8'), 'keep me');
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temporary folder left');

  const again = join(dir, 'again');
  await exportSyntheticFolder({ count: 3, out: again, size: SIZE, seed: 1 });
  await assert.rejects(exportSyntheticFolder({ count: 2, out: again, size: SIZE, seed: 1 }), { code: 'E_OUTPUT_EXISTS' });
  await exportSyntheticFolder({ count: 2, out: again, size: SIZE, seed: 1, overwrite: true });
  assert.equal(readdirSync(again).length, 3, 'two images and the attribute file');
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  await exportSyntheticFolder({ count: 2, out: empty, size: SIZE, seed: 1 });
  assert.equal(readdirSync(empty).length, 3);
});
