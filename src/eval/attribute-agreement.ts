import type { GeneratorWeights, TrainingEngine } from '../engines/engine.js';
import { sampleLatents } from '../engines/randomness.js';
import { UsageError, assertInteger } from '../errors.js';
import { attributeDraw, type ModelAttributes } from '../inference/attributes.js';
import { floatNchwToUint8Hwc } from '../util/image.js';
import { deriveSeed } from '../util/rng.js';
import type { AttributeClassifier } from './attribute-classifier.js';

/**
 * Does a conditional generator give what is asked? For each attribute A:
 *   on  = n faces asked for with A     (the request `A`:  attributeDraw(model, 'A'))
 *   off = n faces asked for without A  (the request `-A`)
 * from the SAME n latents, so only the request differs; the attributes not named are drawn from
 * the training rows that agree with the request, exactly as `generate --attr A` draws them.
 * A classifier trained on real labelled faces (src/eval/attribute-classifier.ts) reads A off
 * each face; agreement = the fraction of faces where it reads what was asked, per side, and
 * their mean per attribute (so an attribute that is rare in the data weighs on and off alike).
 * The classifier's own held-out accuracy on real faces bounds what this can show.
 */

/** Faces for n label rows ([n, K], the model's attribute order), always from the same n latents: uint8 HWC. */
export type ConditionalFaces = (labels: Float32Array, n: number) => Promise<Uint8Array>;

export interface AgreementOptions {
  /** The generator's attributes (names in its order, frequencies, training rows). */
  model: ModelAttributes;
  faces: ConditionalFaces;
  classifier: AttributeClassifier;
  /** Faces per side (on, off) and attribute. */
  n: number;
  /** Seed of the attribute draws (the rows for the attributes not named). */
  seed: number;
  /** Only these attributes (default: every attribute of the model the classifier reads). */
  attributes?: readonly string[];
}

export interface AttributeAgreement {
  name: string;
  /** Fraction of the n faces asked for with it that the classifier reads as having it. */
  on: number;
  /** Fraction of the n faces asked for without it that the classifier reads as not having it. */
  off: number;
  /** (on + off) / 2. */
  agreement: number;
  n: number;
}

export interface AgreementReport {
  attributes: AttributeAgreement[];
  /** Mean agreement over the attributes. */
  mean: number;
  seconds: number;
}

export async function measureAgreement(opts: AgreementOptions): Promise<AgreementReport> {
  const started = performance.now();
  const n = assertInteger('faces per side', opts.n, 1, 100_000);
  const names = opts.attributes ?? opts.model.names.filter((name) => opts.classifier.names.includes(name));
  if (names.length === 0) {
    throw new UsageError('E_BAD_ARGUMENT', `The classifier reads none of the model's attributes (model: ${opts.model.names.join(', ')})`, {
      hint: 'Train the classifier on a data set labelled with the attributes the model was trained on.',
    });
  }
  const attributes: AttributeAgreement[] = [];
  for (const name of names) {
    const column = opts.classifier.names.indexOf(name);
    if (column < 0) throw new UsageError('E_ATTR_UNKNOWN', `the classifier does not read ${name}; it reads ${opts.classifier.names.join(', ')}`);
    const share = async (request: string, want: 1 | -1): Promise<number> => {
      const draw = attributeDraw(opts.model, request)!;
      const images = await opts.faces(draw.rowsFor(opts.seed, 0, n), n);
      const read = await opts.classifier.predict(images, n);
      const k = opts.classifier.names.length;
      let agree = 0;
      for (let i = 0; i < n; i++) if (read[i * k + column] === want) agree++;
      return agree / n;
    };
    const on = await share(name, 1);
    const off = await share(`-${name}`, -1);
    attributes.push({ name, on, off, agreement: (on + off) / 2, n });
  }
  const mean = attributes.reduce((s, a) => s + a.agreement, 0) / attributes.length;
  return { attributes, mean, seconds: (performance.now() - started) / 1000 };
}

/**
 * A training engine's conditional generator (raw or EMA) as ConditionalFaces, on n latents of
 * `seed` fixed once (the demo's and the bench's faces; an exported model gives the same images).
 */
export function engineFaces(engine: TrainingEngine, weights: GeneratorWeights, seed: number, n: number): ConditionalFaces {
  const z = sampleLatents(engine.spec, deriveSeed(seed, 'agreement'), n);
  const { channels: c, height: h, width: w } = engine.spec.image;
  return async (labels, count) => {
    if (count !== n) throw new UsageError('E_BAD_ARGUMENT', `Expected ${n} label rows (the latents fixed for these faces) but received ${count}`);
    return floatNchwToUint8Hwc(await engine.generate(z, n, weights, labels), n, c, h, w);
  };
}
