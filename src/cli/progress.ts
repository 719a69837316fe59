/**
 * Progress for long work: a single redrawn line with count, rate and ETA on a TTY; plain
 * periodic lines otherwise (logs, CI). Only the CLI layer creates these.
 */

export interface ProgressOptions {
  label: string;
  total: number;
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
  private lastDraw = 0;
  private lastPlain = 0;
  private done = 0;
  private extra = '';
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
  }

  /** Set the absolute count; `extra` is appended to the line (e.g. losses). */
  update(done: number, extra = ''): void {
    this.done = done;
    this.extra = extra;
    const now = performance.now();
    if (this.tty) {
      if (now - this.lastDraw > 100 || done >= this.opts.total) {
        this.lastDraw = now;
        this.stream.write(`\r\x1b[2K${this.line()}`);
      }
    } else if (now - this.lastPlain > (this.opts.plainEvery ?? 10) * 1000) {
      this.lastPlain = now;
      this.stream.write(`${this.line()}\n`);
    }
  }

  /** Print a line above the bar without breaking it. */
  log(text: string): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${text}\n${this.line()}`);
    else this.stream.write(`${text}\n`);
  }

  finish(): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${this.line()}\n`);
    else this.stream.write(`${this.line()}\n`);
  }

  private line(): string {
    const { total, label, unit } = this.opts;
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (total - this.done) / rate : NaN;
    const frac = total > 0 ? Math.min(1, this.done / total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = this.tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    const pct = (frac * 100).toFixed(1).padStart(5);
    return `${label} ${bar}${this.done}/${total} ${pct}% ${rate.toFixed(1)} ${unit}/s elapsed ${formatDuration(elapsed)} ETA ${formatDuration(eta)}${this.extra ? `  ${this.extra}` : ''}`;
  }
}
