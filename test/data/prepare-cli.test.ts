import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { spawnSync } from 'node:child_process';
import { cli } from '../support/in-process.js';
import { injectFsError } from '../support/inject.js';
import { startCli, until } from '../inference/run-cli.js';
import { defaultDatasetPath } from '../../src/cli/prepare.js';
import { waitFor } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'cg-prepare-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('prepare --synthetic, then --inspect with a contact sheet', async () => {
  const out = join(dir, 'synthetic-28.cgds');
  const r = await cli('prepare', '--synthetic', '70', '--out', out, '--seed', '9');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^prepared 70 synthetic images, skipped 0 -> .*synthetic-28\.cgds \(\d+ img\/s, seed 9, sha256 [0-9a-f]{16}…\)$/m);
  assert.match(r.stderr, /drawing 70 synthetic faces \(procedural, not photographs\) at 28x28, seed 9/);

  const sheet = join(dir, 'sheet.png');
  const i = await cli('prepare', '--inspect', out, '--sheet', sheet);
  assert.equal(i.code, 0, i.stderr);
  assert.match(i.stdout, /\(SYNTHETIC data set\)/);
  assert.match(i.stdout, /images: +70\n/);
  assert.match(i.stdout, /size: +28x28, 3 channels/);
  assert.match(i.stdout, /synthetic: yes \(procedural faces, not photographs; seed 9\)/);
  assert.match(i.stdout, /verified: +ok/);
  const meta = await sharp(sheet).metadata();
  // 8 columns x 8 rows of 28 px faces upscaled 5x, 2 px gaps.
  assert.deepEqual([meta.width, meta.height, meta.channels], [8 * 140 + 9 * 2, 8 * 140 + 9 * 2, 3]);

  const again = await cli('prepare', '--synthetic', '70', '--out', out);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /error \[E_OUTPUT_EXISTS\]: --out .* already exists\n {2}Pass --force/);
  const forced = await cli('prepare', '--synthetic', '70', '--out', out, '--force', '--seed', '9');
  assert.equal(forced.code, 0);
});

test('prepare --input <folder> reports prepared N, skipped M and the report file', async () => {
  const input = join(dir, 'photos');
  mkdirSync(input, { recursive: true });
  for (let i = 0; i < 3; i++) {
    await sharp({ create: { width: 178, height: 218, channels: 3, background: { r: 40 * i, g: 100, b: 200 } } })
      .jpeg()
      .toFile(join(input, `${i}.jpg`));
  }
  writeFileSync(join(input, 'broken.jpg'), 'not a jpeg');
  const out = join(dir, 'photos-32.cgds');
  const r = await cli('prepare', '--input', input, '--out', out, '--size', '32', '--workers', '2');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^prepared 3, skipped 1 -> /m);
  assert.match(r.stdout, /listed in .*photos-32\.cgds\.skipped\.txt/);
  assert.match(r.stderr, /skipped broken\.jpg: not a readable image/);
  assert.match(r.stderr, /4 images in folder .*photos; crop 108x108 -> 32x32, 2 workers -> /);
  assert.match(readFileSync(`${out}.skipped.txt`, 'utf8'), /^broken\.jpg\t/m);
  const i = await cli('prepare', '--inspect', out);
  assert.equal(i.code, 0);
  assert.match(i.stdout, /synthetic: no \(prepared from images\)/);
  assert.ok(existsSync(join(dir, 'photos-32.sheet.png')), 'default sheet path beside the data set');
});

test('default output paths', () => {
  assert.equal(defaultDatasetPath(undefined, 28), join('data', 'synthetic-28.cgds'));
  assert.equal(defaultDatasetPath('/x/img_align_celeba.zip', 28), join('data', 'img_align_celeba-28.cgds'));
  assert.equal(defaultDatasetPath('photos/', 64), join('data', 'photos-64.cgds'));
});

