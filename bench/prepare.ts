/**
 * `npm run bench:prepare [-- --n 3000 --size 28 --rounds 2 --workers K]`
 *
 * How close does `prepare` come to the speed of sharp itself? Makes N CelebA-like 178x218 JPEGs
 * once (cached in the temp folder), then in one run measures, alternately for --rounds rounds:
 *   ceiling: a bare sharp loop (decode, centre-crop 108, resize, raw pixels), K images in flight,
 *            the crop offsets hard-coded for 178x218 so it needs no metadata call, fed either
 *            file names or file bytes (the faster counts);
 *   prepare: the full pipeline (folder scan, file reading, metadata, decode, ordered writes,
 *            SHA-256, progress bar, atomic rename).
 *   prepare (zip): the same pipeline reading the same files from a deflated zip (reported only).
 * The best round of each is reported with the ratio (target: prepare >= 90% of the ceiling), by
 * wall time and by CPU time per image (all threads), which moves less when others load the machine.
 * Wall timings depend on everything else running on the machine: run it on a quiet one.
 */
import { availableParallelism, tmpdir } from 'node:os';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import yazl from 'yazl';
import { prepareFromImages } from '../src/data/prepare.js';
import { renderSyntheticFace } from '../src/data/synthetic.js';
import { Progress } from '../src/util/progress.js';
import { Rng } from '../src/util/rng.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} needs a positive integer, got ${process.argv[i + 1]}`);
  return v;
}

const N = arg('n', 3000);
const SIZE = arg('size', 28);
const ROUNDS = arg('rounds', 2);
const WORKERS = arg('workers', availableParallelism());
const CROP = 108;

/** CelebA-like inputs: a synthetic face at 178x218 with photo-like noise, JPEG quality 90 (CelebA's files average ~11 kB). */
async function makeInputs(dir: string): Promise<void> {
  const done = join(dir, '.complete');
  if (existsSync(done)) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const progress = new Progress({ label: 'making inputs', total: N, unit: 'img' });
  const face = new Uint8Array(128 * 128 * 3);
  for (let i = 0; i < N; i++) {
    renderSyntheticFace(2018, i, 128, face);
    const rng = new Rng(2018, 'bench-noise', i);
    const noisy = Buffer.from(face);
    for (const [k, v] of noisy.entries()) noisy[k] = Math.max(0, Math.min(255, v + Math.round((rng.uniform() - 0.5) * 24)));
    await sharp(noisy, { raw: { width: 128, height: 128, channels: 3 } })
      .resize(178, 218, { fit: 'fill' })
      .jpeg({ quality: 90 })
      .toFile(join(dir, `${String(i + 1).padStart(6, '0')}.jpg`));
    progress.update(i + 1);
  }
  progress.finish();
  writeFileSync(done, '');
}

/** The same files in a deflated zip, as CelebA ships (img_align_celeba/NNNNNN.jpg). */
async function makeZip(files: string[], path: string): Promise<void> {
  if (existsSync(path)) return;
  const zip = new yazl.ZipFile();
  for (const f of files) zip.addFile(f, `img_align_celeba/${basename(f)}`, { compress: true });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  writeFileSync(`${path}.tmp`, Buffer.concat(chunks));
  renameSync(`${path}.tmp`, path);
}

interface Timing {
  /** Images per second of wall time. */
  rate: number;
  /** CPU time (all threads of this process) per image, in microseconds: steadier than wall time when others load the machine. */
  cpuUs: number;
}

async function measure(n: number, work: () => Promise<void>): Promise<Timing> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await work();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { rate: n / seconds, cpuUs: (cpu.user + cpu.system) / n };
}

/**
 * The ceiling: sharp alone, `WORKERS` images in flight, nothing kept. Two ways to feed it (sharp
 * opening the file, or the bytes read first with readFileSync as `prepare` does); the faster counts.
 */
