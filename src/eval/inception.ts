import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { CelebaGanError, UsageError } from '../errors.js';
import { openOnnxSession, type OnnxSession } from '../inference/session.js';
import { checkImages, type FeatureExtractor } from './extractor.js';
import { sha256Hex } from '../util/hash.js';

/**
 * Standard FID features: an Inception-v3 the user supplies as ONNX (e.g. pytorch-fid's
 * pt_inception-2015-12-05 exported with torch.onnx.export), run with onnxruntime on the CPU.
 * celeba-gan never downloads it. The graph must have one float32 image input, NCHW [N, 3, H, W]
 * or NHWC [N, H, W, 3] (H, W fixed or symbolic; symbolic means 299), and its first output must
 * give one feature vector per image (2048-d pool3 for the standard FID; [N, 2048, 1, 1] is
 * flattened). Images are resized bilinearly (half-pixel centres) to H x W and scaled to `range`.
 *
 * The session comes from src/inference/session.ts (openOnnxSession, the one path to onnxruntime);
 * the generator checks there (input `z`, celeba-gan metadata) do not apply to a feature model,
 * so this file checks the image input and feature output itself.
 */

export const INCEPTION_RANGES = ['0,1', '-1,1', '0,255'] as const;
export type InceptionRange = (typeof INCEPTION_RANGES)[number];
const DEFAULT_INCEPTION_SIZE = 299;

export interface InceptionOptions {
  /** Pixel range the graph expects (default `0,1`, pytorch-fid's InceptionV3 convention). */
  range?: InceptionRange;
  batchSize?: number;
  threads?: number;
}

const hint = 'Pass an Inception-v3 ONNX file with one float32 image input [N, 3, H, W] or [N, H, W, 3] and a feature output (2048-d pool3 for standard FID).';

/** Bilinear resize (half-pixel centres, edge clamp) of uint8 HWC images to float NCHW or NHWC in `range`. */
export function resizeToFloat(images: Uint8Array, n: number, h: number, w: number, size: number, layout: 'NCHW' | 'NHWC', range: InceptionRange): Float32Array {
  // Hot loop, so `]!`: y0, y1 < h and x0, x1 < w are clamped below, and callers pass
  // n * h * w * 3 bytes (loadInception's extract() after checkImages).
  const [lo, hi] = range.split(',').map(Number) as [number, number];
  const scale = (hi - lo) / 255;
  const out = new Float32Array(n * 3 * size * size);
  const sy = h / size;
  const sx = w / size;
  for (let i = 0; i < n; i++) {
    const src = i * h * w * 3;
    for (let y = 0; y < size; y++) {
      const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
      const y0 = Math.floor(fy);
      const y1 = Math.min(y0 + 1, h - 1);
      const wy = fy - y0;
      for (let x = 0; x < size; x++) {
        const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
        const x0 = Math.floor(fx);
        const x1 = Math.min(x0 + 1, w - 1);
        const wx = fx - x0;
        for (let c = 0; c < 3; c++) {
          const p00 = images[src + (y0 * w + x0) * 3 + c]!;
          const p01 = images[src + (y0 * w + x1) * 3 + c]!;
          const p10 = images[src + (y1 * w + x0) * 3 + c]!;
          const p11 = images[src + (y1 * w + x1) * 3 + c]!;
          const v = (p00 * (1 - wx) + p01 * wx) * (1 - wy) + (p10 * (1 - wx) + p11 * wx) * wy;
          const idx = layout === 'NCHW' ? ((i * 3 + c) * size + y) * size + x : ((i * size + y) * size + x) * 3 + c;
          out[idx] = lo + v * scale;
        }
      }
    }
  }
  return out;
}

