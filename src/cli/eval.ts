import type { Argv, CommandModule } from 'yargs';
import { PROVIDER_NAMES, parseProvider } from '../bindings/onnxruntime.js';
import { UsageError, assertInteger, assertOneOf } from '../errors.js';
import {
  ATTRIBUTE_SIDES,
  attributeEvalUnavailable,
  evaluateAttributes,
  onnxConditional,
  DETECTORS,
  EVAL_BACKENDS,
  SWD_KERNELS,
  INCEPTION_RANGES,
  checkSources,
  evaluate,
  loadDetector,
  loadExtractor,
  openEvalSource,
  openSwdKernel,
  parseSwdKernel,
  smallestSideWithLevels,
  SWD_MIN_LEVELS,
  MIN_EVAL_N,
  type AttributeEvalReport,
  type AttributeSide,
  type EvalProgress,
  type EvalReport,
  type OpenedEvalSource,
  type SwdKernel,
} from '../eval/index.js';
import { FACE_API_PACKAGE, HUMAN_PACKAGE } from '../eval/model-files.js';
import { pickDataset, pickModel } from './defaults.js';
import { Progress } from '../util/progress.js';
import { Screen } from './output.js';
import { itemAt } from '../util/at.js';

/**
 * `celeba-gan eval`: any two image sets (folders, .cgds data sets, .onnx generators), measured
 * offline with SWD and a colour check from 23 px, each beside its real-halves baseline and with
 * what the validation ladder says it ranks at that size;
 * standard FID with a user's Inception; faceres KID/FID and a face-detection rate on request
 * (--face-metrics), since they fail the validation ladder. For a conditional .onnx model and a
 * labelled .cgds, also SWD per attribute (attribute-eval.ts), each beside its own baseline.
 */

interface EvalArgs {
  generated?: string;
  model?: string;
  real?: string;
  n: number;
  resize?: number;
  features: string;
  inception?: string;
  'inception-range': string;
  detector: string;
  'face-metrics': boolean;
  seed: number;
  json: boolean;
  provider: string;
  'eval-backend': string;
  'kid-subsets': number;
  'kid-subset-size': number;
  'swd-kernel': string;
  'per-attribute': string;
  'attr-n'?: number;
}

const DEFAULT_EVAL_N = 1000;
/** Fixed by default so two evaluations of the same model give the same numbers. */
const DEFAULT_EVAL_SEED = 0;
const EVAL_FEATURES = Object.freeze(['faceres', 'inception', 'none'] as const);
/**
 * auto: faces with each attribute (side `on`) when the model is conditional and the real set
 * labelled, else nothing (a conditional model says why); on/off/both: those sides, an error when
 * they cannot run. `off` doubles the time, so auto leaves it out.
 */
const PER_ATTRIBUTE = Object.freeze(['auto', 'on', 'off', 'both', 'none'] as const);
type PerAttributeChoice = (typeof PER_ATTRIBUTE)[number];

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function row(name: string, value: string, baseline: string, note = ''): string {
  return `  ${name.padEnd(30)} ${value.padStart(14)}   ${baseline.padStart(14)}${note ? `   ${note}` : ''}`;
}

