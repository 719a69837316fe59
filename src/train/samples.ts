import { join } from 'node:path';
import { sampleLatents } from '../engines/randomness.js';
import type { GeneratorWeights, TrainingEngine } from '../engines/engine.js';
import { attributeCount } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { floatNchwToUint8Hwc, writeGridPng } from '../util/image.js';
import type { RunConfig } from './run-config.js';

/**
 * `<run>/samples/step-000100.png`: a 5x5 grid of the generator's images from fixed noise (the
 * same z for image i all run long, derived from run.json's sampleSeed), so the grids show one
 * set of faces improving. With an EMA generator, `step-000100-ema.png` beside it shows the EMA
 * generator's faces from the same z.
 *
 * A conditional model's grid has a row per attribute setting on the same 5 latents: row 0 with
 * every attribute -1, row r with attribute r alone +1 (as many rows as sampleCount allows), so
 * a row shows what one attribute does to the same faces.
 */

export const SAMPLES_DIR = 'samples';
export const SAMPLE_COUNT = 25;

const COLS = 5;

export class SampleGrid {
  private readonly z: Float32Array;
  /** Conditional specs: the label row of each image. */
  private readonly labels?: Float32Array;
  private readonly n: number;

  constructor(
    private readonly runDir: string,
    private readonly spec: ArchitectureSpec,
    private readonly run: RunConfig,
  ) {
    const k = attributeCount(spec);
    if (k === 0) {
      this.n = run.sampleCount;
      this.z = sampleLatents(spec, run.sampleSeed, this.n);
      return;
    }
    const rows = Math.max(1, Math.min(k + 1, Math.floor(run.sampleCount / COLS)));
    this.n = rows * COLS;
    const latents = sampleLatents(spec, run.sampleSeed, COLS);
    this.z = new Float32Array(this.n * spec.zDim);
    this.labels = new Float32Array(this.n * k).fill(-1);
    for (let r = 0; r < rows; r++) {
      this.z.set(latents, r * COLS * spec.zDim);
      if (r > 0) for (let c = 0; c < COLS; c++) this.labels[(r * COLS + c) * k + r - 1] = 1;
    }
  }

  static dir(runDir: string): string {
    return join(runDir, SAMPLES_DIR);
  }

  /** Draw the grid with the engine's current (raw or EMA) generator; returns the PNG's path. */
  async write(engine: TrainingEngine, step: number, weights: GeneratorWeights = 'raw'): Promise<string> {
    const path = join(SampleGrid.dir(this.runDir), `step-${String(step).padStart(6, '0')}${weights === 'ema' ? '-ema' : ''}.png`);
    const { channels: c, height: h, width: w } = this.spec.image;
    const n = this.n;
    const images = floatNchwToUint8Hwc(await engine.generate(this.z, n, weights, this.labels), n, c, h, w);
    await writeGridPng(path, images, n, h, w, c, { cols: COLS, upscale: Math.max(1, Math.floor(64 / h)) });
    return path;
  }
}
