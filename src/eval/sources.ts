import { stat } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import sharp from 'sharp';
import type { ProviderName } from '../bindings/onnxruntime.js';
import { DatasetReader } from '../data/dataset-file.js';
import { IMAGE_EXTENSIONS, openImageSource } from '../data/sources.js';
import { UsageError } from '../errors.js';
import type { TrainingEngine } from '../engines/engine.js';
import { attributeDraw, type AttributeDraw } from '../inference/attributes.js';
import { openGenerator, type GeneratorSession } from '../inference/session.js';
import { latentsFor, type LatentKind } from '../inference/latents.js';
import { floatNchwToUint8Hwc } from '../util/image.js';
import { Rng } from '../util/rng.js';
import { itemAt } from '../util/at.js';

/**
 * Where evaluated images come from. Every source hands out uint8 HWC RGB images, so generated
 * images are measured exactly as they would be saved (quantised to 8 bits), like the real ones.
 */
export interface ImageSource {
  /** For reports, e.g. `data/celeba-28.cgds: 2000 of 20000 images (seed 0)`. */
  readonly label: string;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /** Images start .. start+n-1 of this source, uint8 HWC, back to back. */
  read(start: number, n: number): Promise<Uint8Array>;
  /** Things the user should know about these images (a conditional model's attribute draw: attributes.ts's notes). */
  readonly notes?: readonly string[];
}

/** Images `indices` of a .cgds file, in that order. */
export function datasetSource(reader: DatasetReader, indices: Uint32Array, label: string): ImageSource {
  const { height, width, channels } = reader.header;
  if (channels !== 3) throw new RangeError(`${reader.path} has ${channels} channels; evaluation needs RGB (3)`);
  return {
    label,
    count: indices.length,
    height,
    width,
    async read(start, n) {
      return reader.read(indices.subarray(start, start + n));
    },
  };
}

/** `n` distinct indices of a data set of `count` images, fixed by `seed`. */
export function sampleIndices(count: number, n: number, seed: number, key = 'eval-real'): Uint32Array {
  return new Rng(seed, key).permutation(count).slice(0, n);
}

/** Label rows [n, K] for images start .. start+n-1 of a conditional generator's source. */
export type LabelRows = (start: number, n: number) => Float32Array;

function generated(
  label: string,
  count: number,
  zDim: number,
  latent: LatentKind,
  seed: number,
  image: { channels: number; height: number; width: number },
  rows: LabelRows | undefined,
  run: (z: Float32Array, n: number, labels: Float32Array | undefined) => Promise<Float32Array>,
  notes: readonly string[] = [],
): ImageSource {
  const { channels, height, width } = image;
  if (channels !== 3) throw new RangeError(`the generator makes ${channels}-channel images; evaluation needs RGB (3)`);
  return {
    label,
    count,
    height,
    width,
    notes,
    async read(start, n) {
      // latentsFor keys each z by (seed, index), and so does a draw's rowsFor: image i is the same
      // whatever the batching.
      const z = latentsFor(seed, start, n, zDim, latent);
      return floatNchwToUint8Hwc(await run(z, n, rows?.(start, n)), n, channels, height, width);
    },
  };
}

/**
 * Images 0..count-1 of `seed` from an exported ONNX generator: the same faces `generate --seed`
 * writes. A conditional model takes its label rows from `draw` (attributeDraw(info.attributes,
 * request)); without one, every attribute is drawn from the model's training label rows, as
 * `generate` does with no --attr. The latents do not depend on the draw.
 */
export function onnxSource(session: GeneratorSession, count: number, seed: number, draw?: AttributeDraw): ImageSource {
  const { zDim, latent, image, modelPath, attributes } = session.info;
  const labels = draw ?? attributeDraw(attributes, undefined, modelPath);
  const request = !labels ? '' : labels.request.text === '' ? ', attributes drawn from its training label rows' : `, attributes ${labels.request.text}`;
  return generated(
    `${modelPath}: ${count} images (seed ${seed}${request})`,
    count,
    zDim,
    latent,
    seed,
    image,
    labels && ((start, n) => labels.rowsFor(seed, start, n)),
    (z, n, y) => session.run(z, n, y),
    labels?.notes,
  );
}

