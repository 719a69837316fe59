import { basename } from 'node:path';
import { CelebaGanError, UsageError } from '../errors.js';

/**
 * CelebA's attribute file, `list_attr_celeba.txt`, read and written in its own format:
 *
 *   202599                                        line 1: the number of image rows
 *   5_o_Clock_Shadow Arched_Eyebrows ... Young    line 2: attribute names, space-separated
 *   000001.jpg -1  1  1 -1 ...                    line 3 on: an image name, then one value per
 *                                                 attribute, 1 (has it) or -1, separated by one or
 *                                                 more spaces (CelebA right-aligns them in 2 columns)
 *
 * Reading accepts CRLF line ends, trailing spaces (CelebA's name line has one) and blank lines at
 * the end; everything else that does not fit is an E_ATTR_* error naming the file and the line.
 * Writing reproduces CelebA's layout byte for byte (LF line ends), so an outside tool that reads
 * CelebA's file reads ours.
 */

export const ATTRIBUTE_FILE_NAME = 'list_attr_celeba.txt';

/** CelebA's 40 attributes, in the file's order. */
export const CELEBA_ATTRIBUTES: readonly string[] = Object.freeze([
  '5_o_Clock_Shadow', 'Arched_Eyebrows', 'Attractive', 'Bags_Under_Eyes', 'Bald', 'Bangs', 'Big_Lips', 'Big_Nose',
  'Black_Hair', 'Blond_Hair', 'Blurry', 'Brown_Hair', 'Bushy_Eyebrows', 'Chubby', 'Double_Chin', 'Eyeglasses',
  'Goatee', 'Gray_Hair', 'Heavy_Makeup', 'High_Cheekbones', 'Male', 'Mouth_Slightly_Open', 'Mustache', 'Narrow_Eyes',
  'No_Beard', 'Oval_Face', 'Pale_Skin', 'Pointy_Nose', 'Receding_Hairline', 'Rosy_Cheeks', 'Sideburns', 'Smiling',
  'Straight_Hair', 'Wavy_Hair', 'Wearing_Earrings', 'Wearing_Hat', 'Wearing_Lipstick', 'Wearing_Necklace',
  'Wearing_Necktie', 'Young',
]);

/** Attribute files larger than this are refused before reading (CelebA's is about 26 MB). */
export const MAX_ATTRIBUTE_FILE_BYTES = 256 * 1024 * 1024;

/** A parsed attribute file: `values` holds one row of `names.length` values (+1/-1) per image. */
export interface AttributeTable {
  /** The file, as named in messages (a path, or `<zip> entry <name>`). */
  source: string;
  names: readonly string[];
  /** Image name of each row, in file order. */
  images: readonly string[];
  /** 1-based line number of each row. */
  lines: Uint32Array;
  /** rows x names.length, row-major. */
  values: Int8Array;
}

const FORMAT_HINT = `The file must be in CelebA's ${ATTRIBUTE_FILE_NAME} format: line 1 the number of images, line 2 the attribute names separated by spaces, then one line per image: its file name and one value (1 or -1) per attribute.`;

function formatError(source: string, line: number, what: string, hint = FORMAT_HINT): CelebaGanError {
  return new CelebaGanError('E_ATTR_FORMAT', `${source} line ${line}: ${what}`, { hint });
}

/** Parse the text of an attribute file; `source` names it in errors. */
export function parseAttributeFile(text: string, source: string): AttributeTable {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  while (lines.length > 0 && (lines[lines.length - 1] ?? '').trim() === '') lines.pop();
  const countText = (lines[0] ?? '').trim();
  if (!/^\d+$/.test(countText)) {
    const csv = countText.includes(',') ? ' (this looks like a CSV file, such as Kaggle\'s list_attr_celeba.csv; use the original .txt)' : '';
    throw formatError(source, 1, `expected the number of images, found "${countText.slice(0, 60)}"${csv}`);
  }
  const names = (lines[1] ?? '').trim().split(/\s+/).filter((s) => s !== '');
  if (names.length === 0) throw formatError(source, 2, 'expected the attribute names, found an empty line');
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw formatError(source, 2, `attribute ${n} is named twice`);
    seen.add(n);
  }
  const k = names.length;
  const rows = lines.length - 2;
  const declared = Number(countText);
  if (declared !== rows) {
    throw new CelebaGanError('E_ATTR_COUNT_MISMATCH', `${source} line 1: the count line says ${declared} images, but the file has ${rows} image row${rows === 1 ? '' : 's'} (lines 3..${lines.length})`, {
      hint: 'Fix the count on line 1 to the number of image rows, or restore the rows that are missing (a truncated download?).',
    });
  }
  const images: string[] = new Array<string>(rows);
  const lineNumbers = new Uint32Array(rows);
  const values = new Int8Array(rows * k);
  const rowOf = new Map<string, number>();
  for (let r = 0; r < rows; r++) {
    const line = r + 3;
    const fields = (lines[r + 2] ?? '').trim().split(/\s+/);
    const image = fields[0] ?? '';
    if (image === '') throw formatError(source, line, 'expected an image name and its values, found an empty line');
    if (fields.length - 1 !== k) {
      throw new CelebaGanError('E_ATTR_VALUE_COUNT', `${source} line ${line}: ${image} has ${fields.length - 1} value${fields.length === 2 ? '' : 's'}, but line 2 names ${k} attributes`, {
        hint: 'Each image row needs exactly one value (1 or -1) per attribute named on line 2; fix or remove this row.',
      });
    }
    const earlier = rowOf.get(image);
    if (earlier !== undefined) throw formatError(source, line, `${image} already has a row (line ${lineNumbers[earlier]})`, 'Keep one row per image: remove the duplicate.');
    rowOf.set(image, r);
    for (let a = 0; a < k; a++) {
      const v = fields[a + 1];
      if (v !== '1' && v !== '-1') {
        throw new CelebaGanError('E_ATTR_VALUE', `${source} line ${line}: ${image} has "${v}" for ${names[a]}; values are 1 or -1`, {
          hint: 'Write 1 where the image has the attribute and -1 where it does not (CelebA uses no other values).',
        });
      }
      values[r * k + a] = v === '1' ? 1 : -1;
    }
    images[r] = image;
    lineNumbers[r] = line;
  }
  return { source, names, images, lines: lineNumbers, values };
}

