import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StepMetrics } from '../engines/engine.js';
import { fileError } from '../errors.js';
import { writeFileAtomicSync } from '../util/atomic.js';
import type { CurvePoint } from './loss-plot.js';

/**
 * `<run>/metrics.jsonl`: one JSON object per logged step (`{step, epoch, lossD, ...}`) and per
 * hook result (`{kind: "kid", step, ...}`), appended and fsynced, so a crash loses at most the
 * line being written. Opening it for a resume drops the lines past the resumed step (that part
 * of the run is trained again) and keeps the curves for loss.svg.
 */

export const METRICS_FILE = 'metrics.jsonl';

export interface LogEntry extends StepMetrics {
  /** Steps completed. */
  step: number;
  epoch: number;
  imagesPerSec: number;
  elapsed: number;
  time: string;
}

export class MetricsLog {
  readonly path: string;
  /** The loss curves so far (loss.svg's first panels). */
  readonly curve: CurvePoint[] = [];
  /** KID points from `--eval-every` (src/eval), drawn in loss.svg's third panel. */
  readonly kid: { step: number; value: number }[] = [];

  /** Open the run's log, keeping only lines up to `step` (rewritten atomically when any are dropped). */
  constructor(runDir: string, step: number) {
    this.path = join(runDir, METRICS_FILE);
    if (!existsSync(this.path)) return;
    const kept: string[] = [];
    let dropped = false;
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let v: { step?: number; kind?: string; kid?: unknown } & Partial<CurvePoint>;
      try {
        v = JSON.parse(line);
      } catch {
        dropped = true;
        continue; // a line cut short by a crash
      }
      if (typeof v.step !== 'number' || v.step > step) {
        dropped = true;
        continue;
      }
      kept.push(line);
      if (v.kind === undefined) this.curve.push({ step: v.step, lossD: v.lossD!, lossG: v.lossG!, dReal: v.dReal!, dFake: v.dFake! });
      else if (typeof v.kid === 'number') this.kid.push({ step: v.step, value: v.kid });
    }
    if (dropped) writeFileAtomicSync(this.path, kept.map((l) => `${l}\n`).join(''));
  }

  /** A logged step. */
  logStep(entry: LogEntry): void {
    this.append(entry);
    this.curve.push({ step: entry.step, lossD: entry.lossD, lossG: entry.lossG, dReal: entry.dReal, dFake: entry.dFake });
  }

  /** A hook's values at a step (`kind` is the hook's name). */
  logHook(kind: string, step: number, values: Record<string, number | string>): void {
    this.append({ kind, step, ...values });
    if (typeof values.kid === 'number') this.kid.push({ step, value: values.kid });
  }

  private append(value: unknown): void {
    try {
      const fd = openSync(this.path, 'a');
      try {
        appendFileSync(fd, `${JSON.stringify(value)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      throw fileError(err, this.path, 'append to');
    }
  }
}