function bareSharp(files: string[], from: 'file' | 'buffer'): Promise<Timing> {
  const left = Math.floor((178 - CROP) / 2);
  const top = Math.floor((218 - CROP) / 2);
  let next = 0;
  return measure(files.length, async () => {
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        for (let file = files[next++]; file !== undefined; file = files[next++]) {
          const px = await sharp(from === 'file' ? file : readFileSync(file))
            .rotate()
            .extract({ left, top, width: CROP, height: CROP })
            .resize(SIZE, SIZE, { kernel: 'linear' })
            .raw()
            .toBuffer();
          if (px.length !== SIZE * SIZE * 3) throw new Error(`bare sharp gave ${px.length} bytes`);
        }
      }),
    );
  });
}

function fullPrepare(input: string, out: string): Promise<Timing> {
  return measure(N, async () => {
    let progress: Progress | null = null;
    const r = await prepareFromImages({
      input,
      out,
      size: SIZE,
      crop: CROP,
      workers: WORKERS,
      overwrite: true,
      onStart: (s) => {
        progress = new Progress({ label: '  prepare', total: s.images + s.refused, unit: 'img' });
      },
      onProgress: (p) => progress?.update(p.processed),
    });
    (progress as Progress | null)?.finish();
    if (r.prepared !== N || r.skipped.length !== 0) throw new Error(`prepared ${r.prepared}, skipped ${r.skipped.length}; expected ${N}, 0`);
  });
}

const inputDir = join(tmpdir(), `celeba-gan-bench-prepare-${N}`);
await makeInputs(inputDir);
const files = readdirSync(inputDir)
  .filter((f) => f.endsWith('.jpg'))
  .sort()
  .map((f) => join(inputDir, f));
const zipPath = join(tmpdir(), `celeba-gan-bench-prepare-${N}.zip`);
await makeZip(files, zipPath);
const outDir = join(tmpdir(), `celeba-gan-bench-prepare-out-${process.pid}`);
mkdirSync(outDir, { recursive: true });
const out = join(outDir, `bench-${SIZE}.cgds`);

process.stderr.write(
  `bench:prepare: ${N} JPEGs 178x218 -> crop ${CROP} -> ${SIZE}x${SIZE}, ${WORKERS} in flight, ${availableParallelism()} cores, sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}, ${ROUNDS} rounds\n`,
);
// Warm up the decoder, the thread pool and the page cache.
await bareSharp(files.slice(0, Math.min(200, files.length)), 'file');

const show = (t: Timing) => `${t.rate.toFixed(0).padStart(5)} img/s, ${t.cpuUs.toFixed(0).padStart(5)} us CPU/img`;
const best = { ceiling: { rate: 0, cpuUs: Infinity }, full: { rate: 0, cpuUs: Infinity }, zip: { rate: 0, cpuUs: Infinity } };
const keep = (into: Timing, t: Timing) => {
  into.rate = Math.max(into.rate, t.rate);
  into.cpuUs = Math.min(into.cpuUs, t.cpuUs);
};
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const from of ['file', 'buffer'] as const) {
      const t = await bareSharp(files, from);
      process.stderr.write(`round ${round}: bare sharp (${from})${from === 'file' ? '  ' : ''} ${show(t)}\n`);
      keep(best.ceiling, t);
    }
    const p = await fullPrepare(inputDir, out);
    process.stderr.write(`round ${round}: prepare             ${show(p)}\n`);
    keep(best.full, p);
    const z = await fullPrepare(zipPath, out);
    process.stderr.write(`round ${round}: prepare (zip)       ${show(z)}\n`);
    keep(best.zip, z);
  }
} finally {
  rmSync(outDir, { recursive: true, force: true });
}

const { ceiling, full, zip } = best;
process.stdout.write(
  [
    `bare sharp decode-crop-resize (ceiling): ${show(ceiling)}`,
    `full prepare pipeline:                   ${show(full)}`,
    `prepare / ceiling:                       ${((full.rate / ceiling.rate) * 100).toFixed(1)}% by wall time (target >= 90%), ${((ceiling.cpuUs / full.cpuUs) * 100).toFixed(1)}% by CPU per image`,
    `full prepare from a zip of the same:     ${show(zip)} (${((zip.rate / ceiling.rate) * 100).toFixed(1)}% of the ceiling)`,
    `CelebA (202,599 images) at this rate:    ${(202599 / full.rate / 60).toFixed(1)} minutes`,
  ].join('\n') + '\n',
);
