/** tfjs types for the engine (type-only: src/bindings/tfjs.ts stays the only importer of tfjs). */
export type { Scalar, Tensor, Tensor2D, Tensor4D, Tf, Variable } from '../../bindings/tfjs.js';
