import type { Argv, CommandModule } from 'yargs';
import { PROVIDER_NAMES, parseProvider } from '../bindings/onnxruntime.js';
import { DatasetReader } from '../data/dataset-file.js';
import { assertInteger, assertOneOf } from '../errors.js';
import {
  DETECTORS,
  EVAL_BACKENDS,
  FEATURE_SPACES,
  INCEPTION_RANGES,
  checkSources,
  datasetSource,
  evaluate,
  loadDetector,
  loadExtractor,
  onnxSource,
  sampleIndices,
  type EvalReport,
} from '../eval/index.js';
import { openGenerator } from '../inference/session.js';
import { pickDataset, pickModel } from './defaults.js';
import { Progress } from './progress.js';

/** `celeba-gan eval`: KID / FID on face features and a face-detection rate, offline. */

interface EvalArgs {
  model?: string;
  real?: string;
  n: number;
  features: string;
  inception?: string;
  'inception-range': string;
  detector: string;
  seed: number;
  json: boolean;
  provider: string;
  'eval-backend': string;
  'kid-subsets': number;
  'kid-subset-size': number;
}

export const DEFAULT_EVAL_N = 2000;
/** Fixed by default so two evaluations of the same model give the same numbers. */
export const DEFAULT_EVAL_SEED = 0;

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** A readable report; every number sits next to the feature space it was measured in. */
export function formatReport(r: EvalReport, seed: number): string {
  const lines = [
    `celeba-gan eval (celeba-gan ${r.celebaGanVersion}): n = ${r.n} per set, seed ${seed}`,
    `  generated  ${r.generated.label}  [${r.generated.height}x${r.generated.width}]`,
    `  real       ${r.real.label}  [${r.real.height}x${r.real.width}]`,
    `  features   ${r.features.description}`,
    `             run on ${r.features.runtime}; numbers from other extractors or other n are not comparable`,
    '',
    `  KID   ${r.kid.value.toExponential(3)} ± ${r.kid.std.toExponential(2)}   (x1000: ${(1000 * r.kid.value).toFixed(2)}; unbiased, ${r.kid.subsets} subsets of ${r.kid.subsetSize}${r.kid.subsetSize >= r.n ? ', each the whole set: no spread' : ''}; lower is better, 0 = same distribution)`,
    `  FID   ${r.fid.value.toFixed(3)}   (means ${r.fid.meanTerm.toFixed(3)} + covariances ${r.fid.covTerm.toFixed(3)}; ${r.features.features}, not Inception-FID${r.features.features === 'inception' ? ' unless the file is the standard pool3 network' : ''})`,
  ];
  if (r.detector) {
    const real = r.detector.real ? `, real ${pct(r.detector.real.rate)}` : '';
    lines.push(
      `  faces detected   generated ${pct(r.detector.generated.rate)}${real}   (score > ${r.detector.threshold}; mean best score ${r.detector.generated.meanScore.toFixed(3)})`,
      `                   ${r.detector.description}, on ${r.detector.runtime}`,
    );
  }
  lines.push('', `  time: real ${r.seconds.real.toFixed(1)} s, generated ${r.seconds.generated.toFixed(1)} s, metrics ${r.seconds.metrics.toFixed(1)} s`);
  return lines.join('\n');
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Measure a generator offline: KID / FID on face features (faceres) or Inception, and a face-detection rate',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', describe: 'ONNX generator; default: the newest .onnx in models/' })
      .option('real', { type: 'string', describe: 'Real images (.cgds) to compare with; default: the newest data set in data/' })
      .option('n', { type: 'number', default: DEFAULT_EVAL_N, describe: 'Images per set (generated and real)' })
      .option('features', { type: 'string', default: 'faceres', describe: `Feature space: ${FEATURE_SPACES.join(', ')} (inception needs --inception)` })
      .option('inception', { type: 'string', describe: 'Inception-v3 ONNX file for the standard FID (never downloaded)' })
      .option('inception-range', { type: 'string', default: '0,1', describe: `Pixel range the Inception file expects: ${INCEPTION_RANGES.join(' | ')}` })
      .option('detector', { type: 'string', default: 'tiny', describe: `Face detector for the detection rate: ${DETECTORS.join(', ')}` })
      .option('seed', { type: 'number', default: DEFAULT_EVAL_SEED, describe: 'Seed of the latents, the real-image sample and the KID subsets' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON (for scripts)' })
      .option('provider', { type: 'string', default: 'auto', describe: `onnxruntime provider for the generator: ${PROVIDER_NAMES.join(', ')}` })
      .option('eval-backend', { type: 'string', default: 'auto', describe: `tfjs backend for faceres and the detector: ${EVAL_BACKENDS.join(', ')} (auto: tensorflow if loaded, else wasm)` })
      .option('kid-subsets', { type: 'number', default: 100, describe: 'KID: number of random subsets averaged' })
      .option('kid-subset-size', { type: 'number', default: 1000, describe: 'KID: images per subset (capped at --n)' })
      .example('$0 eval', 'the newest model in models/ against the newest data set in data/ (2000 images each)')
      .example('$0 eval --model models/celeba28.onnx --real data/celeba-28.cgds --n 5000 --json', 'JSON for scripts')
      .example('$0 eval --features inception --inception pt_inception.onnx', 'standard FID with your own Inception-v3 ONNX file') as unknown as Argv<EvalArgs>,
  handler: async (argv) => {
    const n = assertInteger('n', argv.n, 2);
    const features = assertOneOf('features', argv.features, FEATURE_SPACES);
    const detectorName = assertOneOf('detector', argv.detector, DETECTORS);
    const inceptionRange = assertOneOf('inception-range', argv['inception-range'], INCEPTION_RANGES);
    const backend = assertOneOf('eval-backend', argv['eval-backend'], EVAL_BACKENDS);
    const seed = assertInteger('seed', argv.seed, 0, 2 ** 32 - 1);
    const subsets = assertInteger('kid-subsets', argv['kid-subsets'], 1, 100000);
    const subsetSize = assertInteger('kid-subset-size', argv['kid-subset-size'], 2);
    const provider = parseProvider(argv.provider);

    let model = argv.model;
    if (!model) {
      const pick = pickModel();
      model = pick.path;
      process.stderr.write(`celeba-gan: model ${model} (${pick.why})\n`);
    }
    let realPath = argv.real;
    if (!realPath) {
      const pick = pickDataset();
      realPath = pick.path;
      process.stderr.write(`celeba-gan: real images ${realPath} (${pick.why})\n`);
    }

    const reader = new DatasetReader(realPath);
    const session = await openGenerator(model, { provider });
    try {
      const real = datasetSource(reader, sampleIndices(reader.count, Math.min(n, reader.count), seed), `${realPath}: ${Math.min(n, reader.count)} of ${reader.count} images (seed ${seed})`);
      const generated = onnxSource(session, n, seed);
      // Fail on sizes and counts before loading the extractors.
      checkSources(generated, { ...real, count: reader.count, label: realPath }, n);
      const extractor = await loadExtractor({ features, inception: argv.inception, inceptionRange, backend });
      const detector = await loadDetector(detectorName, backend);
      try {
        if (!argv.json) process.stderr.write(`celeba-gan: ${extractor.info.description} on ${extractor.info.runtime}; generator on ${session.providerUsed}\n`);
        let progress: Progress | null = null;
        const report = await evaluate({
          generated,
          real,
          n,
          extractor,
          detector,
          kid: { subsets, subsetSize, seed },
          onProgress: (p) => {
            if (p.phase === 'metrics') {
              progress?.finish();
              progress = null;
              return;
            }
            if (p.done === 0) {
              progress?.finish();
              progress = new Progress({ label: `${p.phase} images`, total: p.total, unit: 'images' });
            }
            progress?.update(p.done);
          },
        });
        if (argv.json) process.stdout.write(`${JSON.stringify({ ...report, seed, model, realPath }, null, 2)}\n`);
        else process.stdout.write(`${formatReport(report, seed)}\n`);
      } finally {
        await extractor.dispose();
        detector?.dispose();
      }
    } finally {
      await session.close();
      reader.close();
    }
  },
};
