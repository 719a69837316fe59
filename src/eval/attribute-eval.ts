import type { DatasetReader } from '../data/dataset-file.js';
import type { TrainingEngine } from '../engines/engine.js';
import { CelebaGanError, UsageError } from '../errors.js';
import { attributeDraw, type AttributeDraw, type ModelAttributes } from '../inference/attributes.js';
import type { GeneratorSession } from '../inference/session.js';
import { Rng } from '../util/rng.js';
import { itemAt } from '../util/at.js';
import type { ColourDistance } from './colour.js';
import { checkSizes, MIN_EVAL_N, type EvalProgress } from './evaluate.js';
import { engineSource, onnxSource, type ImageSource } from './sources.js';
import { SWD_DEFAULTS, type ImageSet, type SwdOptions, type SwdResult } from './swd.js';
import { sharedSwdKernel, type SwdKernel } from './swd-kernel.js';
import { realHalvesScores, type MetricPair } from './yardstick.js';

/**
 * Per-attribute SWD of a conditional generator: does a face asked for with an attribute look like
 * the real faces that have it?
 *
 *   for each attribute A of the model that the real set labels (matched by name), and each side:
 *     real   = the data set's images with A = +1 (side `on`) or A = -1 (side `off`)
 *     m      = min(n, floor(|real| / 2)); below MIN_EVAL_N (2) the side is skipped, with the count:
 *              the same minimum eval holds every comparison to (2m real images: R1 and R2)
 *     R1, R2 = 2m of them, a sample fixed by (seed, A, side)
 *     G      = images 0..m-1 of `seed` asked for as `A` (or `-A`): the same latents as eval's
 *              overall set; the attributes not named drawn from the model's training label rows
 *              given A, exactly as `generate --attr A` draws them (src/inference/attributes.ts)
 *     SWD(G, R1) beside SWD(R2, R1), the real subset's own real-halves baseline, at this m; and the
 *     colour check beside its baseline (SWD normalises colour away, so a hair colour shows there)
 *
 * A ratio near 1 says the faces asked for with A are as close to the real faces with A as two
 * halves of those real faces are to each other. Memory: 3m images at a time, and the real set's
 * labels (count x K bytes: 8 MB for CelebA's 202,599 images and 40 attributes).
 */

export const ATTRIBUTE_SIDES = Object.freeze(['on', 'off'] as const);
export type AttributeSide = (typeof ATTRIBUTE_SIDES)[number];

/** A conditional generator as per-attribute evaluation runs it. */
export interface ConditionalGenerator {
  /** For messages and reports: the model's path, or the training run. */
  readonly label: string;
  /** Names in input order, training frequencies and label rows (the draw's pool). */
  readonly attributes: ModelAttributes;
  /** Size of its images. */
  readonly height: number;
  readonly width: number;
  /** Images 0..count-1 of `seed` with label rows from `draw`; the latents do not depend on the draw. */
  images(draw: AttributeDraw, count: number, seed: number): ImageSource;
}

/** An exported conditional .onnx generator; E_NOT_CONDITIONAL for an unconditional one. */
export function onnxConditional(session: GeneratorSession): ConditionalGenerator {
  const { attributes, modelPath, image } = session.info;
  if (!attributes) throw notConditional(`model ${modelPath}`);
  return { label: modelPath, attributes, height: image.height, width: image.width, images: (draw, count, seed) => onnxSource(session, count, seed, draw) };
}

/**
 * A conditional training engine's generator (inference mode, raw weights), with `attributes` in
 * the engine's order (their rows: countLabelRows(reader, K).table() of the training data).
 */
export function engineConditional(engine: TrainingEngine, attributes: ModelAttributes, label = 'training generator'): ConditionalGenerator {
  const names = engine.spec.conditioning?.attributes;
  if (!names) throw notConditional(label);
  if (names.join(',') !== attributes.names.join(','))
    throw new RangeError(`${label} is conditional on ${names.join(', ')}, but the attributes given are ${attributes.names.join(', ')}`);
  return {
    label,
    attributes,
    height: engine.spec.image.height,
    width: engine.spec.image.width,
    images: (draw, count, seed) => engineSource(engine, count, seed, `${label}, attributes ${draw.request.text}`, (start, k) => draw.rowsFor(seed, start, k)),
  };
}

function notConditional(what: string): UsageError {
  return new UsageError('E_NOT_CONDITIONAL', `per-attribute SWD needs a conditional generator, but ${what} is unconditional: it has no attributes`, {
    hint: 'Evaluate a model trained with `celeba-gan train --conditional` (and exported again), or leave --per-attribute at auto.',
  });
}