test('ERROR PATH - usage errors exit 2, runtime failures exit 1', async () => {
  const cases: [string[], number, RegExp][] = [
    [['prepare'], 2, /\[E_BAD_ARGUMENT\]: prepare needs one of --input, --synthetic or --inspect/],
    [['prepare', '--input', join(dir, 'x'), '--synthetic', '5'], 2, /--input and --synthetic cannot be used together/],
    [['prepare', '--synthetic', '5', '--sheet', 'a.png'], 2, /--sheet only applies with --inspect/],
    [['prepare', '--input', join(dir, 'missing')], 2, /\[E_INPUT_MISSING\]: --input .*missing does not exist/],
    [['prepare', '--synthetic', '5', '--size', '2', '--out', join(dir, 'tiny.cgds')], 2, /Expected integer between 4 and 1024 for --size but received 2 of type number/],
    [['prepare', '--synthetic', '-3', '--out', join(dir, 'neg.cgds')], 2, /Expected integer between 1 and 10000000 for --synthetic/],
    [['prepare', '--inspect', join(dir, 'none.cgds')], 2, /\[E_DATASET_MISSING\]/],
    [['prepare', '--bogus'], 2, /^celeba-gan: Unknown argument: bogus\n {2}See `celeba-gan prepare --help` for the options and examples\.\n$/],
  ];
  for (const [args, code, pattern] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
  }
  const bad = join(dir, 'corrupt.cgds');
  const good = join(dir, 'for-corrupt-28.cgds'); // its own, so this test runs alone too
  assert.equal((await cli('prepare', '--synthetic', '5', '--out', good)).code, 0);
  const bytes = readFileSync(good);
  bytes[64 + 10]! ^= 0xff; // a pixel (the file ends with the synthetic labels' attribute table)
  writeFileSync(bad, bytes);
  const r = await cli('prepare', '--inspect', bad);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[E_DATASET_CORRUPT\]: .*corrupt\.cgds is not a valid celeba-gan dataset: checksum of the pixels, labels and header fields/);
});

test('Ctrl-C during prepare: exit 130, a clear message, no file left behind', async () => {
  const folder = join(dir, 'interrupted');
  mkdirSync(folder);
  const out = join(folder, 'big.cgds');
  let settled = false;
  const running = cli('prepare', '--synthetic', '2000000', '--out', out).finally(() => (settled = true));
  // The handler listens for SIGINT once it has started; deliver the event to it (no real signal).
  await waitFor(() => settled || process.listenerCount('SIGINT') > 0, { timeoutMs: 60_000, what: "prepare's SIGINT handler", intervalMs: 5 });
  assert.equal(settled, false, 'prepare ended before it could be interrupted');
  process.emit('SIGINT', 'SIGINT');
  const r = await running;
  assert.equal(r.code, 130);
  assert.match(r.stderr, /prepare was interrupted; nothing was written to .*big\.cgds \(SIGINT\)/);
  assert.equal(process.listenerCount('SIGINT'), 0, 'the handler is removed afterwards');
  assert.deepEqual(readdirSync(folder), []);
});