/**
 * Parse `--attr-subset Smiling,Eyeglasses` into names (order kept). Empty entries and names
 * given twice are usage errors; whether each name exists is checked against a file by
 * `selectAttributes`.
 */
export function parseAttributeList(text: string, flag = '--attr-subset'): string[] {
  const names = text.split(',').map((s) => s.trim());
  if (names.some((s) => s === '')) {
    throw new UsageError('E_BAD_ARGUMENT', `Expected attribute names separated by commas for ${flag} but received "${text}"`, {
      hint: `For example ${flag} Smiling,Eyeglasses,Blond_Hair (no empty entries).`,
    });
  }
  const twice = names.find((s, i) => names.indexOf(s) !== i);
  if (twice !== undefined) throw new UsageError('E_BAD_ARGUMENT', `${flag} names ${twice} twice`, { hint: 'Name each attribute once.' });
  return names;
}

/** Keep only `subset` of the table's attributes, in the order given. */
export function selectAttributes(table: AttributeTable, subset: readonly string[]): AttributeTable {
  const k = table.names.length;
  const columns = subset.map((name) => {
    const c = table.names.indexOf(name);
    if (c < 0) {
      throw new UsageError('E_ATTR_UNKNOWN', `--attr-subset names ${name}, which is not an attribute of ${table.source}`, {
        hint: `Its attributes are: ${table.names.join(', ')}.`,
      });
    }
    return c;
  });
  const rows = table.images.length;
  const values = new Int8Array(rows * columns.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < columns.length; j++) values[r * columns.length + j] = table.values[r * k + columns[j]!]!;
  }
  return { ...table, names: [...subset], values };
}

/**
 * For each of `imageNames` (an image source's names, relative paths with `/`), the row of the
 * table that labels it. A row names an image by its full relative name or, as CelebA's file
 * does for the images inside `img_align_celeba/`, by its file name alone when that is unique.
 * Every row must name an image, and every image must have a row.
 */
export function matchRows(table: AttributeTable, imageNames: readonly string[], input: string): Int32Array {
  const byName = new Map<string, number>();
  const byLeaf = new Map<string, number>(); // -1: several images share this file name
  imageNames.forEach((name, i) => {
    byName.set(name, i);
    const leaf = basename(name);
    byLeaf.set(leaf, byLeaf.has(leaf) ? -1 : i);
  });
  const rowOf = new Int32Array(imageNames.length).fill(-1);
  for (let r = 0; r < table.images.length; r++) {
    const image = table.images[r]!;
    let i = byName.get(image);
    if (i === undefined && !image.includes('/')) {
      i = byLeaf.get(image);
      if (i === -1) {
        throw new UsageError('E_ATTR_AMBIGUOUS', `${table.source} line ${table.lines[r]}: ${image} could be any of several images of that name in ${input}`, {
          hint: 'Name each image in the attribute file by its path inside the folder or zip (e.g. part1/000001.jpg), or prepare one subfolder at a time.',
        });
      }
    }
    if (i === undefined) {
      throw new CelebaGanError('E_ATTR_ROW_NO_IMAGE', `${table.source} line ${table.lines[r]}: a row for ${image}, but ${input} has no such image`, {
        hint: 'Use the attribute file that belongs to these images, or remove the rows of images you left out.',
      });
    }
    if (rowOf[i] !== -1) {
      throw formatError(table.source, table.lines[r]!, `${image} is labelled twice (also on line ${table.lines[rowOf[i]!]})`, 'Keep one row per image: remove the duplicate.');
    }
    rowOf[i] = r;
  }
  const missing = imageNames.filter((_, i) => rowOf[i] === -1);
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(', ');
    throw new CelebaGanError('E_ATTR_IMAGE_NO_ROW', `${missing.length} image${missing.length === 1 ? '' : 's'} in ${input} ha${missing.length === 1 ? 's' : 've'} no row in ${table.source}: ${shown}${missing.length > 5 ? ', ...' : ''}`, {
      hint: `Add a row for each image or remove the unlabelled images; to prepare without labels, leave out --attributes and move ${ATTRIBUTE_FILE_NAME} out of the input.`,
    });
  }
  return rowOf;
}

/** CelebA's layout: count line, names line (with CelebA's trailing space), `name -1  1 ...` rows. */
export function formatAttributeFile(names: readonly string[], images: readonly string[], values: Int8Array): string {
  const k = names.length;
  if (values.length !== images.length * k) throw new RangeError(`${images.length} images x ${k} attributes need ${images.length * k} values, got ${values.length}`);
  const out: string[] = [`${images.length}`, `${names.join(' ')} `];
  for (let r = 0; r < images.length; r++) {
    let line = images[r]!;
    for (let a = 0; a < k; a++) line += values[r * k + a] === 1 ? '  1' : ' -1';
    out.push(line);
  }
  return `${out.join('\n')}\n`;
}