export interface AttributeEvalOptions {
  generator: ConditionalGenerator;
  /** The labelled real set; its attributes are matched to the model's by name. */
  real: DatasetReader;
  /** Images per set at most: an attribute side with fewer than 2n real images is compared at half of them. */
  n: number;
  /** Seeds the latents (image i of eval's overall set has the same z) and the real samples. */
  seed: number;
  /** Default: both, `on` first. */
  sides?: readonly AttributeSide[];
  /** The model's attributes to evaluate, by name (default: all of them). */
  attributes?: readonly string[];
  /** Default: SWD_DEFAULTS with `seed`. */
  swd?: SwdOptions;
  /** SWD's projection kernel; default: the process's `auto` kernel. */
  swdKernel?: SwdKernel;
  /** Images generated at a time (default 64). */
  chunk?: number;
  /** Phase `attributes`: done / total attribute settings (attribute and side). */
  onProgress?: (p: EvalProgress) => void;
}

interface ScoreBase {
  attribute: string;
  side: AttributeSide;
  /** The request the faces were generated with: `Smiling` or `-Smiling`. */
  request: string;
  /** Real images in the data set with this value of the attribute. */
  realCount: number;
}

/** One attribute side: its scores at m images per set, or why it has none. */
export type AttributeScore =
  | (ScoreBase & {
      /** Images per set: min(n, floor(realCount / 2)). */
      n: number;
      swd: MetricPair<SwdResult>;
      colour: MetricPair<ColourDistance>;
      /** The draw's notes (e.g. no training row has the attribute, so the others were drawn independently). */
      notes: readonly string[];
    })
  | (ScoreBase & { skipped: string });

export interface AttributeEvalReport {
  generator: string;
  real: string;
  /** Images per set asked for (each side uses at most this many). */
  n: number;
  seed: number;
  sides: AttributeSide[];
  /** Images per set below which a side is skipped (its real set then holds fewer than 2x this). */
  minPerSet: number;
  /** In the model's order, each attribute's sides in the order asked. */
  scores: AttributeScore[];
  /** The model's attributes the real set has no labels for: not evaluated. */
  notInData: string[];
  swd: { options: Required<SwdOptions>; kernel: string };
  seconds: number;
}

/**
 * Why per-attribute SWD cannot run on this real set, or null when it can: `real` undefined means
 * the real images are not a .cgds data set (a folder or a zip carries no labels here).
 */
export function attributeEvalUnavailable(model: ModelAttributes, real: DatasetReader | undefined, realLabel: string): string | null {
  const prepare = 'prepare a labelled data set with `celeba-gan prepare --attributes list_attr_celeba.txt` (or --synthetic)';
  if (!real) return `the real set ${realLabel} is not a .cgds data set, so it carries no attribute labels; ${prepare}`;
  const labelled = real.attributes;
  if (!labelled) return `the real set ${realLabel} has no attribute labels (it was prepared without them); ${prepare}`;
  if (!model.names.some((a) => labelled.names.includes(a)))
    return `the real set ${realLabel} labels ${labelled.names.join(', ')}: none of the model's attributes (${model.names.join(', ')})`;
  return null;
}

export async function evaluateAttributes(opts: AttributeEvalOptions): Promise<AttributeEvalReport> {
  const started = performance.now();
  const { generator, real, n, seed } = opts;
  const plan = planAttributeEval(opts);
  const labels = readAllLabels(real);
  const dataNames = real.attributes!.names;
  const swdOptions: Required<SwdOptions> = { ...SWD_DEFAULTS, seed, ...opts.swd };
  const kernel = opts.swdKernel ?? (await sharedSwdKernel());
  const scores: AttributeScore[] = [];
  opts.onProgress?.({ phase: 'attributes', done: 0, total: plan.settings });
  for (const attribute of plan.attributes) {
    for (const side of plan.sides) {
      const carrying = imagesWith(labels, dataNames.length, dataNames.indexOf(attribute), side === 'on' ? 1 : -1);
      scores.push(await scoreSide({ ...opts, attribute, side, carrying, swdOptions, kernel }));
      opts.onProgress?.({ phase: 'attributes', done: scores.length, total: plan.settings });
    }
  }
  return {
    generator: generator.label,
    real: real.path,
    n,
    seed,
    sides: [...plan.sides],
    minPerSet: MIN_EVAL_N,
    scores,
    notInData: plan.notInData,
    swd: { options: swdOptions, kernel: kernel.description },
    seconds: (performance.now() - started) / 1000,
  };
}

/** Check the options; the attributes to evaluate (in the model's order) and those the data lacks. */
function planAttributeEval(opts: AttributeEvalOptions): { attributes: string[]; notInData: string[]; sides: readonly AttributeSide[]; settings: number } {
  const { generator, real, n } = opts;
  if (!Number.isInteger(n) || n < MIN_EVAL_N)
    throw new CelebaGanError('E_BAD_ARGUMENT', `Expected integer >= ${MIN_EVAL_N} for n but received ${String(n)}`, {
      hint: `Per-attribute SWD needs at least ${MIN_EVAL_N} images per set; 1000 or more gives stable numbers.`,
    });
  const model = generator.attributes;
  const why = attributeEvalUnavailable(model, real, real.path);
  if (why) throw new UsageError('E_EVAL_NO_LABELS', why, { hint: 'Per-attribute SWD compares faces with an attribute to real faces labelled with it.' });
  checkSizes(generator, { label: real.path, height: real.header.height, width: real.header.width });
  const asked = opts.attributes ?? model.names;
  for (const a of asked) {
    if (!model.names.includes(a))
      throw new UsageError('E_ATTR_UNKNOWN', `${generator.label} has no attribute "${a}"; its attributes: ${model.names.join(', ')}`, {
        hint: 'Name attributes as the model lists them (case matters).',
      });
  }
  const dataNames = real.attributes!.names;
  const wanted = model.names.filter((a) => asked.includes(a));
  const sides = [...new Set(opts.sides ?? ATTRIBUTE_SIDES)];
  if (sides.length === 0 || sides.some((s) => !ATTRIBUTE_SIDES.includes(s)))
    throw new RangeError(`sides must be one or both of ${ATTRIBUTE_SIDES.join(', ')}; received ${JSON.stringify(sides)}`);
  const attributes = wanted.filter((a) => dataNames.includes(a));
  return { attributes, notInData: wanted.filter((a) => !dataNames.includes(a)), sides, settings: attributes.length * sides.length };
}

