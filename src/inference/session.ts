import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  AUTO_ORDER,
  checkProvider,
  executionProviderConfig,
  loadOnnxruntime,
  parseProvider,
  parseProviderDevice,
  providerStartHint,
  type ConcreteProvider,
  type Ort,
  type ProviderName,
} from '../bindings/onnxruntime.js';
import { CelebaGanError, UsageError, assertInteger } from '../errors.js';
import { readModelSummary } from './model-file.js';
import type { LatentKind } from './latents.js';
import { parseModelAttributes, type ModelAttributes } from './attributes.js';
import { ATTRIBUTES_INPUT, META } from '../onnx/metadata.js';
import { sha256Hex } from '../util/hash.js';

export { latentsFor, checkTruncation, type LatentKind } from './latents.js';

/**
 * The one path to an onnxruntime InferenceSession: validate the model file, read the metadata
 * the exporter (src/onnx) writes, pick an execution provider, check the graph's input `z` (and,
 * for a conditional model, `attributes`) and output `images`. Nothing else in the project
 * creates a session.
 */

/** metadata_props keys written by the exporter (defined once, in src/onnx/metadata.ts). */
export const METADATA_KEYS = META;
const REQUIRED_KEYS = ['version', 'preset', 'width', 'zDim', 'latent', 'imageHeight', 'imageWidth', 'imageChannels', 'layout', 'outputRange'] as const;

/** The only output range generate converts to pixels ([-1, 1] -> 0..255). */
export const SUPPORTED_OUTPUT_RANGE = '-1,1';

export const INPUT_NAME = 'z';
/** A conditional model's second input: [batch, K] label rows (src/inference/attributes.ts draws them). */
export const ATTRIBUTES_INPUT_NAME = ATTRIBUTES_INPUT;
export const OUTPUT_NAME = 'images';

export interface GeneratorInfo {
  /** celeba-gan version that exported the model. */
  version: string;
  preset: string;
  width: number;
  zDim: number;
  latent: LatentKind;
  image: { channels: number; height: number; width: number };
  layout: 'NCHW';
  outputRange: [number, number];
  /** Training step of the exported checkpoint (null when the exporter had none). */
  step: number | null;
  checkpointSha256: string | null;
  /** The .onnx file: absolute path and the sha256 of its bytes. */
  modelPath: string;
  modelSha256: string;
  /**
   * A conditional model's attributes (names in input order, training frequencies, training label
   * rows); null for an unconditional model. Requests are drawn with src/inference/attributes.ts.
   */
  attributes: ModelAttributes | null;
  /** Every metadata_props entry, including ones this version does not interpret. */
  metadata: Record<string, string>;
}

export interface GeneratorSession {
  readonly info: GeneratorInfo;
  readonly providerUsed: ConcreteProvider;
  /** One line per provider considered and not used (`auto`), e.g. `cuda: not installed ...`. */
  readonly providerNotes: readonly string[];
  /**
   * z [n, zDim] (and, for a conditional model, attributes [n, K]: +1/-1 per attribute, in the
   * order of info.attributes.names) -> images [n, C, H, W] float32 in [-1, 1].
   */
  run(z: Float32Array, n: number, attributes?: Float32Array): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface OpenGeneratorOptions {
  provider?: ProviderName;
  /** GPU index for cuda / dml (ignored by cpu). */
  device?: number;
  /** onnxruntime intra-op threads (default: onnxruntime's choice, the physical cores). */
  threads?: number;
  /**
   * false: onnxruntime's pool threads sleep as soon as a run ends instead of spinning for the
   * next one (session.intra_op.allow_spinning = 0), leaving the cores to other work between
   * runs (serve's HTTP). Default: onnxruntime's, spinning.
   */
  spinning?: boolean;
}

const modelHint = 'Pass --model <file.onnx> made by `celeba-gan export --onnx` (run `celeba-gan train` first if you have no run).';

async function readModelBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder, not a file' : (err as Error).message;
    throw new UsageError('E_MODEL_NOT_FOUND', `cannot read model ${path}: ${why}`, { hint: modelHint, cause: err });
  }
}