/** A readable report: every number beside its real-halves baseline and the model it came from. */
function formatReport(r: EvalReport, seed: number): string {
  const lines = [
    `celeba-gan eval (celeba-gan ${r.celebaGanVersion}): n = ${r.n} per set, ${r.height}x${r.width}, seed ${seed}`,
    `  generated  ${r.generated.label}`,
    ...r.generated.notes.map((note) => `             note: ${note}`),
    `  real       ${r.real.label}`,
    `             R1 = the first ${r.n} (compared with the generated set), R2 = the next ${r.n} (baseline: R2 vs R1)`,
    '',
    row('', 'generated', 'real halves', 'lower is better; read each number against its baseline'),
    row(
      'SWD x1e3 (ProGAN), mean',
      r.swd.value.mean.toFixed(1),
      r.swd.baseline.mean.toFixed(1),
      `${(r.swd.value.mean / r.swd.baseline.mean).toFixed(2)}x the baseline`,
    ),
  ];
  r.swd.value.levels.forEach((l, i) =>
    lines.push(row(`  level ${l.height}x${l.width}`, l.value.toFixed(1), itemAt(r.swd.baseline.levels, i, 'SWD baseline level').value.toFixed(1))),
  );
  lines.push(
    row(
      'colour check x1e3',
      r.colour.value.value.toFixed(2),
      r.colour.baseline.value.toFixed(2),
      `means ${r.colour.value.meanTerm.toFixed(2)} + spread ${r.colour.value.covTerm.toFixed(2)}`,
    ),
  );
  lines.push(
    `  SWD: ${r.swd.options.patchesPerImage} patches of ${r.swd.options.patchSize}x${r.swd.options.patchSize} per image and level, ${r.swd.options.repeats * r.swd.options.directionsPerRepeat} directions, seed ${r.swd.options.seed}; projections on ${r.swd.kernel}`,
  );
  lines.push(`  SWD at ${r.height}x${r.width} (${r.validity.swd.levels} pyramid levels): ${r.validity.swd.note}`);
  lines.push(`  colour check: ${r.validity.colour}`);

  const f = r.features;
  if (f && 'skipped' in f) {
    lines.push('', `  faceres KID and FID: ${f.skipped} (${f.description}; --face-metrics prints them anyway)`);
  } else if (f) {
    const name = f.info.features;
    const k = (v: { value: number; std: number }) => `${(1000 * v.value).toFixed(2)} ± ${(1000 * v.std).toFixed(2)}`;
    lines.push(
      '',
      `  ${name} features: ${f.info.description}, on ${f.info.runtime}; numbers from other extractors or other n are not comparable`,
      row(`${name} KID x1000`, k(f.kid), k(f.kid.baseline), f.blankKid ? `blank-image ceiling ${k(f.blankKid)} (flat grey images score this)` : ''),
      row(
        `${name} FID`,
        f.fid.value.toFixed(2),
        f.fid.baseline.toFixed(2),
        `means ${f.fid.meanTerm.toFixed(2)} + covariances ${f.fid.covTerm.toFixed(2)}${name === 'faceres' ? '; not Inception-FID' : ''}`,
      ),
      `  KID: unbiased, ${f.kid.subsets} subsets of ${f.kid.subsetSize}${f.kid.subsetSize >= r.n ? ', each the whole set: no spread' : ''}`,
    );
  }
  const d = r.detector;
  if (d && 'skipped' in d) {
    lines.push(`  faces detected: ${d.skipped} (${d.description})`);
  } else if (d) {
    lines.push(
      row('faces detected (higher: better)', pct(d.generated.rate), pct(d.baseline.rate), `R1 ${pct(d.real.rate)}; score > ${d.threshold}`),
      `  detector: ${d.description}, on ${d.runtime}`,
    );
  }
  lines.push(
    '',
    `  time: reading ${r.seconds.read.toFixed(1)} s, SWD + colour ${r.seconds.swd.toFixed(1)} s, features ${r.seconds.features.toFixed(1)} s, detector ${r.seconds.detector.toFixed(1)} s`,
  );
  return lines.join('\n');
}

/** One progress bar per phase, each finished when the next starts. */
function progressBars(): { onProgress: (p: EvalProgress) => void; finish: () => void } {
  let progress: Progress | null = null;
  let phase = '';
  return {
    onProgress: (p) => {
      if (p.phase !== phase) {
        progress?.finish();
        phase = p.phase;
        const [label, unit] = PHASE_LABEL[p.phase];
        progress = new Progress({ label, total: p.total, unit });
      }
      progress?.update(p.done);
    },
    finish: () => progress?.finish(),
  };
}

type AttributePlan = { sides: AttributeSide[] } | { skipped: string } | null;

/**
 * What --per-attribute can do with these inputs: the sides to evaluate; why not (auto on a
 * conditional model, printed); or null (none asked for, or auto on an unconditional model, where
 * there is nothing to evaluate per attribute). A side named explicitly that cannot run is an error.
 */
function planPerAttribute(
  choice: PerAttributeChoice,
  generated: OpenedEvalSource,
  real: OpenedEvalSource,
  generatedPath: string,
  realPath: string,
): AttributePlan {
  if (choice === 'none') return null;
  const explicit = choice !== 'auto';
  const model = generated.session?.info.attributes ?? null;
  if (!model) {
    if (!explicit) return null;
    if (generated.session) onnxConditional(generated.session); // throws E_NOT_CONDITIONAL, naming the model
    throw new UsageError(
      'E_NOT_CONDITIONAL',
      `--per-attribute ${choice} needs a conditional .onnx generator, but ${generatedPath} is a ${generated.kind === 'dataset' ? 'data set' : 'set of images'}`,
      {
        hint: 'Pass --model <conditional.onnx> (`celeba-gan train --conditional`, then `export --onnx`), or leave --per-attribute at auto.',
      },
    );
  }
  const why = attributeEvalUnavailable(model, real.dataset, realPath);
  if (why && explicit) throw new UsageError('E_EVAL_NO_LABELS', why, { hint: `Pass --real <labelled.cgds>, or leave --per-attribute at auto to skip it.` });
  if (why) return { skipped: why };
  return { sides: choice === 'both' ? [...ATTRIBUTE_SIDES] : choice === 'auto' ? ['on'] : [choice] };
}

