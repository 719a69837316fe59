import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { addonRequired, referenceSkip, referencesRequired } from './references.js';

/**
 * The reference gate itself, run in a child `node --test` with python3 pointed at a missing file:
 * under CI=true (or CELEBA_GAN_REQUIRE_REFERENCES=1) the child run fails and names what is
 * missing; elsewhere it passes with the dependent test skipped and the reason printed.
 */

const dir = mkdtempSync(join(tmpdir(), 'cg-references-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const helper = new URL('./references.js', import.meta.url).href;
const file = join(dir, 'needs-torch.test.mjs');
writeFileSync(
  file,
  `import { test } from 'node:test';
import { TORCH, referenceSkip } from ${JSON.stringify(helper)};
test('parity with PyTorch', { skip: referenceSkip(TORCH) }, () => {});
`,
);

function childRun(env: Record<string, string>): { status: number | null; out: string } {
  const base = { ...process.env };
  delete base.CI;
  delete base.CELEBA_GAN_REQUIRE_REFERENCES;
  delete base.NODE_TEST_CONTEXT; // else the child thinks it runs inside this test and skips its files
  const r = spawnSync(process.execPath, [...process.execArgv, '--test', file], {
    encoding: 'utf8',
    env: { ...base, CELEBA_GAN_PYTHON: join(dir, 'no-python3'), ...env },
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('referencesRequired: CI=true (or 1) or CELEBA_GAN_REQUIRE_REFERENCES=1, nothing else', () => {
  assert.equal(referencesRequired({ CI: 'true' }), 'CI=true');
  assert.equal(referencesRequired({ CI: '1' }), 'CI=1');
  assert.equal(referencesRequired({ CELEBA_GAN_REQUIRE_REFERENCES: '1' }), 'CELEBA_GAN_REQUIRE_REFERENCES=1');
  assert.equal(referencesRequired({}), null);
  assert.equal(referencesRequired({ CI: 'false', CELEBA_GAN_REQUIRE_REFERENCES: '0' }), null);
});

for (const env of [{ CI: 'true' }, { CELEBA_GAN_REQUIRE_REFERENCES: '1' }] as Record<string, string>[]) {
  test(`ERROR PATH - a missing reference fails the run under ${Object.entries(env)[0]!.join('=')}`, () => {
    const r = childRun(env);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /not ok \d+ - REFERENCE REQUIRED - python3 with torch, numpy/);
    assert.match(r.out, /no-python3 cannot run \(spawnSync .*no-python3 ENOENT\); install it: apt-get install python3-torch python3-numpy/);
    assert.match(r.out, /# pass 0/);
  });
}

test('elsewhere a missing reference skips the test and says why', () => {
  const r = childRun({});
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /ok 1 - parity with PyTorch # SKIP SKIPPED: .*no-python3 cannot run .*install it: apt-get install python3-torch/);
  assert.match(r.out, /# fail 0/);
});

test("addonRequired (the torch addon's gate): CI=true (or 1) or CELEBA_GAN_REQUIRE_TORCH set and not 0", () => {
  assert.equal(addonRequired({ CI: 'true' }), 'CI=true');
  assert.equal(addonRequired({ CI: '1' }), 'CI=1');
  assert.equal(addonRequired({ CELEBA_GAN_REQUIRE_TORCH: '1' }), 'CELEBA_GAN_REQUIRE_TORCH=1');
  assert.equal(addonRequired({}), null);
  assert.equal(addonRequired({ CI: 'false', CELEBA_GAN_REQUIRE_TORCH: '0' }), null);
  // The Python references have their own variable: requiring the addon does not require them.
  assert.equal(referencesRequired({ CELEBA_GAN_REQUIRE_TORCH: '1' }), null);
});

test('a program as the reference (chromium): skipped where missing, fine where present', () => {
  const install = 'apt-get install nothing';
  assert.match(
    String(referenceSkip({ modules: [], executable: join(dir, 'no-chromium'), install }, {})),
    /^SKIPPED: there is no .*no-chromium; install it: apt-get install nothing/,
  );
  assert.equal(referenceSkip({ modules: [], executable: process.execPath, install }, {}), false);
});
