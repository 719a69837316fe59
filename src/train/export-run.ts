import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { emaAsGenerator, hasEma } from '../engines/ema.js';
import type { GeneratorWeights } from '../engines/engine.js';
import { CelebaGanError, UsageError } from '../errors.js';
import { firstNonFinite } from '../model/check-weights.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { DEFAULT_OPSET, assertOpset, buildGeneratorOnnx, generatorWeightBytes } from '../onnx/export.js';
import { META } from '../onnx/metadata.js';
import { ensureFolder, writeFileAtomicSync } from '../util/atomic.js';
import { WEIGHTS_FILE, loadCheckpoint } from './checkpoint.js';
import { ATTRIBUTE_ROWS_FILE, readAttributeRows } from './label-rows.js';
import { readRunConfig } from './run-config.js';

/**
 * A run's checkpoint -> an .onnx file: the run-folder side of exporting. The exporter itself
 * (src/onnx/export.ts) is pure: spec + weights -> bytes.
 */

export interface ExportRunOptions {
  /** Run folder (holds run.json and checkpoints/). */
  runDir: string;
  /** Output .onnx path; its folder is created. */
  out: string;
  checkpoint?: 'latest' | number;
  opset?: number;
  foldBatchNorm?: boolean;
  /** Replace an existing, different file. */
  force?: boolean;
  /**
   * Which generator: `ema` (default when the checkpoint has one; without one the raw weights are
   * exported and `note` says so) or `raw`. `ema` asked for by name on a checkpoint without an EMA
   * generator is E_NO_EMA.
   */
  weights?: GeneratorWeights;
}

export interface ExportRunResult {
  path: string;
  /** `unchanged`: the file already held exactly these bytes. */
  status: 'written' | 'unchanged';
  bytes: number;
  /** Float32 bytes of the generator's tensors, for comparison with `bytes`. */
  weightBytes: number;
  step: number;
  checkpointDir: string;
  checkpointSha256: string;
  opset: number;
  foldBatchNorm: boolean;
  spec: ArchitectureSpec;
  /** The generator exported. */
  weights: GeneratorWeights;
  /** Set when the default (EMA) could not be followed, or a conditional run has no label rows. */
  notes: string[];
  /**
   * A conditional model's attributes: the names and the training label rows it carries (null:
   * none, the run folder lacks them; `covered` of `images` training images have a kept row).
   */
  attributes?: { names: readonly string[]; rows: { count: number; covered: number; images: number } | null };
}

export const EXPORT_WEIGHTS = ['ema', 'raw'] as const;

/** Check that `runDir` is a training run folder; throws E_NO_RUN saying what it is instead. */
export function assertRunFolder(runDir: string): void {
  if (!existsSync(runDir)) {
    throw new CelebaGanError('E_NO_RUN', `run folder ${runDir} does not exist`, {
      hint: 'Run `celeba-gan train` first, or pass --run <folder> of a trained run (one holding run.json).',
    });
  }
  if (!statSync(runDir).isDirectory()) {
    throw new CelebaGanError('E_NO_RUN', `${runDir} is a file, not a run folder`, {
      hint: 'Pass --run <folder> made by `celeba-gan train` (it holds run.json and checkpoints/), not a file inside it.',
    });
  }
  if (readRunConfig(runDir) === null) {
    throw new CelebaGanError('E_NO_RUN', `${runDir} is not a training run: it has no run.json`, {
      hint: 'Pass --run <folder> made by `celeba-gan train` (it holds run.json and checkpoints/).',
    });
  }
}