async function runPerAttribute(
  plan: AttributePlan,
  generated: OpenedEvalSource,
  real: OpenedEvalSource,
  opts: { n: number; seed: number; swdKernel: SwdKernel; onProgress: (p: EvalProgress) => void },
): Promise<AttributeEvalReport | { skipped: string } | null> {
  if (!plan || 'skipped' in plan) return plan;
  return evaluateAttributes({ generator: onnxConditional(generated.session!), real: real.dataset!, sides: plan.sides, swd: { seed: opts.seed }, ...opts });
}

function attrRow(name: string, side: string, real: string, n: string, rest: string): string {
  return `  ${name.padEnd(22)} ${side.padEnd(4)} ${real.padStart(7)} ${n.padStart(6)}  ${rest}`;
}

/** The per-attribute table: each side's SWD beside the baseline of its own real subset. */
function formatAttributes(a: AttributeEvalReport | { skipped: string }): string[] {
  if ('skipped' in a) return ['', `  per-attribute SWD: not computed: ${a.skipped}`];
  const lines = [
    '',
    '  per attribute: faces asked for with (on) or without (off) each attribute, against the real images labelled so;',
    '  baseline: two halves of those real images; n = min(--attr-n, half of them); read each ratio against the overall one',
    attrRow('attribute', 'side', 'real', 'n', `${'SWD x1e3'.padStart(9)} ${'halves'.padStart(8)} ${'ratio'.padStart(7)}   colour x1e3 (halves)`),
  ];
  for (const s of a.scores) {
    if ('skipped' in s) {
      lines.push(attrRow(s.attribute, s.side, String(s.realCount), '-', `skipped: ${s.skipped}`));
      continue;
    }
    const { value, baseline } = s.swd;
    const ratio = `${(value.mean / baseline.mean).toFixed(2)}x`;
    const colour = `${s.colour.value.value.toFixed(2)} (${s.colour.baseline.value.toFixed(2)})`;
    lines.push(
      attrRow(
        s.attribute,
        s.side,
        String(s.realCount),
        String(s.n),
        `${value.mean.toFixed(1).padStart(9)} ${baseline.mean.toFixed(1).padStart(8)} ${ratio.padStart(7)}   ${colour}`,
      ),
    );
  }
  if (a.notInData.length > 0) lines.push(`  not evaluated, the real set has no labels for: ${a.notInData.join(', ')}`);
  for (const note of new Set(a.scores.flatMap((s) => ('notes' in s ? s.notes : [])))) lines.push(`  note: ${note}`);
  lines.push(`  time: per-attribute SWD ${a.seconds.toFixed(1)} s`);
  return lines;
}

/** eval's notes (stderr) and its report (stdout), each line escaped. */
const screen = new Screen();

const PHASE_LABEL: Record<EvalProgress['phase'], [string, string]> = {
  real: ['reading real images', 'images'],
  generated: ['reading generated images', 'images'],
  swd: ['SWD (generated, then real halves)', 'levels'],
  features: ['features', 'images'],
  detector: ['face detector', 'images'],
  attributes: ['per-attribute SWD', 'settings'],
};

