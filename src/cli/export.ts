import { basename, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Argv, CommandModule } from 'yargs';
import type { GeneratorWeights } from '../engines/engine.js';
import { UsageError, assertOneOf, describe } from '../errors.js';
import { DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, assertOpset } from '../onnx/export.js';
import { EXPORT_WEIGHTS, exportRun, type ExportRunResult } from '../train/index.js';
import { pickRun } from './defaults.js';
import { Screen } from './output.js';

/** `celeba-gan export --onnx`: a run's checkpoint -> models/<run>.onnx. */

interface ExportArgs {
  run?: string;
  onnx?: string;
  checkpoint: string;
  opset: number;
  'fold-batchnorm': boolean;
  force: boolean;
  weights?: string;
}

/** `latest` or a step number. */
function parseCheckpoint(value: unknown): 'latest' | number {
  if (value === 'latest') return 'latest';
  const text = String(value);
  if (/^\d+$/.test(text)) return Number(text);
  throw new UsageError('E_BAD_ARGUMENT', `Expected \`latest\` or a step number for checkpoint but received ${describe(value)}`, {
    hint: 'List the steps with `ls <run>/checkpoints`, or leave --checkpoint out for the latest.',
  });
}

/** Where a bare `--onnx` writes: models/<run folder name>.onnx. */
function defaultModelPath(runDir: string): string {
  return join('models', `${basename(resolve(runDir))}.onnx`);
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e6 ? 3 : 1)} MB`;
}

function summary(r: ExportRunResult, runDir: string, seconds: number): string[] {
  const s = r.spec;
  const [c, h, w] = [s.image.channels, s.image.height, s.image.width];
  return [
    `  ${s.preset} generator, width ${s.width}, step ${r.step} of ${runDir}; opset ${r.opset}; batch norm ${r.foldBatchNorm ? 'folded' : 'with running statistics'}; ${r.weights === 'ema' ? 'the EMA generator' : 'the raw weights'}`,
    `  ${mb(r.bytes)} (float32 weights ${mb(r.weightBytes)}), ${seconds.toFixed(2)} s`,
    `  z float32 [batch, ${s.zDim}] ~ ${s.latent === 'uniform' ? 'U(-1, 1)' : 'N(0, 1)'} -> images float32 [batch, ${c}, ${h}, ${w}] (NCHW, RGB) in [-1, 1]`,
    ...attributeLines(r),
  ];
}

/** A conditional model's second input and the label rows it carries (for generate --attr). */
function attributeLines(r: ExportRunResult): string[] {
  if (!r.attributes) return [];
  const { names, rows } = r.attributes;
  const carried = rows
    ? `${rows.count} distinct training label row${rows.count === 1 ? '' : 's'} (${((100 * rows.covered) / rows.images).toFixed(1)}% of ${rows.images} images)`
    : 'no training label rows';
  return [`  attributes float32 [batch, ${names.length}] (+1/-1): ${names.join(', ')}; carries their frequencies and ${carried}`];
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export',
  describe: 'Export a trained generator to ONNX (for `generate` and any ONNX runtime)',
  builder: (y: Argv) =>
    y
      .option('onnx', {
        type: 'string',
        describe: 'Write the ONNX model here; a bare --onnx (or none) writes models/<run name>.onnx',
      })
      .option('run', { type: 'string', describe: 'Run folder (holds run.json); default: the newest in runs/' })
      .option('checkpoint', { type: 'string', default: 'latest', describe: '`latest` or a step number' })
      .option('opset', { type: 'number', default: DEFAULT_OPSET, describe: `ONNX opset (${MIN_OPSET}-${MAX_OPSET})` })
      .option('fold-batchnorm', {
        type: 'boolean',
        default: false,
        describe: 'Fold batch norm into the preceding layer weights (fewer nodes; same output)',
      })
      .option('weights', {
        type: 'string',
        describe: 'Which generator: ema (the moving average kept while training; the default when the checkpoint has one) or raw',
      })
      .option('force', { type: 'boolean', default: false, describe: 'Replace an existing, different file' })
      .example('$0 export --onnx', 'export the newest run in runs/ to models/<run>.onnx')
      .example('$0 export --run runs/celeba28 --onnx models/celeba28.onnx --checkpoint 20000', 'a given run and step')
      .example('$0 export --onnx --fold-batchnorm --opset 13', 'batch norm folded, for older runtimes')
      .example('$0 export --onnx models/raw.onnx --weights raw', 'the raw trained weights instead of the EMA generator'),
  handler: async (argv) => {
    const started = performance.now();
    const checkpoint = parseCheckpoint(argv.checkpoint);
    const opset = assertOpset(argv.opset); // before any pick is reported
    const weights = argv.weights === undefined ? undefined : assertOneOf<GeneratorWeights>('weights', argv.weights, EXPORT_WEIGHTS);
    const screen = new Screen();
    let runDir = argv.run;
    if (runDir === undefined) {
      const pick = pickRun();
      runDir = pick.path;
      screen.say(`run ${runDir} (${pick.why})`);
    }
    let out = argv.onnx;
    if (!out) {
      // A bare --onnx is '': the default path, like no --onnx.
      out = defaultModelPath(runDir);
      screen.say(`writing ${out} (default for run ${basename(resolve(runDir))})`);
    }
    const result = await exportRun({
      runDir,
      out,
      checkpoint,
      opset,
      foldBatchNorm: argv['fold-batchnorm'],
      force: argv.force,
      ...(weights ? { weights } : {}),
    });
    for (const note of result.notes) screen.say(`note: ${note}`);
    const seconds = (performance.now() - started) / 1000;
    const head = result.status === 'unchanged' ? `${out} unchanged (it already holds this export)` : `wrote ${out}`;
    screen.result(head, ...summary(result, runDir, seconds));
  },
};
