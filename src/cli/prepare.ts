import { availableParallelism } from 'node:os';
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { CelebaGanError, UsageError, assertInteger } from '../errors.js';
import { missingFolders, recoverLeftovers, removeEmptyFolders } from '../util/atomic.js';
import { prepareFromImages } from '../data/prepare.js';
import { exportSyntheticFolder, prepareSynthetic, type SyntheticOptions } from '../data/synthetic.js';
import { ATTRIBUTE_FILE_NAME, parseAttributeList } from '../data/attributes.js';
import { inspectDataset } from '../data/inspect.js';
import { legacyNote, type DatasetHeader } from '../data/dataset-file.js';
import { Progress } from '../util/progress.js';
import { Screen } from './output.js';
import { catchStopSignals } from './signals.js';

/** `celeba-gan prepare`: images (folder or zip) or synthetic faces -> a .cgds data set; or inspect one. */

interface PrepareArgs {
  input?: string;
  synthetic?: number;
  inspect?: string;
  out?: string;
  size: number;
  crop: number;
  limit?: number;
  workers: number;
  seed: number;
  sheet?: string;
  force: boolean;
  attributes?: string;
  attrSubset?: string;
}

/** Images `--synthetic` makes when given no count. */
const DEFAULT_SYNTHETIC_COUNT = 20000;
/** The synthetic data set's default seed: fixed, so everyone's synthetic-28.cgds is the same file. */
const DEFAULT_SYNTHETIC_SEED = 0;
/** Skipped files named on the terminal before the rest go only to the report. */
const SHOW_SKIPPED = 10;

