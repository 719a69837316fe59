/**
 * The seam every feature extractor implements (faceres on tfjs, Inception on onnxruntime).
 * Images enter as uint8 HWC RGB, back to back, exactly as a .cgds file stores them and as
 * generated images are saved; each extractor resizes them to its own input size.
 */

export type FeatureSpace = 'faceres' | 'inception';

export interface ExtractorInfo {
  features: FeatureSpace;
  /** Feature vector length (1024 for faceres, 2048 for Inception pool3). */
  dim: number;
  /** Says exactly where the numbers come from, e.g. `faceres 1024-d (global_pooling/Mean) from @vladmandic/human 3.3.6 models/faceres.json`. */
  description: string;
  /** The model file's origin: package name + version, or the user's file and its sha256. */
  source: string;
  /** What runs it, e.g. `tfjs wasm (SIMD)` or `onnxruntime cpu`. */
  runtime: string;
  /** Side length images are resized to. */
  inputSize: number;
}

export interface FeatureExtractor {
  readonly info: ExtractorInfo;
  /** uint8 HWC images [n, h, w, 3] -> features [n, dim] (row-major). */
  extract(images: Uint8Array, n: number, height: number, width: number): Promise<Float32Array>;
  dispose(): Promise<void> | void;
}

/** Check a batch's byte count before it reaches a model (a clear message beats a shape error deep in tfjs). */
export function checkImages(images: Uint8Array, n: number, height: number, width: number): void {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(height) || height < 1 || !Number.isInteger(width) || width < 1) {
    throw new RangeError(`bad image batch: n=${n}, ${height}x${width}`);
  }
  if (images.length !== n * height * width * 3) {
    throw new RangeError(`image batch has ${images.length} bytes; ${n} RGB images of ${height}x${width} need ${n * height * width * 3}`);
  }
}
