import { MAX_SEED } from '../../inference/interpolate.js';
import { LIMITS } from '../limits.js';

/** JSON-schema pieces the routes share. */

export const seedSchema = { type: 'integer', minimum: 0, maximum: MAX_SEED } as const;
export const upscaleSchema = (dflt: number) => ({ type: 'integer', minimum: 1, maximum: LIMITS.maxUpscale, default: dflt }) as const;
export const truncationSchema = { type: 'number', exclusiveMinimum: 0, maximum: 10 } as const;
export const resizeSchema = { type: 'string', enum: ['lanczos', 'nearest'], default: 'lanczos' } as const;
export const faceRefSchema = { type: 'string', pattern: '^[0-9]{1,10}:[0-9]{1,10}$' } as const;
/** The page's first visit carries the token in the query (src/serve/auth.ts). */
export const accessTokenSchema = { type: 'string' } as const;
