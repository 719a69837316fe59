import { test } from 'node:test';
import assert from 'node:assert/strict';
import { latentsFor } from '../../src/inference/latents.js';

const Z = 100;

for (const latent of ['uniform', 'normal'] as const) {
  test(`${latent}: row i of any batch equals image i drawn alone (batch size does not matter)`, () => {
    const batch = latentsFor(42, 10, 37, Z, latent);
    assert.equal(batch.length, 37 * Z);
    for (const i of [0, 1, 17, 36]) {
      assert.deepEqual(batch.subarray(i * Z, (i + 1) * Z), latentsFor(42, 10 + i, 1, Z, latent));
    }
    // Overlapping windows agree where they overlap.
    assert.deepEqual(latentsFor(42, 0, 64, Z, latent).subarray(20 * Z, 30 * Z), latentsFor(42, 20, 10, Z, latent));
  });

  test(`${latent}: different seeds and indices give different latents`, () => {
    assert.notDeepEqual(latentsFor(1, 0, 1, Z, latent), latentsFor(2, 0, 1, Z, latent));
    assert.notDeepEqual(latentsFor(1, 0, 1, Z, latent), latentsFor(1, 1, 1, Z, latent));
  });
}

test('uniform latents cover U(-1, 1); truncation t shrinks them to U(-t, t)', () => {
  const z = latentsFor(7, 0, 200, Z, 'uniform');
  const max = z.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(max <= 1 && max > 0.99, `max |z| ${max}`);
  const mean = z.reduce((a, v) => a + v, 0) / z.length;
  assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
  const t = latentsFor(7, 0, 200, Z, 'uniform', 0.5);
  assert.ok(t.every((v) => Math.abs(v) <= 0.5));
  // Same draws, scaled: truncation keeps each face's direction.
  for (let k = 0; k < 50; k++) assert.ok(Math.abs(t[k]! - 0.5 * z[k]!) < 1e-6);
});

test('normal latents are N(0, 1); truncation t keeps every |z| <= t', () => {
  const z = latentsFor(7, 0, 200, Z, 'normal');
  const mean = z.reduce((a, v) => a + v, 0) / z.length;
  const variance = z.reduce((a, v) => a + (v - mean) ** 2, 0) / z.length;
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.05, `variance ${variance}`);
  assert.ok(
    z.some((v) => Math.abs(v) > 2.5),
    'tails present without truncation',
  );
  for (const t of [0.3, 1, 2]) {
    const zt = latentsFor(7, 0, 100, Z, 'normal', t);
    assert.ok(
      zt.every((v) => Math.abs(v) <= t),
      `all within ${t}`,
    );
    // Redrawn, not clamped: values pile up at +-t only if clamping did the work.
    const atEdge = zt.filter((v) => Math.abs(v) === t).length;
    assert.ok(atEdge < zt.length / 100, `${atEdge} values clamped at ${t}`);
  }
});

test('BAD CALL - truncation out of range for the latent kind', () => {
  for (const [latent, t] of [
    ['uniform', 0],
    ['uniform', 1.5],
    ['uniform', -0.5],
    ['normal', 0],
    ['normal', Number.NaN],
    ['normal', 11],
  ] as const) {
    assert.throws(
      () => latentsFor(1, 0, 1, Z, latent, t),
      (err: Error & { code?: string }) => {
        assert.equal(err.name, 'UsageError');
        assert.equal(err.code, 'E_BAD_ARGUMENT');
        assert.match(err.message, new RegExp(`^Expected number > 0 and <= (1|10) \\(latent is ${latent}\\) for truncation but received`));
        return true;
      },
    );
  }
});
