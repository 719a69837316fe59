import { CelebaGanError } from '../errors.js';
import { AttributeDraw, parseAttributeRequest, type AttributeRequest, type NamedAttribute } from '../inference/attributes.js';
import { walkedAttribute } from '../inference/interpolate.js';
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
 * to ~22,000 of them, a few ms). A draw holds 12 bytes per agreeing row, so the cache holds at
 * most 32 x 262 KB = 8.4 MB for the largest table an export writes.
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

  /**
   * walk= of /v1/interpolate: one attribute's name, unsigned, checked as attr= is (E_ATTR_UNKNOWN
   * lists the model's attributes; E_NOT_CONDITIONAL on an unconditional model). `request` is the
   * attr= request beside it, which must leave that attribute to the walk.
   */
  walked(name: string, request: AttributeRequest | undefined): NamedAttribute {
    try {
      return walkedAttribute(name, request, this.info.attributes, { walk: 'walk=', attr: 'attr=' }, this.modelName);
    } catch (err) {
      if (err instanceof CelebaGanError && err.kind === 'usage') throw this.detailed(err);
      throw err;
    }
  }

  private parse(text: string): AttributeRequest {
    try {
      return parseAttributeRequest(text, this.info.attributes, this.modelName);
    } catch (err) {
      if (err instanceof CelebaGanError && err.kind === 'usage') throw this.detailed(err);
      throw err;
    }
  }

  /** The error with the model's attribute names beside it. */
  private detailed(err: CelebaGanError): DetailedUsageError {
    return new DetailedUsageError(err, { attributes: this.info.attributes?.names ?? [] });
  }
}
