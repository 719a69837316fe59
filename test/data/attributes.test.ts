import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CELEBA_ATTRIBUTES,
  formatAttributeFile,
  matchRows,
  parseAttributeFile,
  parseAttributeList,
  selectAttributes,
} from '../../src/data/attributes.js';

/** CelebA's first two rows, as its list_attr_celeba.txt has them (header line with its trailing space). */
const CELEBA_HEAD =
  `2\n${CELEBA_ATTRIBUTES.join(' ')} \n` +
  '000001.jpg -1  1  1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1  1  1 -1  1 -1 -1  1 -1 -1  1 -1 -1 -1  1  1 -1  1 -1  1 -1 -1  1\n' +
  '000002.jpg -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1 -1  1 -1 -1  1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1\n';

function errorOf(fn: () => unknown): Error & { code?: string; kind?: string; hint?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error');
}

test('CelebA\'s own rows parse: 40 names in order, 1/-1 values by position', () => {
  const t = parseAttributeFile(CELEBA_HEAD, 'list_attr_celeba.txt');
  assert.deepEqual(t.names, CELEBA_ATTRIBUTES);
  assert.deepEqual(t.images, ['000001.jpg', '000002.jpg']);
  assert.deepEqual([...t.lines], [3, 4]);
  const value = (row: number, name: string) => t.values[row * 40 + t.names.indexOf(name)];
  // 000001.jpg: Arched_Eyebrows, Attractive, Smiling, Young yes; Male, Eyeglasses no.
  assert.deepEqual(['Arched_Eyebrows', 'Attractive', 'Smiling', 'Young', 'Male', 'Eyeglasses'].map((n) => value(0, n)), [1, 1, 1, 1, -1, -1]);
  assert.equal(value(1, 'Big_Nose'), 1);
});

test('written in CelebA\'s exact layout: formatting what was parsed gives the same bytes', () => {
  const t = parseAttributeFile(CELEBA_HEAD, 'x');
  assert.equal(formatAttributeFile(t.names, t.images, t.values), CELEBA_HEAD);
});

test('CRLF line ends, runs of spaces, tabs and blank lines at the end are read alike', () => {
  const text = '2\r\nSmiling   Eyeglasses\r\na.png\t1 -1\r\nb.png   -1     1  \r\n\r\n\n';
  const t = parseAttributeFile(text, 'x');
  assert.deepEqual(t.names, ['Smiling', 'Eyeglasses']);
  assert.deepEqual([...t.values], [1, -1, -1, 1]);
});

test('--attr-subset keeps the named attributes in the order given', () => {
  const t = selectAttributes(parseAttributeFile(CELEBA_HEAD, 'x'), parseAttributeList('Young, Male,Smiling'));
  assert.deepEqual(t.names, ['Young', 'Male', 'Smiling']);
  assert.deepEqual([...t.values], [1, -1, 1, 1, -1, 1]);
});

test('rows match images by full relative name, or by file name alone when that is unique', () => {
  const t = parseAttributeFile('3\nSmiling\n000002.jpg 1\nimg/000001.jpg -1\nb/x.jpg 1\n', 'attrs');
  const images = ['a/x.jpg', 'b/x.jpg', 'img/000001.jpg', 'img_align_celeba/000002.jpg'];
  const rows = matchRows({ ...t }, images.filter((n) => n !== 'a/x.jpg'), 'input');
  assert.deepEqual([...rows], [2, 1, 0]);
});