/**
 * Images from a training engine's generator in inference mode (no ONNX needed). A conditional
 * engine needs `rows`, its label rows per image.
 */
export function engineSource(engine: TrainingEngine, count: number, seed: number, label = 'training generator', rows?: LabelRows): ImageSource {
  const { zDim, latent, image } = engine.spec;
  return generated(`${label}: ${count} images (seed ${seed})`, count, zDim, latent, seed, image, rows, (z, n, y) => engine.generate(z, n, 'raw', y));
}

/** How `eval` reads a path given for --generated / --real / --model. */
export type EvalSourceKind = 'folder' | 'zip' | 'dataset' | 'onnx';

export interface OpenedEvalSource {
  kind: EvalSourceKind;
  source: ImageSource;
  /** Images the path holds (ONNX: as many as asked). */
  available: number;
  /** e.g. `onnxruntime cpu` for a generator. */
  note?: string;
  /** The open generator (kind 'onnx'): per-attribute evaluation runs it with its own draws. */
  session?: GeneratorSession;
  /** The open data set (kind 'dataset'): per-attribute evaluation reads its labels. */
  dataset?: DatasetReader;
  close(): Promise<void>;
}

export interface OpenEvalSourceOptions {
  /** The flag the path came from, for messages: `--real`. */
  flag: string;
  /** Images wanted (n for generated, 2n for real); a sample of this many is taken, fixed by `seed`. */
  count: number;
  seed: number;
  /** Resize folder images to size x size (centre-cropped to a square first, as `prepare` does). */
  resize?: number;
  /** Only an .onnx file is accepted (`--model`). */
  onnxOnly?: boolean;
  provider?: ProviderName;
}

const ACCEPTED = 'a folder of JPEG/PNG/WebP images, a .zip of them, a .cgds data set or an .onnx generator';

/**
 * Open what a path names, by what it is on disk: a folder (or .zip) of images, a .cgds data set
 * (its pixel checksum is verified, as `train` does) or an exported .onnx generator. Usage errors
 * name the flag and the path.
 */
export async function openEvalSource(path: string, opts: OpenEvalSourceOptions): Promise<OpenedEvalSource> {
  const { flag } = opts;
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UsageError('E_EVAL_INPUT_MISSING', `${flag} ${path} does not exist`, {
        hint: `Pass ${opts.onnxOnly ? 'an exported .onnx generator (`celeba-gan export --onnx`)' : ACCEPTED}.`,
      });
    }
    if (code === 'EACCES' || code === 'EPERM')
      throw new UsageError('E_EVAL_INPUT_UNREADABLE', `${flag} ${path} cannot be read (${code})`, { hint: 'Check its permissions.' });
    throw err;
  }
  const ext = extname(path).toLowerCase();
  if (st.isDirectory()) {
    if (opts.onnxOnly)
      throw new UsageError('E_EVAL_EXPECTED_FILE', `${flag} ${path} is a folder; expected an .onnx file`, {
        hint: `Pass the exported generator file, or use --generated ${path} to evaluate a folder of images.`,
      });
    if (ext === '.onnx' || ext === '.cgds')
      throw new UsageError('E_EVAL_EXPECTED_FILE', `${flag} ${path} is a folder, but its name says it should be a ${ext} file`, {
        hint: `Pass the ${ext} file itself, or rename the folder if it holds images.`,
      });
    return openFolderSource(path, opts);
  }
  if (!st.isFile()) throw new UsageError('E_EVAL_EXPECTED_FILE', `${flag} ${path} is neither a file nor a folder`, { hint: `Pass ${ACCEPTED}.` });
  if (opts.onnxOnly && ext !== '.onnx')
    throw new UsageError('E_EVAL_EXPECTED_ONNX', `${flag} ${path} is not an .onnx file`, {
      hint: 'Pass an exported generator (`celeba-gan export --onnx`), or use --generated for folders and data sets.',
    });
  if (ext === '.onnx') {
    const session = await openGenerator(path, { provider: opts.provider ?? 'auto' });
    return {
      kind: 'onnx',
      source: onnxSource(session, opts.count, opts.seed),
      available: opts.count,
      note: session.providerUsed,
      session,
      close: () => session.close(),
    };
  }
  if (ext === '.cgds') {
    const reader = new DatasetReader(path);
    try {
      reader.verify();
    } catch (err) {
      reader.close();
      throw err;
    }
    const take = Math.min(opts.count, reader.count);
    const source = datasetSource(reader, sampleIndices(reader.count, take, opts.seed), `${path}: ${take} of ${reader.count} images (seed ${opts.seed})`);
    return { kind: 'dataset', source, available: reader.count, dataset: reader, close: async () => reader.close() };
  }
  if (ext === '.zip') return openFolderSource(path, opts);
  throw new UsageError('E_EVAL_EXPECTED_FOLDER', `${flag} ${path} is a file (${ext || 'no extension'}); expected ${ACCEPTED}`, {
    hint: `To compare single images, put them in a folder and pass the folder: ${flag} ${dirname(path)}/`,
  });
}

