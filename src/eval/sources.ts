import type { DatasetReader } from '../data/dataset-file.js';
import type { TrainingEngine } from '../engines/engine.js';
import type { GeneratorSession } from '../inference/session.js';
import { latentsFor, type LatentKind } from '../inference/latents.js';
import { floatNchwToUint8Hwc } from '../util/image.js';
import { Rng } from '../util/rng.js';

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

function generated(label: string, count: number, zDim: number, latent: LatentKind, seed: number, channels: number, height: number, width: number, run: (z: Float32Array, n: number) => Promise<Float32Array>): ImageSource {
  if (channels !== 3) throw new RangeError(`the generator makes ${channels}-channel images; evaluation needs RGB (3)`);
  return {
    label,
    count,
    height,
    width,
    async read(start, n) {
      // latentsFor keys each z by (seed, index): image i is the same whatever the batching.
      const z = latentsFor(seed, start, n, zDim, latent);
      return floatNchwToUint8Hwc(await run(z, n), n, channels, height, width);
    },
  };
}

/** Images 0..count-1 of `seed` from an exported ONNX generator (the same faces `generate --seed` writes). */
export function onnxSource(session: GeneratorSession, count: number, seed: number): ImageSource {
  const { zDim, latent, image } = session.info;
  return generated(`${session.info.modelPath}: ${count} images (seed ${seed})`, count, zDim, latent, seed, image.channels, image.height, image.width, (z, n) => session.run(z, n));
}

/** Images from a training engine's generator in inference mode (no ONNX needed). */
export function engineSource(engine: TrainingEngine, count: number, seed: number, label = 'training generator'): ImageSource {
  const { zDim, latent, image } = engine.spec;
  return generated(`${label}: ${count} images (seed ${seed})`, count, zDim, latent, seed, image.channels, image.height, image.width, (z, n) => engine.generate(z, n));
}