const BAD_FILES: [string, string, string, RegExp][] = [
  ['the count line is not a number', 'x\nSmiling\n', 'E_ATTR_FORMAT', /^f line 1: expected the number of images, found "x"$/],
  ['a CSV file', 'image_id,5_o_Clock_Shadow\n000001.jpg,-1\n', 'E_ATTR_FORMAT', /line 1: .*looks like a CSV file/],
  ['no names', '1\n   \na.jpg\n', 'E_ATTR_FORMAT', /^f line 2: expected the attribute names, found an empty line$/],
  ['a name twice', '0\nSmiling Smiling\n', 'E_ATTR_FORMAT', /^f line 2: attribute Smiling is named twice$/],
  ['the count line disagrees', '3\nSmiling\na.jpg 1\nb.jpg -1\n', 'E_ATTR_COUNT_MISMATCH', /^f line 1: the count line says 3 images, but the file has 2 image rows \(lines 3\.\.4\)$/],
  ['a row with too few values', '2\nSmiling Male\na.jpg 1 1\nb.jpg 1\n', 'E_ATTR_VALUE_COUNT', /^f line 4: b\.jpg has 1 value, but line 2 names 2 attributes$/],
  ['a row with too many values', '1\nSmiling\na.jpg 1 -1\n', 'E_ATTR_VALUE_COUNT', /^f line 3: a\.jpg has 2 values, but line 2 names 1 attributes$/],
  ['a value of 0', '2\nSmiling Male\na.jpg 1 1\nb.jpg 1 0\n', 'E_ATTR_VALUE', /^f line 4: b\.jpg has "0" for Male; values are 1 or -1$/],
  ['a value of +1', '1\nSmiling\na.jpg +1\n', 'E_ATTR_VALUE', /^f line 3: a\.jpg has "\+1" for Smiling/],
  ['an empty line among the rows', '2\nSmiling\n\na.jpg 1\n', 'E_ATTR_FORMAT', /^f line 3: expected an image name and its values, found an empty line$/],
  ['an image twice', '2\nSmiling\na.jpg 1\na.jpg -1\n', 'E_ATTR_FORMAT', /^f line 4: a\.jpg already has a row \(line 3\)$/],
];

for (const [what, text, code, message] of BAD_FILES) {
  test(`ERROR PATH - attribute file: ${what} -> ${code} naming the file and line`, () => {
    const err = errorOf(() => parseAttributeFile(text, 'f'));
    assert.equal(err.code, code);
    assert.equal(err.kind, 'runtime');
    assert.match(err.message, message);
    assert.ok(err.hint && err.hint.length > 20, 'says what to do');
  });
}

test('ERROR PATH - --attr-subset: an unknown name lists the known ones; empty entries and repeats are usage errors', () => {
  const t = parseAttributeFile('1\nSmiling Male\na.jpg 1 1\n', 'list_attr_celeba.txt');
  const unknown = errorOf(() => selectAttributes(t, ['Smiling', 'Smilling']));
  assert.equal(unknown.code, 'E_ATTR_UNKNOWN');
  assert.equal(unknown.kind, 'usage');
  assert.match(unknown.message, /--attr-subset names Smilling, which is not an attribute of list_attr_celeba\.txt/);
  assert.equal(unknown.hint, 'Its attributes are: Smiling, Male.');
  for (const [text, message] of [
    ['Smiling,,Male', /Expected attribute names separated by commas for --attr-subset but received "Smiling,,Male"/],
    ['', /received ""/],
    ['Male,Smiling,Male', /--attr-subset names Male twice/],
  ] as const) {
    const err = errorOf(() => parseAttributeList(text));
    assert.equal(err.code, 'E_BAD_ARGUMENT');
    assert.equal(err.kind, 'usage');
    assert.match(err.message, message);
  }
});

test('ERROR PATH - rows and images that do not match: a row for a missing image, an image with no row, an ambiguous name', () => {
  const t = parseAttributeFile('2\nSmiling\na.jpg 1\nz.jpg -1\n', 'attrs.txt');
  const noImage = errorOf(() => matchRows(t, ['a.jpg'], 'photos'));
  assert.equal(noImage.code, 'E_ATTR_ROW_NO_IMAGE');
  assert.equal(noImage.message, 'attrs.txt line 4: a row for z.jpg, but photos has no such image');

  const noRow = errorOf(() => matchRows(t, ['a.jpg', 'z.jpg', 'sub/q.jpg', 'w.jpg'], 'photos'));
  assert.equal(noRow.code, 'E_ATTR_IMAGE_NO_ROW');
  assert.equal(noRow.message, '2 images in photos have no row in attrs.txt: sub/q.jpg, w.jpg');

  const ambiguous = errorOf(() => matchRows(t, ['p1/a.jpg', 'p2/a.jpg', 'z.jpg'], 'photos'));
  assert.equal(ambiguous.code, 'E_ATTR_AMBIGUOUS');
  assert.equal(ambiguous.kind, 'usage');
  assert.match(ambiguous.message, /^attrs\.txt line 3: a\.jpg could be any of several images of that name in photos$/);

  const twice = parseAttributeFile('2\nSmiling\nsub/a.jpg 1\na.jpg -1\n', 'attrs.txt');
  const labelledTwice = errorOf(() => matchRows(twice, ['sub/a.jpg'], 'photos'));
  assert.equal(labelledTwice.code, 'E_ATTR_FORMAT');
  assert.match(labelledTwice.message, /line 4: a\.jpg is labelled twice \(also on line 3\)/);
});
