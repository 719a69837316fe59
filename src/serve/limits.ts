/**
 * What one request may ask of the server. The numbers a route's schema enforces live here, so
 * the schemas, GET /v1/model and the tests read them from one place.
 */

export const LIMITS = Object.freeze({
  /** Faces in a /v1/grid contact sheet and latents in one POST /v1/generate. */
  maxImages: 64,
  maxUpscale: 8,
  /** Frames from one face to the next in /v1/interpolate. */
  maxSteps: 64,
  /** POST body bytes. */
  bodyBytes: 1024 * 1024,
  /** |z| in POST /v1/generate (finite latents; JSON's 1e999 parses to Infinity). */
  maxLatent: 1e6,
});

export const DEFAULT_DEADLINE_MS = 30_000;