test('SIGINT during prepare with control characters in --out: every line names the path escaped', { timeout: 120_000 }, async () => {
  const folder = join(dir, 'interrupted-escaped');
  mkdirSync(folder);
  const out = join(folder, 'big\x1b[2J\r.cgds');
  const running = startCli(['prepare', '--synthetic', '2000000', '--out', out]);
  try {
    await until(() => running.stderr().includes('drawing 2000000'), running.child);
    running.child.kill('SIGINT');
    const r = await running.result;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /SIGINT: stopping after the images being decoded now; .*big\\x1b\[2J\\x0d\.cgds will not be written/);
    assert.match(r.stderr, /nothing was written to .*big\\x1b\[2J\\x0d\.cgds \(SIGINT\)/);
    assert.doesNotMatch(r.stderr, /[\x1b\r]/, 'no raw escape or carriage return reaches the terminal');
    assert.deepEqual(readdirSync(folder), []);
  } finally {
    running.child.kill('SIGKILL');
  }
});

test('ERROR PATH - prepare: SVG named .jpg is skipped by content before sharp sees it; only JPEG, PNG, WebP are accepted', async () => {
  const input = join(dir, 'mixed');
  mkdirSync(input, { recursive: true });
  const face = sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 200, g: 150, b: 120 } } });
  await face.clone().jpeg().toFile(join(input, 'a.jpg'));
  await face.clone().png().toFile(join(input, 'b.png'));
  await face.clone().webp().toFile(join(input, 'c.webp'));
  // Real SVG content that sharp would rasterise (fonts and all) if it got the bytes.
  writeFileSync(join(input, 'd.jpg'), '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><text x="0" y="20" font-family="Sans">hi</text></svg>');
  // A GIF named .png.
  writeFileSync(join(input, 'e.png'), Buffer.from('474946383961010001000000002c00000000010001000002', 'hex'));
  const out = join(dir, 'mixed-28.cgds');
  const r = await cli('prepare', '--input', input, '--out', out, '--crop', '0', '--workers', '1');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^prepared 3, skipped 2 -> /m);
  const report = readFileSync(`${out}.skipped.txt`, 'utf8');
  assert.match(report, /^d\.jpg\tnot a readable image: unsupported image format: SVG\/XML text; only JPEG, PNG and WebP are accepted \(decided by content, not by the name\)$/m);
  assert.match(report, /^e\.png\tnot a readable image: unsupported image format: a GIF; only JPEG, PNG and WebP/m);
});

test('ERROR PATH - escape sequences in file names never reach the terminal raw', async () => {
  const input = join(dir, 'ansi');
  mkdirSync(input, { recursive: true });
  await sharp({ create: { width: 30, height: 30, channels: 3, background: { r: 1, g: 2, b: 3 } } }).jpeg().toFile(join(input, 'ok.jpg'));
  const evil = '\x1b[2J\x1b[31mred\x07.jpg';
  writeFileSync(join(input, evil), 'not an image');
  const r = await cli('prepare', '--input', input, '--out', join(dir, 'ansi-28.cgds'), '--crop', '0');
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr + r.stdout, /[\x00-\x08\x0b-\x1f\x7f]/, 'no control characters printed');
  assert.ok(r.stderr.includes('skipped \\x1b[2J\\x1b[31mred\\x07.jpg: not a readable image'), r.stderr);
  // An error naming such a path is escaped by main.ts too.
  const missing = await cli('prepare', '--input', join(dir, 'no\x1b[31mpe'), '--out', join(dir, 'x.cgds'));
  assert.equal(missing.code, 2);
  assert.ok(missing.stderr.includes('no\\x1b[31mpe does not exist'), missing.stderr);
  assert.doesNotMatch(missing.stderr, /\x1b/);
});

test('ERROR PATH - a failed prepare removes the folders it created; existing ones stay', async () => {
  const empty = join(dir, 'no-images');
  mkdirSync(empty, { recursive: true });
  const out = join(dir, 'fresh', 'deeper', 'x.cgds');
  const r = await cli('prepare', '--input', empty, '--out', out);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[E_NO_IMAGES\]/);
  assert.equal(existsSync(join(dir, 'fresh')), false, 'fresh/deeper/ removed');
  assert.ok(existsSync(empty));
  // Out of space while writing: the same, and the error names the data set, not a temp file.
  const restore = injectFsError('writeSync', 'ENOSPC');
  let full;
  try {
    full = await cli('prepare', '--synthetic', '10', '--out', join(dir, 'fresh2', 'y.cgds'));
  } finally {
    restore();
  }
  assert.equal(full.code, 1);
  assert.match(full.stderr, /error \[E_NO_SPACE\]: cannot write .*fresh2\/y\.cgds: no space left/);
  assert.doesNotMatch(full.stderr, /unexpected error|\.tmp/);
  assert.equal(existsSync(join(dir, 'fresh2')), false);
});

