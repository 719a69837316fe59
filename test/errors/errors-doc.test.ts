import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderErrorsDoc, errorsDocPath } from '../../scripts/errors-doc.js';
import { ERROR_CODES } from '../../src/error-codes.js';
import { CelebaGanError, EXIT_USAGE, UsageError } from '../../src/errors.js';

test('docs/errors.md is what `npm run docs:errors` writes from the registry (run it after adding a code)', () => {
  assert.equal(readFileSync(errorsDocPath(), 'utf8'), renderErrorsDoc());
});

test('the generated table has one row per code, with its exit status', () => {
  const doc = renderErrorsDoc();
  for (const code of Object.keys(ERROR_CODES)) assert.match(doc, new RegExp(`^\\| \`${code}\` \\| [12] \\|`, 'm'), code);
  assert.match(doc, /^\| `E_OUTPUT_EXISTS` \| 2 \|/m);
  assert.match(doc, /^\| `E_NO_SPACE` \| 1 \|/m);
  // A changed row shows: the staleness test above compares against exactly this text.
  const changed = renderErrorsDoc({ ...ERROR_CODES, E_NO_SPACE: { ...ERROR_CODES.E_NO_SPACE, meaning: 'changed' } });
  assert.notEqual(changed, doc);
});

test('the registry is sorted, and every row has a one-line meaning and fix', () => {
  const codes = Object.keys(ERROR_CODES);
  assert.deepEqual(codes, [...codes].sort());
  for (const [code, row] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^E_[A-Z0-9_]+$/);
    for (const text of [row.meaning, row.fix]) assert.ok(text.length > 0 && !text.includes('\n'), code);
  }
});

test('an error takes its exit status from the registry', () => {
  assert.equal(new CelebaGanError('E_OUTPUT_EXISTS', 'x').kind, 'usage');
  assert.equal(new CelebaGanError('E_NO_SPACE', 'x').kind, 'runtime');
  assert.equal(new UsageError('E_BAD_ARGUMENT', 'x').kind, 'usage');
  assert.equal(EXIT_USAGE, 2);
  // A code outside the registry, or a runtime code in a UsageError, does not compile.
  // @ts-expect-error: E_TYPO is not a registered code
  assert.throws(() => new CelebaGanError('E_TYPO', 'x'), TypeError);
  // @ts-expect-error: E_NO_SPACE exits with 1, so it is not a usage error
  assert.equal(new UsageError('E_NO_SPACE', 'x').kind, 'runtime');
});
