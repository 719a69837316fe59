import { assertOneOf } from '../errors.js';
import { openOnnxSession, type OnnxSession } from '../inference/session.js';
import { DEFAULT_OPSET, irVersionFor } from '../onnx/export.js';
import { attr, GraphBuilder, tensorValue } from '../onnx/graph-builder.js';
import { encodeModel, type Model } from '../onnx/onnx-proto.js';

/**
 * The matrix product at the heart of SWD (swd.ts): every set's descriptors [count, dim] projected
 * on each repeat's directions [m, dim]. At n = 300 and 28 px that is 38,400 x 147 x 512 multiply-adds
 * per level and set, about 3 GFLOP per set: a BLAS-class kernel does it in tens of milliseconds,
 * a JavaScript loop in seconds.
 *
 * Kernels, as plain data (`SWD_KERNELS`):
 * - `onnxruntime`: one Gemm node (MLAS, multi-threaded) in a graph built here in memory with the
 *   project's ONNX builder; onnxruntime-node is a dependency, so it is there wherever celeba-gan is.
 * - `js`: the blocked loop in this file; the fallback where onnxruntime cannot load.
 * - `auto`: onnxruntime, else js; the kernel says which ran and why (`description`).
 * A kernel asked for by name that cannot start is an error (E_ONNXRUNTIME_LOAD and the other
 * session errors of src/inference/session.ts), never a silent fallback.
 *
 * The libtorch addon is not used: it exposes a training engine, not a matrix product, and
 * onnxruntime is always installed.
 *
 * Rounding: MLAS sums in float32 with fused multiply-adds; the JS loop sums in float64 and rounds
 * once. Each projection then differs by a few float32 ulps of the sum of |terms|, and an SWD by
 * about 1e-6 relative (bench:eval prints both); both match the NumPy reference (float32 matmul)
 * to its 1e-4 tolerance. Within one kernel the numbers are deterministic: a set against itself is
 * exactly 0.
 */

export const SWD_KERNELS = Object.freeze(['auto', 'onnxruntime', 'js'] as const);
export type SwdKernelChoice = (typeof SWD_KERNELS)[number];
export type SwdKernelName = Exclude<SwdKernelChoice, 'auto'>;