/** Parse and check the exporter's metadata; `what` names the file in messages. */
export function parseGeneratorMetadata(metadata: Map<string, string>, what: string): Omit<GeneratorInfo, 'modelPath' | 'modelSha256'> {
  const missing = REQUIRED_KEYS.filter((k) => !metadata.has(METADATA_KEYS[k])).map((k) => METADATA_KEYS[k]);
  if (missing.length > 0) {
    throw new CelebaGanError('E_MODEL_METADATA', `model ${what} lacks celeba-gan metadata: missing ${missing.join(', ')}`, {
      hint: 'Only generators exported by `celeba-gan export --onnx` carry the latent size and distribution; re-export the run.',
    });
  }
  const get = (k: keyof typeof METADATA_KEYS): string => metadata.get(METADATA_KEYS[k]) ?? '';
  const bad = (k: keyof typeof METADATA_KEYS, wanted: string): never => {
    throw new CelebaGanError('E_MODEL_METADATA', `model ${what} has a bad ${METADATA_KEYS[k]}: expected ${wanted} but found ${JSON.stringify(get(k))}`, {
      hint: 'Re-export the run with `celeba-gan export --onnx`.',
    });
  };
  const positiveInt = (k: keyof typeof METADATA_KEYS): number => {
    const v = Number(get(k));
    return Number.isInteger(v) && v > 0 && /^\d+$/.test(get(k)) ? v : bad(k, 'a positive integer');
  };
  const latent = get('latent');
  if (latent !== 'uniform' && latent !== 'normal') bad('latent', '"uniform" or "normal"');
  if (get('layout') !== 'NCHW') bad('layout', '"NCHW"');
  // The exporter always writes -1,1 (tanh); anything else would be scaled wrongly to pixels.
  if (get('outputRange').replace(/\s+/g, '') !== SUPPORTED_OUTPUT_RANGE)
    bad('outputRange', `"${SUPPORTED_OUTPUT_RANGE}" (the generator's tanh range, the only one celeba-gan converts to pixels)`);
  const width = Number(get('width'));
  if (!(width > 0)) bad('width', 'a positive number');
  const stepText = metadata.get(METADATA_KEYS.step);
  const step = stepText === undefined || stepText === '' ? null : Number(stepText);
  if (step !== null && !(Number.isInteger(step) && step >= 0)) bad('step', 'an integer >= 0');
  return {
    version: get('version'),
    preset: get('preset'),
    width,
    zDim: positiveInt('zDim'),
    latent: latent as LatentKind,
    image: { channels: positiveInt('imageChannels'), height: positiveInt('imageHeight'), width: positiveInt('imageWidth') },
    layout: 'NCHW',
    outputRange: [-1, 1],
    step,
    checkpointSha256: metadata.get(METADATA_KEYS.checkpointSha256) || null,
    attributes: parseModelAttributes(metadata, what),
    metadata: Object.fromEntries(metadata),
  };
}

export type OrtSession = Awaited<ReturnType<Ort['InferenceSession']['create']>>;

/**
 * Checks the graph's input and output against the metadata. The batch dim may be symbolic (any
 * batch) or a fixed number (a model exported or edited for one batch size): returns that number,
 * or null when any batch runs.
 */
