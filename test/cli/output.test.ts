import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Screen } from '../../src/cli/output.js';
import { tempDir, writeTinyModel } from '../inference/fixtures.js';
import { cli } from '../support/in-process.js';

const dir = tempDir('cg-output-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** A folder name that would clear the screen and forge a line of its own if printed raw. */
const EVIL = 'evil\x1b[2J\nceleba-gan: all good';

function assertNoRawControl(text: string): void {
  // Our own line ends are the only control characters.
  assert.doesNotMatch(text.replace(/\n/g, ''), /[\u0000-\u001f\u007f-\u009f]/, JSON.stringify(text));
}

test('a success line with ESC and a newline in its path comes out escaped, on one line', async () => {
  const out = join(dir, EVIL, 'faces');
  const model = writeTinyModel(join(dir, 'models'));
  const r = await cli('generate', '--model', model, '--out', out, '--n', '2', '--seed', '1', '--provider', 'cpu');
  assert.equal(r.code, 0, r.stderr);
  const escaped = out.replace('\x1b', '\\x1b').replace('\n', '\\n');
  assert.ok(r.stdout.split('\n').includes(`wrote 2 faces to ${escaped}/ (face-000000.png .. face-000001.png)`), r.stdout);
  assertNoRawControl(r.stdout);
  assertNoRawControl(r.stderr);
  assert.doesNotMatch(r.stdout, /^celeba-gan: all good/m, 'no forged line');
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('face-')),
    ['face-000000.png', 'face-000001.png'],
    'the real folder has the real name',
  );
});

test('notes (stderr) escape the path too: the default model pick and the output folder', async () => {
  const cwd = join(dir, 'project');
  writeTinyModel(join(cwd, 'models'), `${EVIL}.onnx`);
  const here = process.cwd();
  process.chdir(cwd);
  try {
    const r = await cli('generate', '--n', '1', '--seed', '1', '--provider', 'cpu');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /celeba-gan: model models\/evil\\x1b\[2J\\nceleba-gan: all good\.onnx \(newest of 1 model in models\/\)/);
    assertNoRawControl(r.stderr);
    assertNoRawControl(r.stdout);
  } finally {
    process.chdir(here);
  }
});

test('Screen.result and Screen.say: one line per argument, every control character shown', async () => {
  const r = await captured(() => {
    const screen = new Screen();
    screen.result('wrote a\x1b[31mb\tc\rd', 'second');
    screen.say('note \u009b x\ny');
  });
  assert.equal(r.stdout, 'wrote a\\x1b[31mb\\tc\\x0dd\nsecond\n');
  assert.equal(r.stderr, 'celeba-gan: note \\x9b x\\ny\n');
  const quiet = await captured(() => new Screen({ quiet: true }).result('nothing'));
  assert.equal(quiet.stdout, '');
});

/** What `work` writes to stdout and stderr. */
async function captured(work: () => void): Promise<{ stdout: string; stderr: string }> {
  const sink = { stdout: '', stderr: '' };
  const writes = [process.stdout.write, process.stderr.write] as const;
  process.stdout.write = (chunk: string) => ((sink.stdout += chunk), true);
  process.stderr.write = (chunk: string) => ((sink.stderr += chunk), true);
  try {
    work();
  } finally {
    [process.stdout.write, process.stderr.write] = writes;
  }
  return sink;
}
