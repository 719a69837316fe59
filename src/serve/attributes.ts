import { CelebaGanError } from '../errors.js';
import { AttributeDraw, parseAttributeRequest, type AttributeRequest } from '../inference/attributes.js';
import { walkFrameCount, type FaceRef } from '../inference/interpolate.js';
import type { GeneratorInfo } from '../inference/session.js';
import { modelFileName } from './context.js';
import { DetailedUsageError } from './errors.js';

/**
 * attr= of the face, grid, batch and interpolate routes (`Smiling,-Male`, the syntax of
 * `generate --attr`), parsed and drawn by src/inference/attributes.ts, the module `generate` and
 * the page use: a face's label row, and so its bytes, are the CLI's for the same (seed, index,
 * request). A request's length is capped by its schema (LIMITS.maxAttrLength), so parsing is
 * bounded; a bad one is a 400 with the registry's code (E_ATTR_UNKNOWN, E_ATTR_REQUEST,
 * E_ATTR_DUPLICATE, E_ATTR_CONFLICT, E_NOT_CONDITIONAL) and the model's attribute names.
 *
 * Draws are kept per canonical request, the most recent `capacity` of them: the page asks for
 * the same attr= once per face, and making a draw scans the model's stored training rows (up
 * to ~22,000 of them, a few ms).
 */

export const DRAW_CACHE_SIZE = 32;

export class RequestDraws {
  /** Canonical request text -> its draw, least recently used first. */
  private readonly cache = new Map<string, AttributeDraw>();
  private readonly modelName: string;

  constructor(
    private readonly info: Pick<GeneratorInfo, 'attributes' | 'modelPath'>,
    private readonly capacity = DRAW_CACHE_SIZE,
  ) {
    this.modelName = modelFileName(info);
  }

  /**
   * The draw for attr= `text` (undefined: not given), as attributeDraw makes it: an
   * unconditional model without attr= has none; a conditional one without attr= draws every
   * attribute from the training rows.
   */
  get(text: string | undefined): AttributeDraw | undefined {
    const model = this.info.attributes;
    if (model === null && text === undefined) return undefined;
    const request = this.parse(text ?? '');
    const kept = this.cache.get(request.text);
    if (kept !== undefined) this.cache.delete(request.text);
    const draw = kept ?? new AttributeDraw(model!, request, this.modelName);
    this.cache.set(request.text, draw);
    if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value!);
    return draw;
  }

  private parse(text: string): AttributeRequest {
    try {
      return parseAttributeRequest(text, this.info.attributes, this.modelName);
    } catch (err) {
      if (err instanceof CelebaGanError && err.kind === 'usage') throw new DetailedUsageError(err, { attributes: this.info.attributes?.names ?? [] });
      throw err;
    }
  }
}

/**
 * The label rows of a walk's frames ([frames, K]), in walkLatents' frame order: each keyframe
 * face's own row (its draw for this request), and between two keyframes the straight line from
 * one row to the next, as the latents go from one face to the next. Attributes the request names
 * are the same at every keyframe, so they stay put along the walk.
 */
export function walkLabels(draw: AttributeDraw, keyframes: readonly FaceRef[], steps: number, loop: boolean): Float32Array {
  const k = draw.attributeCount;
  const keys = keyframes.map((f) => draw.rowsFor(f.seed, f.index, 1));
  const frames = walkFrameCount(keys.length, steps, loop);
  const out = new Float32Array(frames * k);
  const segments = loop ? keys.length : keys.length - 1;
  let frame = 0;
  for (let s = 0; s < segments; s++) {
    const a = keys[s]!;
    const b = keys[(s + 1) % keys.length]!;
    for (let step = 0; step < steps - 1; step++, frame++) {
      const t = step / (steps - 1);
      for (let i = 0; i < k; i++) out[frame * k + i] = step === 0 ? a[i]! : (1 - t) * a[i]! + t * b[i]!;
    }
  }
  if (!loop) out.set(keys[keys.length - 1]!, frame * k);
  return out;
}
