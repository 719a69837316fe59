import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSpec } from '../config/presets.js';
import { DatasetReader } from '../data/dataset-file.js';
import { CelebaGanError, UsageError, fileError } from '../errors.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { countLabelRows, decodeRowTable, type LabelRowTable } from '../onnx/attribute-rows.js';
import { writeFileAtomicSync } from '../util/atomic.js';

/**
 * What a conditional run keeps of its data set's labels.
 *
 *   <run>/attribute-rows.json   {"attributes": [names...], "table": {"images", "rows", "counts"}}
 *
 * `table` is the training data's distinct label rows with their counts (src/onnx/attribute-rows.ts),
 * counted when the run starts and written beside run.json. `export` puts it in the model
 * (celeba_gan.attribute_rows) from here, not from the data set: the data file may have moved or
 * been deleted since training, and the rows of the images a model was trained on belong to the
 * run. A resume whose folder lacks the file counts them again (the data set's checksum is the
 * run's, so the rows are the same).
 */

export const ATTRIBUTE_ROWS_FILE = 'attribute-rows.json';

interface AttributeRowsFile {
  attributes: string[];
  table: LabelRowTable;
}

/**
 * The spec of a conditional run on `dataPath`: the preset at `width`, conditional on the data set's
 * attributes with their training frequencies. E_NO_LABELS when the data set has no labels.
 */
export function conditionalSpec(preset: string, width: number, dataPath: string): ArchitectureSpec {
  const reader = new DatasetReader(dataPath);
  try {
    const attributes = reader.attributes;
    if (!attributes) {
      throw new UsageError('E_NO_LABELS', `conditional training needs a labelled data set, but ${dataPath} has no attribute labels`, {
        hint:
          'Prepare a labelled one: `celeba-gan prepare --input <images> --attributes list_attr_celeba.txt` (CelebA), or ' +
          '`celeba-gan prepare --synthetic 20000` (synthetic faces carry attributes); or leave out --conditional.',
      });
    }
    return buildSpec(preset, width, { attributes: attributes.names, frequencies: attributes.frequencies });
  } finally {
    reader.close();
  }
}

/** The label rows of a conditional spec's data set (in chunks: memory is one entry per distinct row). */
export function countRunLabelRows(reader: DatasetReader, spec: ArchitectureSpec): LabelRowTable {
  const k = spec.conditioning?.attributes.length ?? 0;
  if (k === 0) throw new Error('countRunLabelRows: the spec is not conditional');
  return countLabelRows(reader, k).table();
}

function rowsPath(runDir: string): string {
  return join(runDir, ATTRIBUTE_ROWS_FILE);
}

/** Write <run>/attribute-rows.json atomically. */
export function writeAttributeRows(runDir: string, spec: ArchitectureSpec, table: LabelRowTable): void {
  const file: AttributeRowsFile = { attributes: [...(spec.conditioning?.attributes ?? [])], table };
  writeFileAtomicSync(rowsPath(runDir), `${JSON.stringify(file)}\n`);
}

/** Whether the run folder holds its label rows. */
export function hasAttributeRows(runDir: string): boolean {
  return existsSync(rowsPath(runDir));
}

/**
 * The run's label rows, checked against the spec's attributes; null when the file is absent.
 * A damaged file is E_RUN_CORRUPT naming it, with the fix (delete it and resume, which counts again).
 */
export function readAttributeRows(runDir: string, spec: ArchitectureSpec): LabelRowTable | null {
  const path = rowsPath(runDir);
  if (!existsSync(path)) return null;
  const names = spec.conditioning?.attributes ?? [];
  const corrupt = (why: string, cause?: unknown): CelebaGanError =>
    new CelebaGanError('E_RUN_CORRUPT', `${path} ${why}`, {
      hint: `Delete ${path} and run \`celeba-gan train --out ${runDir} --resume\` once (it counts the rows again from the run's data set).`,
      cause,
    });
  let file: AttributeRowsFile;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as AttributeRowsFile;
  } catch (err) {
    const mapped = fileError(err, path, 'read');
    if (mapped !== err) throw mapped;
    throw corrupt(`cannot be read as JSON (${(err as Error).message})`, err);
  }
  if (!Array.isArray(file?.attributes) || JSON.stringify(file.attributes) !== JSON.stringify(names)) {
    throw corrupt(`lists the attributes ${JSON.stringify(file?.attributes)}, but the run's model has ${JSON.stringify(names)}`);
  }
  try {
    decodeRowTable(file.table, names.length, path);
  } catch (err) {
    throw corrupt(`holds a bad row table (${(err as Error).message})`, err);
  }
  return { images: file.table.images, rows: file.table.rows, counts: [...file.table.counts] };
}
