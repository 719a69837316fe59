import { join } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic.js';

/**
 * `loss.svg`: the training curves as a small self-contained SVG (no plotting dependency).
 * Top panel: loss_D and loss_G; bottom panel: D(x) and D(G(z)) on a fixed 0..1 axis; with
 * `train --eval-every`, a third panel: SWD from the evaluations (src/eval).
 */

export interface CurvePoint {
  step: number;
  lossD: number;
  lossG: number;
  dReal: number;
  dFake: number;
}

/** An extra curve measured now and then (SWD from `--eval-every`), drawn in its own panel. */
export interface EvalCurve {
  label: string;
  points: readonly { step: number; value: number }[];
}

const W = 720;
const PANEL_H = 220;
const PAD = { left: 56, right: 150, top: 28, bottom: 30 };
const MAX_POINTS = 1200;

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

/** Keep at most MAX_POINTS points, evenly spaced, always including the last. */
function thin(points: readonly CurvePoint[]): CurvePoint[] {
  if (points.length <= MAX_POINTS) return [...points];
  const out: CurvePoint[] = [];
  const stride = points.length / MAX_POINTS;
  for (let i = 0; i < MAX_POINTS; i++) out.push(points[Math.floor(i * stride)]!);
  out[out.length - 1] = points[points.length - 1]!;
  return out;
}

function panel<T extends { step: number }>(
  points: readonly T[],
  series: { key: Exclude<keyof T, symbol>; label: string; color: string }[],
  top: number,
  title: string,
  fixed?: [number, number],
): string {
  const x0 = PAD.left;
  const x1 = W - PAD.right;
  const y0 = top + PAD.top;
  const y1 = top + PAD.top + PANEL_H - PAD.top - PAD.bottom;
  const steps = points.map((p) => p.step);
  const sMin = Math.min(...steps);
  const sMax = Math.max(...steps, sMin + 1);
  const values = series.flatMap((s) => points.map((p) => p[s.key] as number)).filter(Number.isFinite);
  const [vMin, vMaxSeen] = fixed ?? [Math.min(0, ...values), Math.max(...values, 1e-6)];
  const vMax = vMaxSeen <= vMin ? vMin + 1 : vMaxSeen;
  const sx = (s: number): number => x0 + ((s - sMin) / (sMax - sMin)) * (x1 - x0);
  const sy = (v: number): number => y1 - ((Math.min(Math.max(v, vMin), vMax) - vMin) / (vMax - vMin)) * (y1 - y0);
  const parts: string[] = [];
  parts.push(`<text x="${x0}" y="${top + 18}" font-weight="bold">${esc(title)}</text>`);
  parts.push(`<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#999"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = vMin + ((vMax - vMin) * i) / 4;
    const y = sy(v);
    parts.push(`<line x1="${x0}" x2="${x1}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${x0 - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  parts.push(`<text x="${x0}" y="${y1 + 18}">step ${sMin}</text>`);
  parts.push(`<text x="${x1}" y="${y1 + 18}" text-anchor="end">step ${sMax}</text>`);
  series.forEach((s, i) => {
    const d = points
      .filter((p) => Number.isFinite(p[s.key]))
      .map((p) => `${sx(p.step).toFixed(1)},${sy(p[s.key] as number).toFixed(1)}`)
      .join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${d}"/>`);
    const ly = y0 + 16 + i * 18;
    const last = points[points.length - 1]?.[s.key] as number | undefined;
    parts.push(`<line x1="${x1 + 12}" x2="${x1 + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"/>`);
    parts.push(`<text x="${x1 + 38}" y="${ly}">${esc(s.label)} ${last === undefined ? '' : fmt(last)}</text>`);
  });
  return parts.join('\n');
}

export function renderLossSvg(points: readonly CurvePoint[], title = 'celeba-gan training', evals?: EvalCurve): string {
  const pts = thin(points);
  const withEvals = evals !== undefined && evals.points.length > 0 && pts.length > 0;
  const H = PANEL_H * (withEvals ? 3 : 2) + (withEvals ? 20 : 10);
  const body =
    pts.length === 0
      ? `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no steps logged yet</text>`
      : [
          panel(
            pts,
            [
              { key: 'lossD', label: 'loss_D', color: '#d62728' },
              { key: 'lossG', label: 'loss_G', color: '#1f77b4' },
            ],
            0,
            `${title}: losses`,
          ),
          panel(
            pts,
            [
              { key: 'dReal', label: 'D(x)', color: '#2ca02c' },
              { key: 'dFake', label: 'D(G(z))', color: '#ff7f0e' },
            ],
            PANEL_H + 10,
            'discriminator outputs',
            [0, 1],
          ),
          ...(withEvals
            ? [panel(evals.points, [{ key: 'value', label: evals.label, color: '#9467bd' }], 2 * PANEL_H + 20, `${evals.label} (lower is better)`)]
            : []),
        ].join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    body,
    '</svg>',
    '',
  ].join('\n');
}

export const LOSS_PLOT_FILE = 'loss.svg';

/** `<run>/loss.svg`, rewritten atomically at most every `everySeconds` (or when forced). */
export class LossPlot {
  private last = -Infinity;
  readonly path: string;

  constructor(
    runDir: string,
    private readonly title: string,
    private readonly everySeconds: number,
  ) {
    this.path = join(runDir, LOSS_PLOT_FILE);
  }

  write(points: readonly CurvePoint[], swd: EvalCurve['points'], force = false): void {
    const now = performance.now();
    if (!force && now - this.last < this.everySeconds * 1000) return;
    this.last = now;
    writeFileAtomicSync(this.path, renderLossSvg(points, this.title, { label: 'SWD x1e3', points: swd }));
  }
}