export async function loadInception(path: string, opts: InceptionOptions = {}): Promise<FeatureExtractor> {
  const range = opts.range ?? '0,1';
  if (!(INCEPTION_RANGES as readonly string[]).includes(range)) {
    throw new UsageError('E_BAD_ARGUMENT', `Unsupported inception input range "${String(range)}". Should be one of: ${INCEPTION_RANGES.join(', ')}`);
  }
  const batchSize = opts.batchSize ?? 16;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder; expected an .onnx file' : (err as Error).message;
    throw new UsageError('E_INCEPTION_MISSING', `cannot read the Inception model ${path}: ${why}`, {
      hint: "celeba-gan does not download Inception: export pytorch-fid's InceptionV3 to ONNX yourself and pass its path, or use --features faceres (no file needed).",
      cause: err,
    });
  }
  const sha256 = sha256Hex([bytes]);
  let opened: OnnxSession;
  try {
    opened = await openOnnxSession(bytes, path, { provider: 'cpu', ...(opts.threads === undefined ? {} : { threads: opts.threads }) });
  } catch (err) {
    if (err instanceof CelebaGanError && err.code === 'E_MODEL_INVALID') {
      throw new UsageError('E_INCEPTION_INVALID', `onnxruntime cannot load ${path}: ${(err.cause as Error)?.message?.split('\n')[0] ?? err.message}`, {
        hint,
        cause: err,
      });
    }
    throw err;
  }
  const { ort, session } = opened;
  const bad = async (why: string): Promise<never> => {
    await session.release();
    throw new CelebaGanError('E_INCEPTION_IO', `Inception model ${path} ${why}`, { hint });
  };
  const input = session.inputMetadata[0];
  if (session.inputNames.length !== 1 || input === undefined)
    return bad(`has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); expected one image input`);
  if (!input.isTensor || input.type !== 'float32' || input.shape.length !== 4) {
    await bad(
      `input "${input.name}" is ${input.isTensor ? `${input.type} [${input.shape.join(', ')}]` : 'not a tensor'}; expected float32 [N, 3, H, W] or [N, H, W, 3]`,
    );
  }
  const shape = (input as { shape: readonly (number | string)[] }).shape;
  const layout: 'NCHW' | 'NHWC' =
    shape[1] === 3
      ? 'NCHW'
      : shape[3] === 3
        ? 'NHWC'
        : await bad(`input "${input.name}" is [${shape.join(', ')}]: no dimension of 3 channels at position 1 (NCHW) or 3 (NHWC)`);
  const spatial = layout === 'NCHW' ? [shape[2], shape[3]] : [shape[1], shape[2]];
  const fixed = spatial.filter((d): d is number => typeof d === 'number' && d > 0);
  if (fixed.length === 2 && fixed[0] !== fixed[1]) await bad(`input is ${fixed[0]}x${fixed[1]}; only square inputs are supported`);
  const size = fixed[0] ?? DEFAULT_INCEPTION_SIZE;
  const outputName = session.outputNames[0];
  if (outputName === undefined) return bad('has no outputs; expected one feature output');

  // One forward pass of a blank image tells the feature length.
  const probe = await session.run({
    [input.name]: new ort.Tensor('float32', new Float32Array(3 * size * size), layout === 'NCHW' ? [1, 3, size, size] : [1, size, size, 3]),
  });
  const features = probe[outputName];
  if (features === undefined) return bad(`gave no output "${outputName}" for one blank image`);
  const dim = features.size;

  return {
    info: {
      features: 'inception',
      dim,
      description: `inception ${dim}-d (output "${outputName}", ${size}x${size} ${layout} input in [${range}]) from ${basename(path)} sha256 ${sha256.slice(0, 12)}`,
      source: `${path} (sha256 ${sha256})`,
      runtime: 'onnxruntime cpu',
      inputSize: size,
    },
    async extract(images, n, height, width) {
      checkImages(images, n, height, width);
      const out = new Float32Array(n * dim);
      for (let start = 0; start < n; start += batchSize) {
        const count = Math.min(batchSize, n - start);
        const x = resizeToFloat(images.subarray(start * height * width * 3, (start + count) * height * width * 3), count, height, width, size, layout, range);
        const dims = layout === 'NCHW' ? [count, 3, size, size] : [count, size, size, 3];
        const result = await session.run({ [input.name]: new ort.Tensor('float32', x, dims) });
        const y = result[outputName];
        if (y === undefined) throw new CelebaGanError('E_INCEPTION_IO', `Inception model ${path} gave no output "${outputName}" for ${count} images`, { hint });
        if (y.size !== count * dim)
          throw new CelebaGanError('E_INCEPTION_IO', `Inception model ${path} gave ${y.size} values for ${count} images; expected ${count} x ${dim}`, { hint });
        out.set(y.data as Float32Array, start * dim);
      }
      return out;
    },
    async dispose() {
      await session.release();
    },
  };
}