function checkIo(session: OrtSession, info: Omit<GeneratorInfo, 'modelPath' | 'modelSha256'>, what: string): number | null {
  const fail = (message: string): never => {
    throw new CelebaGanError('E_MODEL_IO', `model ${what} ${message}`, {
      hint: 'celeba-gan needs a generator with input `z` float32 [batch, zDim] and output `images` float32 [batch, C, H, W]; re-export with `celeba-gan export --onnx`.',
    });
  };
  const input = session.inputMetadata.find((m) => m.name === INPUT_NAME);
  if (!input) fail(`has no input "${INPUT_NAME}" (inputs: ${session.inputNames.join(', ') || 'none'})`);
  const output = session.outputMetadata.find((m) => m.name === OUTPUT_NAME);
  if (!output) fail(`has no output "${OUTPUT_NAME}" (outputs: ${session.outputNames.join(', ') || 'none'})`);
  const k = info.attributes?.names.length ?? 0;
  const inputs = k > 0 ? [INPUT_NAME, ATTRIBUTES_INPUT_NAME] : [INPUT_NAME];
  if (session.inputNames.length !== inputs.length || !inputs.every((name) => session.inputNames.includes(name))) {
    const why = k > 0 ? `its metadata lists ${k} attributes` : `its metadata lists no attributes (${METADATA_KEYS.attributes})`;
    fail(`has inputs ${session.inputNames.join(', ')}; expected ${inputs.map((name) => `"${name}"`).join(' and ')}, as ${why}`);
  }
  const shapeOk = (m: typeof input, want: number[]): boolean =>
    m!.isTensor && m!.type === 'float32' && m!.shape.length === want.length && m!.shape.every((d, i) => i === 0 || typeof d !== 'number' || d === want[i]);
  const describeMeta = (m: typeof input): string => (m!.isTensor ? `${m!.type} [${m!.shape.join(', ')}]` : 'a non-tensor value');
  if (!shapeOk(input, [0, info.zDim]))
    fail(`input "${INPUT_NAME}" is ${describeMeta(input)}; expected float32 [batch, ${info.zDim}] (z_dim from its metadata)`);
  const labels = session.inputMetadata.find((m) => m.name === ATTRIBUTES_INPUT_NAME);
  if (k > 0 && !shapeOk(labels, [0, k]))
    fail(`input "${ATTRIBUTES_INPUT_NAME}" is ${describeMeta(labels)}; expected float32 [batch, ${k}] (one value per attribute its metadata lists)`);
  const { channels, height, width } = info.image;
  if (!shapeOk(output, [0, channels, height, width]))
    fail(`output "${OUTPUT_NAME}" is ${describeMeta(output)}; expected float32 [batch, ${channels}, ${height}, ${width}]`);
  // onnxruntime merges a disagreeing output batch leniently; each run's output shape is checked.
  const batch = input!.isTensor ? input!.shape[0] : undefined;
  return typeof batch === 'number' && batch > 0 ? batch : null;
}

export interface OnnxSession {
  ort: Ort;
  session: OrtSession;
  providerUsed: ConcreteProvider;
  /** One line per provider considered and not used (`auto`). */
  providerNotes: string[];
}

/**
 * The provider logic every session goes through: a named provider that cannot be used is an
 * error saying why and how to get it; `auto` tries cuda, dml, cpu and notes why each skipped one
 * was; when all fail, one error lists every failure. `what` names the model in messages.
 * openGenerator uses it; other models (e.g. a feature extractor) should open theirs here too.
 */