export interface SwdKernel {
  readonly name: SwdKernelName;
  /** What ran, and (auto) why onnxruntime did not: one line for reports. */
  readonly description: string;
  /** Rows [count, dim] on directions [m, dim], both row-major: [m, count], each direction's projections contiguous. */
  project(rows: Float32Array, count: number, dim: number, dirs: Float32Array, m: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** `--swd-kernel`'s value, checked: E_BAD_ARGUMENT naming the choices otherwise. */
export function parseSwdKernel(value: unknown): SwdKernelChoice {
  return assertOneOf('swd-kernel', value, SWD_KERNELS);
}

/** Open the kernel asked for; `auto` falls back to js where onnxruntime cannot start, and says so. */
export async function openSwdKernel(choice: SwdKernelChoice = 'auto'): Promise<SwdKernel> {
  if (choice === 'js') return jsKernel('JavaScript loop (asked for)');
  if (choice === 'onnxruntime') return openOnnxruntimeKernel();
  try {
    return await openOnnxruntimeKernel();
  } catch (err) {
    return jsKernel(`JavaScript loop (onnxruntime could not start: ${(err as Error).message.split('\n')[0]})`);
  }
}

let shared: Promise<SwdKernel> | null = null;

/**
 * The process's `auto` kernel, opened on first use and kept (an idle onnxruntime session holds
 * a few kilobytes and no event-loop handle): what swd() uses when the caller passes none.
 */
export function sharedSwdKernel(): Promise<SwdKernel> {
  shared ??= openSwdKernel('auto');
  return shared;
}

const INPUT_DIRS = 'dirs';
const INPUT_ROWS = 'rows';
const OUTPUT = 'projections';

/** dirs [m, dim] x rows [count, dim]^T -> [m, count]: one Gemm, every size symbolic. */
function projectionModel(): Uint8Array {
  const g = new GraphBuilder();
  g.node('Gemm', 'project', [INPUT_DIRS, INPUT_ROWS], OUTPUT, [attr.int('transB', 1)]);
  const model: Model = {
    ir_version: irVersionFor(DEFAULT_OPSET),
    opset_import: [{ domain: '', version: DEFAULT_OPSET }],
    producer_name: 'celeba-gan',
    producer_version: '',
    doc_string: 'SWD projections: dirs [m, dim] x rows [count, dim]^T',
    graph: {
      name: 'celeba_gan_swd_projection',
      node: g.nodes,
      initializer: [],
      input: [tensorValue(INPUT_DIRS, ['m', 'dim']), tensorValue(INPUT_ROWS, ['count', 'dim'])],
      output: [tensorValue(OUTPUT, ['m', 'count'])],
      value_info: [],
    },
    metadata_props: [],
  };
  return encodeModel(model);
}

async function openOnnxruntimeKernel(): Promise<SwdKernel> {
  // The CPU provider: the products are small enough that a GPU's transfers would cost more.
  // No spinning: between runs the pool's threads would spin for the next one on the cores the
  // sort workers (column-sort.ts) need.
  const { ort, session }: OnnxSession = await openOnnxSession(projectionModel(), 'the SWD projection graph', { provider: 'cpu', spinning: false });
  return {
    name: 'onnxruntime',
    description: 'onnxruntime (MLAS Gemm, cpu)',
    async project(rows, count, dim, dirs, m) {
      const out = await session.run({
        [INPUT_DIRS]: new ort.Tensor('float32', dirs, [m, dim]),
        [INPUT_ROWS]: new ort.Tensor('float32', rows, [count, dim]),
      });
      return out[OUTPUT]!.data as Float32Array;
    },
    dispose: () => session.release(),
  };
}

function jsKernel(description: string): SwdKernel {
  return {
    name: 'js',
    description,
    project: async (rows, count, dim, dirs, m) => projectJs(rows, count, dim, dirs, m),
    dispose: async () => {},
  };
}

/**
 * The JS fallback: rows [count, dim] on directions [m, dim], direction-major [m, count]. Blocked
 * 4 rows x 2 directions (each load feeds several products); about 4x faster than the plain
 * triple loop.
 */
function projectJs(desc: Float32Array, count: number, dim: number, dirs: Float32Array, m: number): Float32Array {
  // `]!` in the hot loops: rows r0..r3 + k < count * dim and d0, d1 + k < m * dim.
  const out = new Float32Array(m * count);
  const rows4 = count - (count % 4);
  const dirs2 = m - (m % 2);
  for (let q = 0; q < rows4; q += 4) {
    const r0 = q * dim;
    const r1 = r0 + dim;
    const r2 = r1 + dim;
    const r3 = r2 + dim;
    for (let j = 0; j < dirs2; j += 2) {
      const d0 = j * dim;
      const d1 = d0 + dim;
      let s00 = 0,
        s01 = 0,
        s10 = 0,
        s11 = 0,
        s20 = 0,
        s21 = 0,
        s30 = 0,
        s31 = 0;
      for (let k = 0; k < dim; k++) {
        const e0 = dirs[d0 + k]!;
        const e1 = dirs[d1 + k]!;
        const v0 = desc[r0 + k]!;
        const v1 = desc[r1 + k]!;
        const v2 = desc[r2 + k]!;
        const v3 = desc[r3 + k]!;
        s00 += v0 * e0;
        s01 += v0 * e1;
        s10 += v1 * e0;
        s11 += v1 * e1;
        s20 += v2 * e0;
        s21 += v2 * e1;
        s30 += v3 * e0;
        s31 += v3 * e1;
      }
      const o0 = j * count + q;
      const o1 = o0 + count;
      out[o0] = s00;
      out[o1] = s01;
      out[o0 + 1] = s10;
      out[o1 + 1] = s11;
      out[o0 + 2] = s20;
      out[o1 + 2] = s21;
      out[o0 + 3] = s30;
      out[o1 + 3] = s31;
    }
  }
  // The rows and directions the blocks left over.
  for (let q = 0; q < count; q++) {
    for (let j = q < rows4 ? dirs2 : 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += desc[q * dim + k]! * dirs[j * dim + k]!;
      out[j * count + q] = s;
    }
  }
  return out;
}