/** Where `prepare` writes when --out is not given: data/<input name>-<size>.cgds or data/synthetic-<size>.cgds. */
export function defaultDatasetPath(input: string | undefined, size: number): string {
  if (input === undefined) return join('data', `synthetic-${size}.cgds`);
  const base = basename(input.replace(/[\\/]+$/, ''));
  const stem = extname(base).toLowerCase() === '.zip' ? base.slice(0, -4) : base;
  return join('data', `${stem || 'images'}-${size}.cgds`);
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function describeHeader(h: DatasetHeader): string[] {
  return [
    `  images:    ${h.count}`,
    `  size:      ${h.height}x${h.width}, ${h.channels} channels (uint8 HWC, RGB)`,
    `  synthetic: ${h.synthetic ? `yes (procedural faces, not photographs${h.seed !== undefined ? `; seed ${h.seed}` : ''})` : 'no (prepared from images)'}`,
    ...(h.attributes
      ? [
          `  labels:    ${h.attributes.names.length} attributes: ${h.attributes.names.map((n, i) => `${n} ${(100 * h.attributes!.frequencies[i]!).toFixed(1)}%`).join(', ')}`,
        ]
      : []),
    `  format:    version ${h.version}`,
    `  checksum:  sha256 ${h.checksum}`,
  ];
}

export const prepareCommand: CommandModule<object, PrepareArgs> = {
  command: 'prepare',
  describe: 'Make a training data set (.cgds) from images or synthetic faces, or inspect one',
  builder: (y: Argv) =>
    y
      .option('input', {
        type: 'string',
        describe: 'Folder of JPEG/PNG/WebP images (searched recursively) or a zip such as img_align_celeba.zip (read in place)',
      })
      .option('synthetic', {
        type: 'number',
        describe: `Make N procedural, face-like SYNTHETIC images instead (no download; a bare --synthetic makes ${DEFAULT_SYNTHETIC_COUNT})`,
      })
      .option('inspect', { type: 'string', describe: "Print a data set file's header, verify its checksum and write a contact sheet of the first 64 images" })
      .option('out', { type: 'string', describe: 'Data set file to write; default data/<input name>-<size>.cgds or data/synthetic-<size>.cgds' })
      .option('size', { type: 'number', default: 28, describe: 'Output side in pixels (28 for seed28, 64 for dcgan64)' })
      .option('crop', {
        type: 'number',
        default: 108,
        describe:
          'Centre-crop side before resizing, as the original (CelebA 178x218 -> 108x108). An image smaller than the crop gives its largest centred square instead; 0 always takes the largest centred square',
      })
      .option('limit', { type: 'number', describe: 'Stop after N prepared images (the first in sorted name order)' })
      .option('workers', { type: 'number', default: availableParallelism(), describe: 'Images decoded at once (default: the number of cores)' })
      .option('seed', { type: 'number', default: DEFAULT_SYNTHETIC_SEED, describe: 'Seed of the --synthetic data set (saved in its header)' })
      .option('sheet', { type: 'string', describe: 'With --inspect: contact sheet path (default <data set>.sheet.png)' })
      .option('force', { type: 'boolean', default: false, describe: 'Replace an existing --out' })
      .option('attributes', {
        type: 'string',
        describe: `With --input: CelebA's ${ATTRIBUTE_FILE_NAME} to label the images with (default: one found among the input's files)`,
      })
      .option('attr-subset', {
        type: 'string',
        describe: 'Keep only these attributes, in this order, e.g. Smiling,Eyeglasses (--input with an attribute file, or --synthetic)',
      })
      .example('$0 prepare --synthetic', `${DEFAULT_SYNTHETIC_COUNT} synthetic faces -> data/synthetic-28.cgds (no download)`)
      .example('$0 prepare --input ~/celeba/img_align_celeba.zip', 'CelebA straight from its zip -> data/img_align_celeba-28.cgds')
      .example('$0 prepare --input photos/ --size 64 --crop 0 --out data/photos-64.cgds', 'a folder at 64x64, largest centred square')
      .example(
        '$0 prepare --input ~/celeba/img_align_celeba.zip --attributes ~/celeba/list_attr_celeba.txt --attr-subset Smiling,Eyeglasses',
        'CelebA labelled with two attributes',
      )
      .example('$0 prepare --synthetic 2000 --out faces/', `2000 synthetic faces as PNGs plus ${ATTRIBUTE_FILE_NAME} (CelebA's format)`)
      .example('$0 prepare --inspect data/synthetic-28.cgds', 'header, checksum check and data/synthetic-28.sheet.png')
      .epilogue(
        'Images become RGB always: EXIF orientation is applied, alpha is flattened onto white, and greyscale, CMYK and ' +
          '16-bit inputs are converted to 8-bit sRGB. Resizing is bilinear. Files that cannot be read are skipped and ' +
          'listed in <out>.skipped.txt; zip entries whose path would escape (../, absolute) are refused and listed there too.',
      ),
  handler: async (argv) => {
    // `in`, not `!== undefined`: a bare `--synthetic` is present with the value undefined.
    const modes = (['input', 'synthetic', 'inspect'] as const).filter((k) => k in argv);
    if (modes.length !== 1) {
      throw new UsageError(
        'E_BAD_ARGUMENT',
        modes.length === 0 ? 'prepare needs one of --input, --synthetic or --inspect' : `--${modes.join(' and --')} cannot be used together`,
        { hint: 'Use `--input <folder|zip>` for images, `--synthetic [N]` for procedural faces, or `--inspect <file.cgds>`.' },
      );
    }
    checkAttributeFlags(argv);
    if (argv.sheet !== undefined && !('inspect' in argv)) {
      throw new UsageError('E_BAD_ARGUMENT', '--sheet only applies with --inspect', { hint: 'Run `celeba-gan prepare --inspect <file.cgds> --sheet <png>`.' });
    }
    if ('inspect' in argv) return inspect(argv.inspect ?? '', argv.sheet);
    const size = assertInteger('--size', argv.size, 4, 1024);
    const out = argv.out ?? defaultDatasetPath(argv.input, size);
    // The first signal stops cleanly, leaving no temporary file (exit 130 / 143); a second quits.
    const stop = catchStopSignals({
      finishing: () => `stopping after the images being decoded now; ${out} will not be written`,
      print: (line) => screen.log(line),
    });
    try {
      if (argv.input !== undefined) await withOutputFolder(out, () => images(argv, argv.input!, out, size, stop.signal));
      else await withOutputFolder(out, () => synthetic(argv, out, size, stop.signal));
    } catch (err) {
      if (stop.exitCode === null || !(err instanceof CelebaGanError) || err.code !== 'E_ABORTED') throw err;
      screen.endBar();
      screen.say(`${err.message} (${stop.received})`);
      if (err.hint) screen.log(`  ${err.hint}`);
      process.exitCode = stop.exitCode;
    } finally {
      stop.dispose();
      screen.endBar();
    }
  },
};

/** Lines of one `prepare`, above its progress bar while one is shown. */
const screen = new Screen();

/** --attributes only with --input; --attr-subset with --input or --synthetic. */
function checkAttributeFlags(argv: PrepareArgs): void {
  if (argv.attributes !== undefined && !('input' in argv)) {
    throw new UsageError('E_BAD_ARGUMENT', '--attributes only applies with --input', {
      hint: "Synthetic faces carry their own attributes; --inspect shows a data set's.",
    });
  }
  if (argv.attrSubset !== undefined && 'inspect' in argv) {
    throw new UsageError('E_BAD_ARGUMENT', '--attr-subset does not apply with --inspect', { hint: 'Use it with --input or --synthetic.' });
  }
}

/** `--out faces/` (a trailing slash) or an existing folder: write images plus an attribute file, not a .cgds. */
function isFolderOut(out: string | undefined): boolean {
  return out !== undefined && (/[\\/]$/.test(out) || (existsSync(out) && statSync(out).isDirectory()));
}

/**
 * Around one `prepare` into `out`: first report and remove what an interrupted earlier prepare
 * left beside it (`.<name>.cgds.<pid>.<time>.tmp`, its skip report's temporary file); if this
 * one fails, remove the folders it created for `out` that stayed empty.
 */
async function withOutputFolder(out: string, work: () => Promise<void>): Promise<void> {
  const folder = dirname(out);
  const created = missingFolders(folder);
  if (created.length === 0) {
    const ours = (target: string): boolean => target.endsWith('.cgds') || target.endsWith('.cgds.skipped.txt');
    for (const l of recoverLeftovers(folder, ours)) screen.say(`removed ${l.path} (left by an interrupted prepare of ${basename(l.target)})`);
  }
  try {
    await work();
  } catch (err) {
    removeEmptyFolders(created);
    throw err;
  }
}

async function inspect(path: string, sheet: string | undefined): Promise<void> {
  const r = await inspectDataset(path, sheet === undefined ? {} : { sheet });
  const covered = r.header.version === 1 ? 'pixel checksum matches' : 'checksum of pixels and header matches';
  const lines = [
    `${path}${r.header.synthetic ? ' (SYNTHETIC data set)' : ''}`,
    ...describeHeader(r.header),
    `  verified:  ok (${covered}, ${mb(r.pixelBytes)})`,
  ];
  if (r.sheet) lines.push(`  sheet:     ${r.sheet.path} (first ${r.sheet.images} images, ${r.sheet.upscale}x)`);
  const note = legacyNote(r.header);
  if (note) lines.push(`  note:      ${note}`);
  screen.result(...lines);
}

async function synthetic(argv: PrepareArgs, out: string, size: number, signal: AbortSignal): Promise<void> {
  const count = argv.synthetic === undefined ? DEFAULT_SYNTHETIC_COUNT : assertInteger('--synthetic', argv.synthetic, 1, 10_000_000);
  const seed = assertInteger('--seed', argv.seed, 0, 0xffffffff);
  const attrSubset = argv.attrSubset === undefined ? undefined : parseAttributeList(argv.attrSubset);
  if (isFolderOut(argv.out)) return syntheticFolder({ count, out, size, seed, attrSubset, overwrite: argv.force, signal });
  let progress: Progress | null = null;
  const r = await prepareSynthetic({
    count,
    out,
    size,
    seed,
    attrSubset,
    overwrite: argv.force,
    signal,
    onStart: () => {
      screen.say(`drawing ${count} synthetic faces (procedural, not photographs) at ${size}x${size}, seed ${seed} -> ${out}`);
      progress = screen.startBar(new Progress({ label: 'synthetic', total: count, unit: 'img' }));
    },
    onProgress: (p) => progress?.update(p.prepared),
  });
  screen.endBar();
  screen.result(
    `prepared ${r.header.count} synthetic images, skipped 0 -> ${out} (${(r.header.count / r.seconds).toFixed(0)} img/s, seed ${seed}, sha256 ${r.header.checksum.slice(0, 16)}…)`,
  );
}

async function syntheticFolder(opts: SyntheticOptions): Promise<void> {
  let progress: Progress | null = null;
  const r = await exportSyntheticFolder({
    ...opts,
    onStart: () => {
      screen.say(
        `drawing ${opts.count} synthetic faces (procedural, not photographs) at ${opts.size}x${opts.size}, seed ${opts.seed} -> PNGs and ${ATTRIBUTE_FILE_NAME} in ${opts.out}`,
      );
      progress = screen.startBar(new Progress({ label: 'synthetic', total: opts.count, unit: 'img' }));
    },
    onProgress: (p) => progress?.update(p.prepared),
  });
  screen.endBar();
  screen.result(`wrote ${r.count} synthetic faces and ${r.attributeFile} (${r.attributes.join(', ')}) -> ${r.out}`);
}

async function images(argv: PrepareArgs, input: string, out: string, size: number, signal: AbortSignal): Promise<void> {
  const crop = assertInteger('--crop', argv.crop, 0, 65535);
  const workers = assertInteger('--workers', argv.workers, 1, 256);
  const limit = argv.limit === undefined ? undefined : assertInteger('--limit', argv.limit, 1);
  let progress: Progress | null = null;
  let shown = 0;
  const r = await prepareFromImages({
    input,
    out,
    size,
    crop,
    limit,
    workers,
    overwrite: argv.force,
    attributes: argv.attributes,
    attrSubset: argv.attrSubset === undefined ? undefined : parseAttributeList(argv.attrSubset),
    signal,
    onStart: (s) => {
      screen.say(
        `${s.images} images in ${s.kind} ${input}${s.refused ? `, ${s.refused} other entries refused` : ''}; ` +
          `crop ${crop === 0 ? 'largest centred square' : `${crop}x${crop}`} -> ${size}x${size}, ${s.workers} workers -> ${out}`,
      );
      if (s.attributes) screen.say(`labels: ${s.attributes.names.length} attributes from ${s.attributes.source}`);
      progress = screen.startBar(new Progress({ label: 'prepare', total: Math.min(limit ?? Infinity, s.images) + s.refused, unit: 'img' }));
    },
    onProgress: (p) => progress?.update(p.processed, p.skipped ? `skipped ${p.skipped}` : ''),
    onSkip: (s) => {
      if (shown++ < SHOW_SKIPPED) screen.log(`skipped ${s.name}: ${s.reason}`);
    },
  });
  screen.endBar();
  const rate = r.prepared / r.seconds;
  screen.result(`prepared ${r.prepared}, skipped ${r.skipped.length} -> ${out} (${rate.toFixed(0)} img/s, sha256 ${r.header.checksum.slice(0, 16)}…)`);
  if (r.reportPath) screen.result(`  the skipped files and reasons are listed in ${r.reportPath}`);
}