async function openFolderSource(path: string, opts: OpenEvalSourceOptions): Promise<OpenedEvalSource> {
  const images = await openImageSource(path);
  try {
    if (images.names.length === 0) {
      throw new UsageError('E_EVAL_NO_IMAGES', `${opts.flag} ${path} holds no images`, {
        hint: `Put JPEG/PNG/WebP files in it (${IMAGE_EXTENSIONS.join(', ')}).`,
      });
    }
    const take = Math.min(opts.count, images.names.length);
    const order = sampleIndices(images.names.length, take, opts.seed, 'eval-folder');
    const decode = async (index: number): Promise<{ data: Buffer; width: number; height: number }> => {
      const name = itemAt(images.names, index, 'image');
      let img;
      try {
        let pipeline = sharp(await images.read(index), { failOn: 'error' }).rotate();
        if (opts.resize) pipeline = pipeline.resize(opts.resize, opts.resize, { fit: 'cover', position: 'centre' });
        img = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      } catch (err) {
        throw new UsageError('E_EVAL_BAD_IMAGE', `${opts.flag}: ${join(path, name)} could not be decoded (${(err as Error).message})`, {
          hint: 'Remove or replace the file.',
          cause: err,
        });
      }
      if (img.info.channels !== 3)
        throw new UsageError('E_EVAL_BAD_IMAGE', `${opts.flag}: ${join(path, name)} decodes to ${img.info.channels} channels, not RGB`, {
          hint: 'Convert it to RGB.',
        });
      return { data: img.data, width: img.info.width, height: img.info.height };
    };
    const firstIndex = itemAt(order, 0, 'sample');
    const first = await decode(firstIndex);
    const firstName = itemAt(images.names, firstIndex, 'image');
    const { width, height } = first;
    const source: ImageSource = {
      label: `${path}: ${take} of ${images.names.length} images${take < images.names.length ? ` (seed ${opts.seed})` : ''}${opts.resize ? `, resized to ${opts.resize}x${opts.resize}` : ''}`,
      count: take,
      height,
      width,
      async read(start, n) {
        const out = new Uint8Array(n * height * width * 3);
        for (let i = 0; i < n; i++) {
          const index = itemAt(order, start + i, 'sample');
          const img = await decode(index);
          if (img.width !== width || img.height !== height) {
            throw new UsageError(
              'E_EVAL_SIZE_MISMATCH',
              `${opts.flag}: ${join(path, itemAt(images.names, index, 'image'))} is ${img.height}x${img.width} but ${join(path, firstName)} is ${height}x${width}`,
              {
                hint: 'Pass --resize <px> to bring every image to one size.',
              },
            );
          }
          out.set(img.data, i * height * width * 3);
        }
        return out;
      },
    };
    return { kind: images.kind === 'zip' ? 'zip' : 'folder', source, available: images.names.length, close: () => images.close() };
  } catch (err) {
    await images.close();
    throw err;
  }
}
