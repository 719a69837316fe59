import { MAX_SEED } from '../../inference/latents.js';
import { LIMITS } from '../limits.js';

/** JSON-schema pieces the routes share. */

export const seedSchema = { type: 'integer', minimum: 0, maximum: MAX_SEED } as const;
export const upscaleSchema = (dflt: number) => ({ type: 'integer', minimum: 1, maximum: LIMITS.maxUpscale, default: dflt }) as const;
export const truncationSchema = { type: 'number', exclusiveMinimum: 0, maximum: 10 } as const;
export const resizeSchema = { type: 'string', enum: ['lanczos', 'nearest'], default: 'lanczos' } as const;
/** A face as seed:index, each plain decimal (no sign, exponent, hex or leading zero): one spelling per face. */
export const faceRefSchema = { type: 'string', pattern: '^(0|[1-9][0-9]{0,9}):(0|[1-9][0-9]{0,9})$' } as const;
/** A conditional model's attribute request, `Smiling,-Male` (src/serve/attributes.ts parses it). */
export const attrSchema = { type: 'string', maxLength: LIMITS.maxAttrLength } as const;
/** The page's first visit carries the token in the query (src/serve/auth.ts). */
export const accessTokenSchema = { type: 'string' } as const;
