import { DEMO_RECIPE, demoSpec } from '../config/demo.js';
import { DatasetReader } from '../data/dataset-file.js';
import { createEngine, type EngineChoice } from '../engines/create-engine.js';
import type { TrainingEngine } from '../engines/engine.js';
import { sampleLatents } from '../engines/randomness.js';
import { engineFaces, measureAgreement, type AgreementReport } from '../eval/attribute-agreement.js';
import { AttributeClassifier, readLabelledImages, type AttributeAccuracy } from '../eval/attribute-classifier.js';
import { attributeDraw, type ModelAttributes } from '../inference/attributes.js';
import { countLabelRows } from '../onnx/attribute-rows.js';
import { floatNchwToUint8Hwc, writeGridPng } from '../util/image.js';
import { deriveSeed } from '../util/rng.js';

/**
 * `celeba-gan demo --attributes`: the conditional demo recipe (demoSpec with the synthetic set's
 * 10 attributes) and what shows it works: an attribute classifier trained on the demo's real
 * labelled faces before training (its held-out accuracy printed beside what it measures), the
 * average agreement of faces asked for with and without each attribute, and a grid with a row
 * per attribute setting. The work after training is kept small (issue 18: the demo's
 * post-training work within 15 s): 2 x 10 x AGREEMENT_N faces of the small generator and one
 * classifier pass over them, and one grid.
 */

/** Faces per side (with, without) and attribute for the demo's agreement: 2 x 10 x 50 = 1000 faces. */
export const AGREEMENT_N = 50;
/** Passes over the demo's faces for the classifier (measured: docs/benchmarks.md, bench:conditional). */
const CLASSIFIER_EPOCHS = 4;
/** Faces per grid row. */
const GRID_COLS = 8;

/** The demo's labelled data set as a conditional model sees it: names, frequencies, training rows. */
export function demoModelAttributes(dataPath: string): ModelAttributes {
  const reader = new DatasetReader(dataPath);
  try {
    const attributes = reader.attributes!;
    return { names: attributes.names, frequencies: attributes.frequencies, rows: countLabelRows(reader, attributes.names.length).table() };
  } finally {
    reader.close();
  }
}

/** The conditional demo recipe at `width` on the engine already chosen (it replaces the unconditional probe). */
export function conditionalDemoEngine(engine: EngineChoice, width: number, model: ModelAttributes): Promise<TrainingEngine> {
  return createEngine(demoSpec(width, DEMO_RECIPE, { attributes: model.names, frequencies: model.frequencies ?? undefined }), { engine });
}

export interface DemoClassifier {
  classifier: AttributeClassifier;
  /** On the demo's last quarter of faces (at most 512), which it did not train on. */
  accuracy: AttributeAccuracy[];
  mean: number;
}

/** Train the classifier on the demo's faces but its last quarter (at most 512), scored on that quarter. */
export async function trainDemoClassifier(dataPath: string, seed: number, signal?: AbortSignal): Promise<DemoClassifier> {
  const reader = new DatasetReader(dataPath);
  let train;
  let heldOut;
  try {
    const held = Math.min(512, Math.floor(reader.count / 4));
    train = readLabelledImages(reader, 0, reader.count - held);
    heldOut = readLabelledImages(reader, reader.count - held, held);
  } finally {
    reader.close();
  }
  const classifier = await AttributeClassifier.train(train, { epochs: CLASSIFIER_EPOCHS, seed, signal });
  const accuracy = await classifier.accuracy(heldOut);
  return { classifier, accuracy, mean: accuracy.reduce((s, a) => s + a.accuracy, 0) / accuracy.length };
}

/** Label rows for n faces of `seed` drawn from the training rows, as `generate` draws them with no --attr. */
export function drawnLabels(model: ModelAttributes, seed: number, n: number): Float32Array {
  return attributeDraw(model, undefined)!.rowsFor(seed, 0, n);
}

/** The demo's agreement: AGREEMENT_N faces with and without each attribute, EMA generator. */
export function demoAgreement(engine: TrainingEngine, model: ModelAttributes, classifier: AttributeClassifier, seed: number): Promise<AgreementReport> {
  return measureAgreement({
    model,
    classifier,
    faces: engineFaces(engine, 'ema', seed, AGREEMENT_N),
    n: AGREEMENT_N,
    seed: deriveSeed(seed, 'demo-agreement'),
  });
}

/**
 * The grid's requests, one row each: first the faces as drawn from the training rows (no
 * request), then each attribute at its rarer setting (`Eyeglasses`, `-No_Beard`), so each row
 * shows one attribute change on the same latents.
 */
export function gridRequests(model: ModelAttributes): string[] {
  return ['', ...model.names.map((name, i) => ((model.frequencies?.[i] ?? 0) > 0.5 ? `-${name}` : name))];
}

/** grid.png: a row per request of gridRequests, GRID_COLS faces each, on the same latents (EMA generator). */
export async function writeAttributeGrid(engine: TrainingEngine, model: ModelAttributes, path: string, seed: number): Promise<string[]> {
  const requests = gridRequests(model);
  const { spec } = engine;
  const k = model.names.length;
  const z = sampleLatents(spec, deriveSeed(seed, 'demo-grid'), GRID_COLS);
  const rows = requests.length;
  const latents = new Float32Array(rows * GRID_COLS * spec.zDim);
  const labels = new Float32Array(rows * GRID_COLS * k);
  requests.forEach((request, r) => {
    latents.set(z, r * GRID_COLS * spec.zDim);
    labels.set(attributeDraw(model, request)!.rowsFor(deriveSeed(seed, 'demo-grid'), 0, GRID_COLS), r * GRID_COLS * k);
  });
  const n = rows * GRID_COLS;
  const { channels: c, height: h, width: w } = spec.image;
  const images = floatNchwToUint8Hwc(await engine.generate(latents, n, 'ema', labels), n, c, h, w);
  await writeGridPng(path, images, n, h, w, c, { cols: GRID_COLS, upscale: 4 });
  return requests.map((r) => r || '(as drawn)');
}

const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;

/** The summary's lines for --attributes. */
export function agreementLines(agreement: AgreementReport, trained: DemoClassifier, grid: string[], gridPath: string): string[] {
  const per = agreement.attributes.map((a) => `${a.name} ${pct(a.agreement)}`).join(', ');
  return [
    `  attributes: average agreement ${pct(agreement.mean)} (${agreement.attributes[0]?.n ?? 0} faces with and ${agreement.attributes[0]?.n ?? 0} without each attribute, read by a classifier of ${pct(trained.mean)} held-out accuracy on real faces)`,
    `    ${per}`,
    `  grid rows (${gridPath}): ${grid.join(' | ')}`,
  ];
}