export async function openOnnxSession(model: Uint8Array, what: string, opts: OpenGeneratorOptions = {}): Promise<OnnxSession> {
  const provider = parseProvider(opts.provider ?? 'auto');
  const device = parseProviderDevice(opts.device ?? 0);
  const threads = opts.threads === undefined ? undefined : assertInteger('threads', opts.threads, 1, 1024);
  const ort = await loadOnnxruntime();
  const candidates: readonly ConcreteProvider[] = provider === 'auto' ? AUTO_ORDER : [provider];
  const notes: string[] = [];
  const failures: string[] = [];
  for (const candidate of candidates) {
    const check = checkProvider(candidate);
    if (!check.ok) {
      if (provider !== 'auto') {
        throw new CelebaGanError('E_PROVIDER_UNAVAILABLE', `provider "${candidate}" cannot be used: ${check.reason}`, { hint: check.hint });
      }
      notes.push(`${candidate}: ${check.reason}`);
      failures.push(`[${candidate}] ${check.reason}`);
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(model, {
        executionProviders: [executionProviderConfig(candidate, device)],
        graphOptimizationLevel: 'all',
        ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
        ...(opts.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
      });
      return { ort, session, providerUsed: candidate, providerNotes: notes };
    } catch (err) {
      const message = (err as Error).message.trim();
      if (provider !== 'auto') {
        if (candidate === 'cpu') {
          throw new CelebaGanError('E_MODEL_INVALID', `onnxruntime cannot load ${what}: ${message}`, { hint: providerStartHint('cpu'), cause: err });
        }
        throw new CelebaGanError('E_PROVIDER_UNAVAILABLE', `provider "${candidate}" failed to start on device ${device}: ${message}`, {
          hint: providerStartHint(candidate),
          cause: err,
        });
      }
      notes.push(`${candidate}: failed to start (${message})`);
      failures.push(`[${candidate}] ${message}`);
    }
  }
  throw new CelebaGanError('E_NO_PROVIDER', `no execution provider could run ${what}. ERR: ${failures.join(', ')}`, { hint: providerStartHint('cpu') });
}

/** Open a generator exported by `celeba-gan export --onnx` on the asked-for provider. */
export async function openGenerator(modelPath: string, opts: OpenGeneratorOptions = {}): Promise<GeneratorSession> {
  const provider = parseProvider(opts.provider ?? 'auto');
  const threads = opts.threads === undefined ? undefined : assertInteger('threads', opts.threads, 1, 1024);
  const bytes = await readModelBytes(modelPath);
  let summary;
  try {
    summary = readModelSummary(bytes);
  } catch (err) {
    throw new UsageError('E_MODEL_NOT_ONNX', `${modelPath} is not an ONNX model (${(err as Error).message})`, { hint: modelHint, cause: err });
  }
  const partial = parseGeneratorMetadata(summary.metadata, modelPath);
  const info: GeneratorInfo = { ...partial, modelPath: resolve(modelPath), modelSha256: sha256Hex([bytes]) };

  const {
    ort,
    session,
    providerUsed: used,
    providerNotes: notes,
  } = await openOnnxSession(bytes, modelPath, { provider, device: opts.device, threads, spinning: opts.spinning });
  let fixedBatch: number | null;
  try {
    fixedBatch = checkIo(session, partial, modelPath);
  } catch (err) {
    await session.release();
    throw err;
  }

  const live = session;
  const { zDim } = info;
  const k = info.attributes?.names.length ?? 0;
  const { channels, height, width } = info.image;
  const imageSize = channels * height * width;

  /** One call of the graph on exactly `n` latents (and their label rows, y: [n, k]). */
  const runOnce = async (z: Float32Array, y: Float32Array | undefined, n: number): Promise<Float32Array> => {
    const feeds: Record<string, InstanceType<Ort['Tensor']>> = { [INPUT_NAME]: new ort.Tensor('float32', z, [n, zDim]) };
    if (y) feeds[ATTRIBUTES_INPUT_NAME] = new ort.Tensor('float32', y, [n, k]);
    let result;
    try {
      result = await live.run(feeds);
    } catch (err) {
      throw new CelebaGanError('E_MODEL_RUN', `onnxruntime failed to run ${modelPath} on a batch of ${n}: ${(err as Error).message.trim()}`, {
        hint: 'A smaller --batch-size needs less memory; if the model was edited or made by another tool, re-export it with `celeba-gan export --onnx`.',
        cause: err,
      });
    }
    const images = result[OUTPUT_NAME];
    const want = [n, channels, height, width];
    if (!images || images.type !== 'float32' || images.dims.length !== 4 || images.dims.some((d, i) => d !== want[i])) {
      throw new CelebaGanError(
        'E_MODEL_IO',
        `model ${modelPath} returned images [${images?.dims.join(', ') ?? 'none'}] for a batch of ${n}; expected [${want.join(', ')}]`,
        {
          hint: 'Re-export the run with `celeba-gan export --onnx`.',
        },
      );
    }
    return images.data as Float32Array;
  };

  /**
   * A model with a fixed batch B runs in chunks of B; the last chunk is padded with zeros and
   * the padding's images dropped. Each image depends on its own z (and label row) only (batch
   * norm in eval mode), so the faces are the same as from a model with a free batch.
   */
  const runFixed = async (z: Float32Array, y: Float32Array | undefined, n: number, b: number): Promise<Float32Array> => {
    if (n === b) return runOnce(z, y, n);
    const out = new Float32Array(n * imageSize);
    const chunk = new Float32Array(b * zDim);
    const labels = y ? new Float32Array(b * k) : undefined;
    for (let i = 0; i < n; i += b) {
      const m = Math.min(b, n - i);
      chunk.fill(0);
      chunk.set(z.subarray(i * zDim, (i + m) * zDim));
      labels?.fill(0);
      labels?.set(y!.subarray(i * k, (i + m) * k));
      const images = await runOnce(chunk, labels, b);
      out.set(images.subarray(0, m * imageSize), i * imageSize);
    }
    return out;
  };

  let closed = false;
  return {
    info,
    providerUsed: used,
    providerNotes: notes,
    async run(z: Float32Array, n: number, attributes?: Float32Array): Promise<Float32Array> {
      if (closed) throw new Error('GeneratorSession.run called after close()');
      assertInteger('n', n, 1);
      if (z.length !== n * zDim) throw new Error(`z has ${z.length} values; [${n}, ${zDim}] needs ${n * zDim}`);
      checkRunAttributes(info, modelPath, attributes, n);
      return fixedBatch === null ? runOnce(z, attributes, n) : runFixed(z, attributes, n, fixedBatch);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await live.release();
    },
  };
}

/**
 * Whether a call gives label rows as the model needs: always for a conditional model, never for
 * an unconditional one (the engines' codes and wording: E_NO_LABELS, E_NOT_CONDITIONAL).
 */
export function checkAttributesGiven(info: Pick<GeneratorInfo, 'attributes'>, what: string, given: boolean): void {
  const names = info.attributes?.names;
  if (!names && given) {
    throw new UsageError(
      'E_NOT_CONDITIONAL',
      `model ${what}: attribute rows were given, but the model is unconditional (it has no "${ATTRIBUTES_INPUT_NAME}" input)`,
      {
        hint: 'Leave the attributes out (--attr, attr=), or use a model trained with `celeba-gan train --conditional` and exported again.',
      },
    );
  }
  if (names && !given) {
    throw new UsageError(
      'E_NO_LABELS',
      `model ${what} is conditional on ${names.length} attributes (${names.join(', ')}) and needs a label row per image as its "${ATTRIBUTES_INPUT_NAME}" input`,
      {
        hint: 'Draw the rows with attributeDraw(info.attributes, request) (src/inference/attributes.ts): `generate --attr Smiling,-Male`, or no --attr to draw every attribute from the training data.',
      },
    );
  }
}

/** A run's label rows against the model: checkAttributesGiven, then [n, K] finite values. */
export function checkRunAttributes(info: Pick<GeneratorInfo, 'attributes'>, what: string, attributes: Float32Array | undefined, n: number): void {
  checkAttributesGiven(info, what, attributes !== undefined);
  const names = info.attributes?.names;
  if (!names || attributes === undefined) return;
  const k = names.length;
  if (!(attributes instanceof Float32Array) || attributes.length !== n * k) {
    throw new CelebaGanError(
      'E_BAD_LABELS',
      `model ${what}: attributes must be a Float32Array of ${n}x${k} values (${names.join(', ')}); received ${attributes instanceof Float32Array ? attributes.length : typeof attributes}`,
    );
  }
  for (let i = 0; i < attributes.length; i++) {
    if (!Number.isFinite(attributes[i]))
      throw new CelebaGanError('E_BAD_LABELS', `model ${what}: attribute value ${i} (image ${Math.floor(i / k)}, ${names[i % k]}) is ${attributes[i]}`);
  }
}
