/**
 * The validation ladder of issue 10 at a larger n than the tests use: for each image size and
 * each real set (synthetic faces; the face photos shipped in @vladmandic/face-api, see
 * test/eval/ladder.ts), every metric `eval` offers by default, for
 *   real halves (the baseline) | same distribution | blur σ1 | blur σ2 | checkerboard ±24 |
 *   uniform noise | flat grey | colour cast ±24 (what the colour check is for)
 * each against R1, with SWD per pyramid level and what src/eval/validity.ts says SWD ranks at
 * that size. Prints a markdown table per set (docs/eval.md's "Valid range of each metric" table comes
 * from here). With --face-metrics it adds faceres KID/FID and the detection rate (slow on the
 * wasm backend), which is how their failure at 64 px was measured.
 *
 *   npm run bench:metrics [-- --sizes 16,28,32,64,96,128 --n 200 --variants 8 --face-metrics --quick]
 *
 * About 9 minutes for the default sizes on two cores; split it with --sizes (16,28,32,64 and 96,128)
 * to keep each run short.
 */
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { colourDistance } from '../src/eval/colour.js';
import { loadTinyFaceDetector } from '../src/eval/face-detector.js';
import { loadFaceres } from '../src/eval/faceres.js';
import { featureSet, fid, kid, type FeatureSet } from '../src/eval/metrics.js';
import { colourShift } from '../src/eval/degrade.js';
import { swdAgainst, type ImageSet } from '../src/eval/swd.js';
import { swdValidity } from '../src/eval/validity.js';
import { photoLadder, syntheticLadder, type Ladder } from '../test/eval/ladder.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '16,28,32,64,96,128' },
    n: { type: 'string', default: '200' },
    variants: { type: 'string', default: '8' },
    'face-metrics': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});
const sizes = args.sizes.split(',').map(Number);
const n = args.quick ? 48 : Number(args.n);
const variants = args.quick ? 4 : Number(args.variants);

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

log(
  `bench:metrics  ${new Date().toISOString()}  ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? '(unset)'}`,
);
log(`synthetic sets: n = ${n}; photo sets: 11 people per half x ${variants} crops = ${11 * variants}`);

const faceres = args['face-metrics'] ? await loadFaceres() : null;
const detector = args['face-metrics'] ? await loadTinyFaceDetector() : null;

async function features(set: ImageSet): Promise<FeatureSet> {
  return featureSet(await faceres!.extract(set.data, set.n, set.height, set.width), set.n, 1024);
}

for (const size of sizes) {
  for (const ladder of [syntheticLadder(size, n), await photoLadder(size, variants)] as Ladder[]) {
    const started = performance.now();
    log('');
    const validity = swdValidity(ladder.size, ladder.size);
    log(`### ${ladder.name}, n = ${ladder.n}; SWD ${validity ? `${validity.levels} levels, ${validity.ranks}` : 'not offered (1 level)'}`);
    const faceCols = faceres ? ' faceres KID x1e3 | faceres FID | detected |' : '';
    log(`| pair | SWD x1e3 (per level) | colour x1e3 |${faceCols}`);
    log(`|---|---|---|${faceres ? '---|---|---|' : ''}`);
    const f1 = faceres ? await features(ladder.r1) : null;
    const rows: [string, ImageSet][] = [
      ['real halves (baseline)', ladder.r2],
      ...ladder.rungs.map((r) => [r.name, r.set] as [string, ImageSet]),
      ['colour cast ±24', colourShift(ladder.r2, [24, 0, -24])],
    ];
    // All rows against R1 at once: R1's descriptors and sorted projections are shared (the same numbers as swd() per row).
    const swds = await swdAgainst(
      ladder.r1,
      rows.map(([, set]) => set),
    );
    for (const [k, [name, set]] of rows.entries()) {
      const s = swds[k]!;
      const levels = s.levels.length > 1 ? ` (${s.levels.map((l) => l.value.toFixed(0)).join(' / ')})` : '';
      let line = `| ${name} | ${s.mean.toFixed(1)}${levels} | ${colourDistance(set, ladder.r1).value.toFixed(2)} |`;
      if (faceres && f1) {
        const fs = await features(set);
        const k = kid(fs, f1, { subsets: 50, subsetSize: ladder.n, seed: 0 });
        const rate = (await detector!.detect(set.data, set.n, set.height, set.width)).rate;
        line += ` ${(1000 * k.kid).toFixed(1)} | ${fid(fs, f1).fid.toFixed(1)} | ${(100 * rate).toFixed(0)}% |`;
      }
      log(line);
    }
    log(`(${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
}
await faceres?.dispose();
detector?.dispose();
