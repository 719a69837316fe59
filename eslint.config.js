// ESLint flat config: typescript-eslint's recommended rules, plus the few that check this
// project's own contract (see the comment on each). `npm run lint`; CI (.ci/run) runs it before
// the tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native/build/', 'coverage/', '.gpu/', 'demo/', 'runs/', 'out/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `_name` marks a binding kept on purpose (a rest sibling dropped from an object, an
      // interface's unused argument).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // `==` hides a number/string mix-up in parsed flags and headers; `== null` is allowed.
      eqeqeq: ['error', 'smart'],
      // Off: where this project writes a control character in a regex it is on purpose, to find
      // and escape control characters in file names before they reach a terminal or a report.
      'no-control-regex': 'off',
    },
  },
  {
    // A promise nobody awaits loses its error (an unhandled rejection kills the process after the
    // user's files are half written) and its ordering: checkpoints, signals and writers depend on
    // both; `void p` marks the few that are deliberately fire-and-forget. Not in test/: node:test's
    // test()/describe() return promises that the runner awaits, and the rule's allow-list for them
    // (allowForKnownSafeCalls from 'node:test') does not match @types/node 20's declarations.
    files: ['src/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'error' },
  },
  {
    // Library code never prints or exits: only src/cli/ maps errors to messages and exit codes.
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-console': 'error',
      'no-restricted-properties': ['error', { object: 'process', property: 'exit', message: 'Only src/cli/ exits; throw a CelebaGanError instead.' }],
    },
  },
  {
    // A `!` or `as` that changes nothing (the value was already known to be defined) reads as if
    // a check lived elsewhere; with noUncheckedIndexedAccess on, that is exactly how a leftover
    // `]!` hides that the index is now checked. The rule cannot tell a justified `]!` from a
    // careless one (that would take no-non-null-assertion, which would flag every bounded pixel
    // loop), so it only removes the ones that do nothing.
    files: ['**/*.ts'],
    rules: { '@typescript-eslint/no-unnecessary-type-assertion': 'error' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
  },
);
