import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderLossSvg, type CurvePoint } from '../../src/train/loss-plot.js';

test('loss.svg: four curves, long runs thinned to at most 1200 points, non-finite values left out', () => {
  const points: CurvePoint[] = Array.from({ length: 5000 }, (_, i) => ({
    step: (i + 1) * 10,
    lossD: 1 + Math.sin(i / 50),
    lossG: 2,
    dReal: 0.6,
    dFake: i % 3 === 0 ? Number.NaN : 0.3,
  }));
  const svg = renderLossSvg(points, 'seed28 <test>');
  const lines = [...svg.matchAll(/<polyline[^>]* points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
  assert.equal(lines.length, 4);
  assert.ok(
    lines.slice(0, 3).every((n) => n <= 1200 && n >= 1100),
    `points per curve: ${lines}`,
  );
  assert.ok(lines[3]! < lines[0]! * 0.75, 'the NaN points of D(G(z)) are left out');
  assert.match(svg, /step 50000/);
  assert.match(svg, /seed28 &lt;test&gt;/);
  assert.doesNotMatch(svg, /NaN/);
});

test('loss.svg with nothing logged yet says so', () => {
  assert.match(renderLossSvg([]), /no steps logged yet/);
});
