import { join } from 'node:path';
import { sampleLatents } from '../engines/randomness.js';
import type { GeneratorWeights, TrainingEngine } from '../engines/engine.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { floatNchwToUint8Hwc, writeGridPng } from '../util/image.js';
import type { RunConfig } from './run-config.js';

/**
 * `<run>/samples/step-000100.png`: a 5x5 grid of the generator's images from fixed noise (the
 * same z for image i all run long, derived from run.json's sampleSeed), so the grids show one
 * set of faces improving. With an EMA generator, `step-000100-ema.png` beside it shows the EMA
 * generator's faces from the same z.
 */

export const SAMPLES_DIR = 'samples';
export const SAMPLE_COUNT = 25;

export class SampleGrid {
  private readonly z: Float32Array;

  constructor(
    private readonly runDir: string,
    private readonly spec: ArchitectureSpec,
    private readonly run: RunConfig,
  ) {
    this.z = sampleLatents(spec, run.sampleSeed, run.sampleCount);
  }

  static dir(runDir: string): string {
    return join(runDir, SAMPLES_DIR);
  }

  /** Draw the grid with the engine's current (raw or EMA) generator; returns the PNG's path. */
  async write(engine: TrainingEngine, step: number, weights: GeneratorWeights = 'raw'): Promise<string> {
    const path = join(SampleGrid.dir(this.runDir), `step-${String(step).padStart(6, '0')}${weights === 'ema' ? '-ema' : ''}.png`);
    const { channels: c, height: h, width: w } = this.spec.image;
    const n = this.run.sampleCount;
    const images = floatNchwToUint8Hwc(await engine.generate(this.z, n, weights), n, c, h, w);
    await writeGridPng(path, images, n, h, w, c, { cols: 5, upscale: Math.max(1, Math.floor(64 / h)) });
    return path;
  }
}