test('crash leftovers: prepare reports and removes a killed prepare\'s .x.cgds.*.tmp (and leaves other files alone)', async () => {
  const data = join(dir, 'leftovers');
  mkdirSync(data, { recursive: true });
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  const stale = join(data, `.faces-28.cgds.${dead}.lz0.tmp`);
  writeFileSync(stale, Buffer.alloc(1000));
  writeFileSync(join(data, `.notes.txt.${dead}.lz0.tmp`), 'not prepare\'s');
  const r = await cli('prepare', '--synthetic', '5', '--out', join(data, 'other-28.cgds'));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.includes(`removed ${stale} (left by an interrupted prepare of faces-28.cgds)`), r.stderr);
  assert.deepEqual(readdirSync(data).sort(), [`.notes.txt.${dead}.lz0.tmp`, 'other-28.cgds']);
});

test('prepare --synthetic N --out <folder>/ writes PNGs and list_attr_celeba.txt; --input reads them back labelled; --inspect lists the labels', async () => {
  const faces = join(dir, 'faces');
  const w = await cli('prepare', '--synthetic', '12', '--out', `${faces}/`, '--seed', '4', '--attr-subset', 'Smiling,Eyeglasses');
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /^wrote 12 synthetic faces and .*faces\/list_attr_celeba\.txt \(Smiling, Eyeglasses\) -> .*faces$/m);
  assert.equal(readdirSync(faces).length, 13);
  assert.equal(readFileSync(join(faces, 'list_attr_celeba.txt'), 'utf8').split('\n')[1], 'Smiling Eyeglasses ');

  const out = join(dir, 'faces-28.cgds');
  const p = await cli('prepare', '--input', faces, '--crop', '0', '--out', out);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stderr, /labels: 2 attributes from .*faces\/list_attr_celeba\.txt/);
  assert.match(p.stdout, /^prepared 12, skipped 0 -> /m);
  const i = await cli('prepare', '--inspect', out);
  assert.equal(i.code, 0, i.stderr);
  assert.match(i.stdout, /labels: +2 attributes: Smiling \d+\.\d%, Eyeglasses \d+\.\d%\n/);
  assert.match(i.stdout, /format: +version 3/);
});

test('ERROR PATH - attribute flags and files through the CLI: usage errors exit 2, a bad file exits 1 naming the line', async () => {
  const photos = join(dir, 'labelled-photos');
  mkdirSync(photos);
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toFile(join(photos, 'a.png'));
  writeFileSync(join(photos, 'list_attr_celeba.txt'), '1\nSmiling Male\na.png 1 yes\n');
  const cases: [string[], number, RegExp][] = [
    [['prepare', '--synthetic', '5', '--attributes', 'x.txt'], 2, /\[E_BAD_ARGUMENT\]: --attributes only applies with --input/],
    [['prepare', '--inspect', 'x.cgds', '--attr-subset', 'Smiling'], 2, /\[E_BAD_ARGUMENT\]: --attr-subset does not apply with --inspect/],
    [['prepare', '--synthetic', '5', '--out', join(dir, 'u.cgds'), '--attr-subset', 'Smiling,Male'], 2, /\[E_ATTR_UNKNOWN\]: --attr-subset names Male, which synthetic faces do not carry\n {2}Synthetic faces carry: Bangs, /],
    [['prepare', '--synthetic', '5', '--out', join(dir, 'u.cgds'), '--attr-subset', 'Smiling,'], 2, /\[E_BAD_ARGUMENT\]: Expected attribute names separated by commas/],
    [['prepare', '--input', photos, '--out', join(dir, 'v.cgds')], 1, /\[E_ATTR_VALUE\]: .*list_attr_celeba\.txt line 3: a\.png has "yes" for Male; values are 1 or -1/],
    [['prepare', '--input', photos, '--out', join(dir, 'v.cgds'), '--attributes', join(dir, 'absent.txt')], 2, /\[E_ATTR_MISSING\]: --attributes .*absent\.txt does not exist/],
  ];
  for (const [args, code, pattern] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
  }
  assert.equal(existsSync(join(dir, 'u.cgds')) || existsSync(join(dir, 'v.cgds')), false, 'nothing written');
});
