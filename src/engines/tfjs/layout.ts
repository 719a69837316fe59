import type { Tensor, Tf } from './types.js';
import type { ParamInfo } from '../../model/shapes.js';

/**
 * Canonical layouts (src/model/spec.ts) <-> what tfjs ops take. tfjs runs channels-last:
 *   dense            canonical [out, in]          -> matMul weight [in, out]
 *   conv2d           canonical [out, in, kh, kw]  -> conv2d filter [kh, kw, in, out]
 *   convTranspose2d  canonical [in, out, kh, kw]  -> conv2dTranspose filter [kh, kw, out, in]
 *   vectors (bias, batch norm)                    unchanged
 * Both 4-D conversions are the same permutation, [2, 3, 1, 0]; its inverse is [3, 2, 0, 1].
 */

function layerKindOf(p: ParamInfo): 'matrix' | 'kernel' | 'vector' {
  if (p.shape.length === 2) return 'matrix';
  if (p.shape.length === 4) return 'kernel';
  return 'vector';
}

export function toEngineLayout(tf: Tf, p: ParamInfo, data: Float32Array): Tensor {
  return tf.tidy(() => {
    const t = tf.tensor(data, p.shape, 'float32');
    switch (layerKindOf(p)) {
      case 'matrix':
        return tf.transpose(t, [1, 0]);
      case 'kernel':
        return tf.transpose(t, [2, 3, 1, 0]);
      default:
        return t;
    }
  });
}

export function toCanonicalLayout(tf: Tf, p: ParamInfo, t: Tensor): Tensor {
  return tf.tidy(() => {
    switch (layerKindOf(p)) {
      case 'matrix':
        return tf.transpose(t, [1, 0]);
      case 'kernel':
        return tf.transpose(t, [3, 2, 0, 1]);
      default:
        return tf.clone(t);
    }
  });
}

/** NCHW (canonical activations) -> NHWC (tfjs); rank-2 tensors pass through. */
export function nchwToNhwc(tf: Tf, t: Tensor): Tensor {
  return t.rank === 4 ? tf.transpose(t, [0, 2, 3, 1]) : t;
}

export function nhwcToNchw(tf: Tf, t: Tensor): Tensor {
  return t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t;
}