/** Export a run's checkpoint (default the latest) to an ONNX file, atomically. */
export async function exportRun(o: ExportRunOptions): Promise<ExportRunResult> {
  const opset = assertOpset(o.opset ?? DEFAULT_OPSET);
  const fold = o.foldBatchNorm ?? false;
  assertRunFolder(o.runDir);
  if (o.weights !== undefined && !(EXPORT_WEIGHTS as readonly string[]).includes(o.weights)) {
    throw new UsageError('E_BAD_ARGUMENT', `Unsupported weights "${String(o.weights)}". Should be one of: ${EXPORT_WEIGHTS.join(', ')}`);
  }
  const ckpt = await loadCheckpoint(o.runDir, o.checkpoint ?? 'latest');
  // Any NaN/Inf in the checkpoint (raw, EMA or discriminator) means training had diverged by
  // then: not a model to hand out, whichever generator is asked for.
  const bad = firstNonFinite(ckpt.weights);
  if (bad) {
    throw new CelebaGanError(
      'E_WEIGHTS_NOT_FINITE',
      `checkpoint ${ckpt.dir}: its weights hold ${bad.value} in ${bad.name} (value ${bad.index}); a model of them would only draw noise`,
      {
        hint: 'Export an earlier checkpoint (--checkpoint <step>), one from before training diverged.',
      },
    );
  }
  const sha = ckpt.manifest.files[WEIGHTS_FILE] ?? '';
  const withEma = hasEma(ckpt.spec, ckpt.weights);
  let which: GeneratorWeights = o.weights ?? 'ema';
  const notes: string[] = [];
  if (which === 'ema' && !withEma) {
    if (o.weights === 'ema') emaAsGenerator(ckpt.spec, ckpt.weights, `checkpoint ${ckpt.dir}`); // throws E_NO_EMA
    which = 'raw';
    notes.push(`checkpoint ${ckpt.dir} has no EMA generator (trained with --ema 0 or before EMA existed): exported the raw weights`);
  }
  const names = ckpt.spec.conditioning?.attributes;
  // The rows come from the run folder (label-rows.ts), so the data set need not be where it was.
  const attributeRows = names ? readAttributeRows(o.runDir, ckpt.spec) : null;
  if (names && !attributeRows) {
    notes.push(
      `${join(o.runDir, ATTRIBUTE_ROWS_FILE)} is missing: the model carries no training label rows, so generation draws each attribute not asked for ` +
        `independently at its training frequency (correlations between attributes are lost); \`celeba-gan train --out ${o.runDir} --resume\` counts them again`,
    );
  }
  const emaDecay = ckpt.manifest.extra?.emaDecay;
  const bytes = buildGeneratorOnnx(ckpt.spec, which === 'ema' ? emaAsGenerator(ckpt.spec, ckpt.weights, `checkpoint ${ckpt.dir}`) : ckpt.weights, {
    opset,
    foldBatchNorm: fold,
    metadata: {
      [META.step]: String(ckpt.manifest.step),
      [META.checkpointSha256]: sha,
      'celeba_gan.seed': String(ckpt.manifest.seed),
      'celeba_gan.engine': ckpt.manifest.engine,
      [META.weights]: which,
      ...(which === 'ema' && typeof emaDecay === 'number' ? { [META.emaDecay]: String(emaDecay) } : {}),
    },
    ...(attributeRows ? { attributeRows } : {}),
  });
  const result: ExportRunResult = {
    path: o.out,
    status: 'written',
    bytes: bytes.byteLength,
    weightBytes: generatorWeightBytes(ckpt.spec),
    step: ckpt.manifest.step,
    checkpointDir: ckpt.dir,
    checkpointSha256: sha,
    opset,
    foldBatchNorm: fold,
    spec: ckpt.spec,
    weights: which,
    notes,
    ...(names
      ? {
          attributes: {
            names,
            rows: attributeRows
              ? { count: attributeRows.counts.length, covered: attributeRows.counts.reduce((a, b) => a + b, 0), images: attributeRows.images }
              : null,
          },
        }
      : {}),
  };
  if (existsSync(o.out)) {
    if (statSync(o.out).isDirectory()) {
      throw new CelebaGanError('E_OUTPUT_EXISTS', `${o.out} is a folder, not a file`, { hint: 'Pass a file path ending in .onnx to --onnx.' });
    }
    const existing = readFileSync(o.out);
    if (Buffer.compare(existing, bytes) === 0) return { ...result, status: 'unchanged' };
    if (!o.force) {
      throw new CelebaGanError('E_OUTPUT_EXISTS', `${o.out} already exists and holds a different model`, {
        hint: `Pass --force to replace it, or choose another path with --onnx <file> (e.g. ${join(dirname(o.out), `${basename(o.out, '.onnx')}-step${ckpt.manifest.step}.onnx`)}).`,
      });
    }
  }
  ensureFolder(dirname(o.out));
  writeFileAtomicSync(o.out, bytes);
  return result;
}
