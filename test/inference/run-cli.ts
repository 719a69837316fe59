import { spawn } from 'node:child_process';

/**
 * Run the CLI entry (src/cli/main) in a child process, as a user would, and collect its exit
 * code and output. Works from src/ under tsx and from dist/: the child gets the loader flags
 * this process runs under, made absolute because it may run in a folder with no node_modules.
 */

const MAIN = new URL('../../src/cli/main.js', import.meta.url).href;
const loaderArgs = process.execArgv.flatMap((a, i, all) => {
  if (a === '--import') return [];
  if (all[i - 1] === '--import') return ['--import', import.meta.resolve(a)];
  return a.startsWith('--import=') ? ['--import', import.meta.resolve(a.slice('--import='.length))] : [];
});

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { cwd?: string } = {}): Promise<CliResult> {
  const script = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...loaderArgs, '--input-type=module', '-e', script, ...args], { cwd: opts.cwd ?? process.cwd() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
