import { UsageError } from '../errors.js';

/**
 * Flags that name a file or folder and have no meaning when bare. An empty value (`--out ""`,
 * `--out=`, or a shell variable that was not set) is a usage error, never "not given": taken as
 * unset it would write to, or read from, the default place without a word. `--onnx` and
 * `--grid` are not here: bare, they mean "the default path".
 */
const PATH_FLAGS = Object.freeze([
  'attributes',
  'data',
  'frames',
  'generated',
  'inception',
  'input',
  'inspect',
  'model',
  'out',
  'real',
  'run',
  'sheet',
] as const);

/** yargs middleware (src/cli/main.ts): runs for every command before its handler. */
export function rejectEmptyPaths(argv: Record<string, unknown>): void {
  for (const flag of PATH_FLAGS) {
    const value = argv[flag];
    if (value === '' || (Array.isArray(value) && value.includes(''))) {
      throw new UsageError('E_BAD_ARGUMENT', `Expected a path for --${flag} but received an empty value`, {
        hint: `Put the path right after --${flag}, or leave --${flag} out for its default (see --help).`,
      });
    }
  }
}