/** The two paths compared: as given, or the newest model and data set (said on stderr). */
function evalPaths(argv: EvalArgs): { generatedPath: string; realPath: string; flag: '--generated' | '--model' } {
  if (argv.generated !== undefined && argv.model !== undefined) {
    throw new UsageError('E_BAD_ARGUMENT', 'Pass either --generated or --model, not both', {
      hint: '--model <file.onnx> is the short form of --generated <file.onnx>.',
    });
  }

  let generatedPath = argv.generated ?? argv.model;
  const flag = argv.generated !== undefined ? '--generated' : '--model';
  if (!generatedPath) {
    const pick = pickModel();
    generatedPath = pick.path;
    screen.say(`model ${generatedPath} (${pick.why})`);
  }
  let realPath = argv.real;
  if (!realPath) {
    const pick = pickDataset();
    realPath = pick.path;
    screen.say(`real images ${realPath} (${pick.why})`);
  }
  return { generatedPath, realPath, flag };
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe:
    'Compare two image sets offline: SWD and a colour check beside their real-halves baseline; Inception FID; faceres KID/FID and face detection on request',
  builder: (y: Argv) =>
    y
      .option('generated', { type: 'string', describe: 'Images to judge: a folder (or .zip) of JPEG/PNG/WebP images, a .cgds data set, or an .onnx generator' })
      .option('model', { type: 'string', describe: 'Short form of an ONNX --generated; default: the newest .onnx in models/' })
      .option('real', {
        type: 'string',
        describe: 'Real images, as --generated (2n are read: n to compare with, n for the baseline); default: the newest data set in data/',
      })
      .option('n', { type: 'number', default: DEFAULT_EVAL_N, describe: 'Generated images compared (the real set needs 2n)' })
      .option('resize', { type: 'number', describe: "Resize folder images to this square size (centre crop), e.g. to the model's size" })
      .option('features', {
        type: 'string',
        default: 'faceres',
        describe: `KID/FID feature space: ${EVAL_FEATURES.join(', ')} (faceres only with --face-metrics; inception needs --inception)`,
      })
      .option('inception', { type: 'string', describe: 'Inception-v3 ONNX file for the standard FID (never downloaded)' })
      .option('inception-range', { type: 'string', default: '0,1', describe: `Pixel range the Inception file expects: ${INCEPTION_RANGES.join(' | ')}` })
      .option('detector', {
        type: 'string',
        default: 'tiny',
        describe: `Face detector for the detection rate (only with --face-metrics): ${DETECTORS.join(', ')}`,
      })
      .option('face-metrics', {
        type: 'boolean',
        default: false,
        describe: 'Also print faceres KID/FID and the detection rate, which do not rank images in order (meaningless below 64 px; docs/eval.md)',
      })
      .option('seed', {
        type: 'number',
        default: DEFAULT_EVAL_SEED,
        describe: "Seed of the latents, the image samples, SWD's patches and directions, and the KID subsets",
      })
      .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON (for scripts)' })
      .option('provider', { type: 'string', default: 'auto', describe: `onnxruntime provider for a generator: ${PROVIDER_NAMES.join(', ')}` })
      .option('eval-backend', {
        type: 'string',
        default: 'auto',
        describe: `tfjs backend for faceres and the detector: ${EVAL_BACKENDS.join(', ')} (auto: tensorflow if loaded, else wasm)`,
      })
      .option('swd-kernel', {
        type: 'string',
        default: 'auto',
        describe: `SWD's projection kernel: ${SWD_KERNELS.join(', ')} (auto: onnxruntime, else the JS loop; the report says which ran)`,
      })
      .option('per-attribute', {
        type: 'string',
        default: 'auto',
        describe: `SWD per attribute of a conditional model against the real images labelled with it: ${PER_ATTRIBUTE.join(', ')} (auto: on, when the real set is a labelled .cgds; off and both also ask for faces without it, at twice the time)`,
      })
      .option('attr-n', { type: 'number', describe: 'Per-attribute SWD: generated images per attribute at most (default: --n)' })
      .option('kid-subsets', { type: 'number', default: 100, describe: 'KID: number of random subsets averaged' })
      .option('kid-subset-size', { type: 'number', default: 1000, describe: 'KID: images per subset (capped at --n)' })
      .example('$0 eval', 'the newest model in models/ against the newest data set in data/')
      .example('$0 eval --generated out/faces/ --real photos/ --resize 64', 'two folders of images, as pytorch-fid and torch-fidelity compare them')
      .example('$0 eval --model models/celeba28.onnx --real data/celeba-28.cgds --n 500 --json', 'JSON for scripts')
      .example('$0 eval --features inception --inception pt_inception.onnx', 'standard FID with your own Inception-v3 ONNX file')
      .example(
        '$0 eval --model models/cond28.onnx --real data/celeba-28.cgds --per-attribute both --attr-n 300',
        'a conditional model: also SWD of faces with and without each attribute against the real faces labelled so',
      )
      .example(
        '$0 eval --model models/celeba64.onnx --face-metrics',
        'also faceres KID/FID (with its blank-image ceiling) and the detection rate, labelled as unvalidated',
      ),
  handler: async (argv) => {
    const n = assertInteger('n', argv.n, 2);
    const features = assertOneOf('features', argv.features, EVAL_FEATURES);
    const detectorName = assertOneOf('detector', argv.detector, DETECTORS);
    const inceptionRange = assertOneOf('inception-range', argv['inception-range'], INCEPTION_RANGES);
    const backend = assertOneOf('eval-backend', argv['eval-backend'], EVAL_BACKENDS);
    const seed = assertInteger('seed', argv.seed, 0, 2 ** 32 - 1);
    const subsets = assertInteger('kid-subsets', argv['kid-subsets'], 1, 100000);
    const subsetSize = assertInteger('kid-subset-size', argv['kid-subset-size'], 2);
    const resize = argv.resize === undefined ? undefined : assertInteger('resize', argv.resize, smallestSideWithLevels(SWD_MIN_LEVELS), 4096);
    const provider = parseProvider(argv.provider);
    const swdKernelChoice = parseSwdKernel(argv['swd-kernel']);
    const perAttribute = assertOneOf('per-attribute', argv['per-attribute'], PER_ATTRIBUTE);
    const attrN = argv['attr-n'] === undefined ? n : assertInteger('attr-n', argv['attr-n'], MIN_EVAL_N);
    const { generatedPath, realPath, flag } = evalPaths(argv);

    const opened: OpenedEvalSource[] = [];
    try {
      const real = await openEvalSource(realPath, { flag: '--real', count: 2 * n, seed, resize, provider });
      opened.push(real);
      const generated = await openEvalSource(generatedPath, { flag, count: n, seed, resize, provider, onnxOnly: flag === '--model' });
      opened.push(generated);
      // Fail on sizes and counts before loading the extractors.
      checkSources({ ...generated.source, count: generated.available }, { ...real.source, count: real.available, label: realPath }, n);
      // Per-attribute SWD asked for but impossible fails here, before the long overall run.
      const attributePlan = planPerAttribute(perAttribute, generated, real, generatedPath, realPath);
      if (attributePlan && 'skipped' in attributePlan) screen.say(`per-attribute SWD skipped: ${attributePlan.skipped}`);
      for (const note of generated.source.notes ?? []) screen.say(note);
      // faceres and the detector fail the validation ladder: not computed (so not loaded) unless asked for.
      const faceOk = argv['face-metrics'];
      const skipFaceres = features === 'faceres' && !faceOk;
      const skipDetector = detectorName !== 'none' && !faceOk;
      // The SWD kernel first: --swd-kernel onnxruntime that cannot start fails before the extractors load.
      const swdKernel = await openSwdKernel(swdKernelChoice);
      try {
        const extractor = features === 'none' || skipFaceres ? null : await loadExtractor({ features, inception: argv.inception, inceptionRange, backend });
        const detector = skipDetector ? null : await loadDetector(detectorName, backend);
        try {
          if (!argv.json && extractor)
            screen.say(`${extractor.info.description} on ${extractor.info.runtime}${generated.note ? `; generator on ${generated.note}` : ''}`);
          const bars = progressBars();
          const report = await evaluate({
            generated: generated.source,
            real: real.source,
            n,
            extractor,
            detector,
            faceMetrics: faceOk,
            notLoaded: {
              features: skipFaceres ? `faceres (${HUMAN_PACKAGE.name} ${HUMAN_PACKAGE.version})` : undefined,
              detector: skipDetector ? `tiny face detector (${FACE_API_PACKAGE.name} ${FACE_API_PACKAGE.version})` : undefined,
            },
            swd: { seed },
            swdKernel,
            kid: { subsets, subsetSize, seed },
            onProgress: bars.onProgress,
          });
          const attributes = await runPerAttribute(attributePlan, generated, real, { n: attrN, seed, swdKernel, onProgress: bars.onProgress });
          bars.finish();
          if (argv.json) process.stdout.write(`${JSON.stringify({ ...report, attributes, seed, generatedPath, realPath }, null, 2)}\n`);
          else screen.result(...formatReport(report, seed).split('\n'), ...(attributes ? formatAttributes(attributes) : []));
        } finally {
          await extractor?.dispose();
          detector?.dispose();
        }
      } finally {
        await swdKernel.dispose();
      }
    } finally {
      for (const o of opened.reverse()) await o.close();
    }
  },
};