/** Labels read per call: 4096 images at a time, whatever the data set's size. */
const LABEL_CHUNK = 4096;

/** Every image's labels, K per image, +1/-1 as int8 (count x K bytes). */
function readAllLabels(reader: DatasetReader): Int8Array {
  const k = reader.attributes!.names.length;
  const out = new Int8Array(reader.count * k);
  const chunk = new Float32Array(LABEL_CHUNK * k);
  for (let first = 0; first < reader.count; first += LABEL_CHUNK) {
    const count = Math.min(LABEL_CHUNK, reader.count - first);
    const got = reader.readLabels(
      Uint32Array.from({ length: count }, (_, i) => first + i),
      chunk,
    );
    out.set(Int8Array.from(got.subarray(0, count * k)), first * k);
  }
  return out;
}

/** Indices of the images whose label in `column` (of k per image) is `value`, ascending. */
export function imagesWith(labels: Int8Array, k: number, column: number, value: 1 | -1): Uint32Array {
  const out: number[] = [];
  for (let i = 0, count = labels.length / k; i < count; i++) if (labels[i * k + column] === value) out.push(i);
  return Uint32Array.from(out);
}

/**
 * The 2m real images of one attribute side, R1 (the first m) then R2: a sample of `carrying` (the
 * images with that value) fixed by (seed, attribute, side).
 */
export function attributeRealSample(carrying: Uint32Array, m: number, seed: number, attribute: string, side: AttributeSide): Uint32Array {
  if (2 * m > carrying.length) throw new RangeError(`attributeRealSample: 2 x ${m} images asked of ${carrying.length}`);
  const order = new Rng(seed, 'eval-attribute-real', attribute, side).permutation(carrying.length);
  return Uint32Array.from(order.subarray(0, 2 * m), (i) => itemAt(carrying, i, 'carrying'));
}

interface SideJob extends AttributeEvalOptions {
  attribute: string;
  side: AttributeSide;
  carrying: Uint32Array;
  swdOptions: Required<SwdOptions>;
  kernel: SwdKernel;
}

async function scoreSide(job: SideJob): Promise<AttributeScore> {
  const { attribute, side, carrying, generator, real, seed } = job;
  const request = side === 'on' ? attribute : `-${attribute}`;
  const base: ScoreBase = { attribute, side, request, realCount: carrying.length };
  const m = Math.min(job.n, Math.floor(carrying.length / 2));
  if (m < MIN_EVAL_N) {
    const one = carrying.length === 1;
    const which = side === 'on' ? (one ? 'has' : 'have') : one ? 'lacks' : 'lack';
    return {
      ...base,
      skipped: `${carrying.length} real image${one ? '' : 's'} ${which} it; SWD beside its baseline needs ${2 * MIN_EVAL_N} (${MIN_EVAL_N} to compare with, ${MIN_EVAL_N} for the real halves)`,
    };
  }
  const { height, width } = real.header;
  const sample = attributeRealSample(carrying, m, seed, attribute, side);
  const r1: ImageSet = { data: real.read(sample.subarray(0, m)), n: m, height, width };
  const r2: ImageSet = { data: real.read(sample.subarray(m)), n: m, height, width };
  const draw = attributeDraw(generator.attributes, request, generator.label)!;
  const gen = await readGenerated(generator.images(draw, m, seed), m, job.chunk ?? 64);
  const scores = await realHalvesScores(r1, r2, [gen], { swd: job.swdOptions, run: { kernel: job.kernel } });
  const g = itemAt(scores.generated, 0, 'generated score');
  return {
    ...base,
    n: m,
    swd: { value: g.swd, baseline: scores.baseline.swd },
    colour: { value: g.colour, baseline: scores.baseline.colour },
    notes: draw.notes,
  };
}

async function readGenerated(source: ImageSource, count: number, chunk: number): Promise<ImageSet> {
  const bytes = source.height * source.width * 3;
  const data = new Uint8Array(count * bytes);
  for (let done = 0; done < count; done += chunk) {
    const k = Math.min(chunk, count - done);
    data.set(await source.read(done, k), done * bytes);
  }
  return { data, n: count, height: source.height, width: source.width };
}
