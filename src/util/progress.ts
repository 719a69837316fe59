import { escapeName } from '../errors.js';

/**
 * Progress for long work: a single redrawn line with count, rate and ETA on a TTY; plain
 * periodic lines otherwise (logs, CI). Only the CLI layer and bench/ create these (library code
 * reports progress through callbacks). Every line is written through escapeName, like the CLI's
 * other output (src/cli/output.ts): a file name in a line cannot drive the terminal or forge a
 * line of its own.
 */

export interface ProgressOptions {
  label: string;
  /** Units of work in all; Infinity when only `timeLimit` bounds the work. */
  total: number;
  /** Seconds after which the work stops whatever the count (e.g. `demo --minutes`): the bar and ETA follow whichever ends first. */
  timeLimit?: number;
  unit: string;
  stream?: NodeJS.WriteStream;
  /** Seconds between plain lines when not a TTY. */
  plainEvery?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private readonly start = performance.now();
  // -Infinity: the first update always draws, even in the first 100 ms of the process.
  private lastDraw = -Infinity;
  private lastPlain = -Infinity; // the first update prints at once
  private count = 0;
  private extra = '';
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
  }

  /** The last count given to update(). */
  get done(): number {
    return this.count;
  }

  /** Set the absolute count; `extra` is appended to the line (e.g. losses). */
  update(done: number, extra = ''): void {
    this.count = done;
    this.extra = extra;
    const now = performance.now();
    if (this.tty) {
      if (now - this.lastDraw > 100 || done >= this.opts.total) {
        this.lastDraw = now;
        this.stream.write(`\r\x1b[2K${escapeName(this.line())}`);
      }
    } else if (now - this.lastPlain > (this.opts.plainEvery ?? 10) * 1000) {
      this.lastPlain = now;
      this.stream.write(`${escapeName(this.line())}\n`);
    }
  }

  /** Print a line above the bar without breaking it. */
  log(text: string): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${escapeName(text)}\n${escapeName(this.line())}`);
    else this.stream.write(`${escapeName(text)}\n`);
  }

  finish(): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${escapeName(this.line())}\n`);
    else this.stream.write(`${escapeName(this.line())}\n`);
  }

  private line(): string {
    const { total, label, unit, timeLimit } = this.opts;
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.count / elapsed : 0;
    const countLeft = rate > 0 && Number.isFinite(total) ? (total - this.count) / rate : Infinity;
    const timeLeft = timeLimit === undefined ? Infinity : Math.max(0, timeLimit - elapsed);
    const left = Math.min(countLeft, timeLeft);
    const eta = Number.isFinite(left) ? left : NaN;
    const byCount = Number.isFinite(total) ? (total > 0 ? this.count / total : 1) : 0;
    const byTime = timeLimit === undefined ? 0 : elapsed / timeLimit;
    const frac = Math.min(1, Math.max(byCount, byTime));
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = this.tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    const pct = (frac * 100).toFixed(1).padStart(5);
    const count = Number.isFinite(total) ? `${this.count}/${total}` : `${this.count} ${unit}`;
    return `${label} ${bar}${count} ${pct}% ${rate.toFixed(1)} ${unit}/s elapsed ${formatDuration(elapsed)} ETA ${formatDuration(eta)}${this.extra ? `  ${this.extra}` : ''}`;
  }
}
