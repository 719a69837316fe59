import { AsyncLocalStorage } from 'node:async_hooks';
import { main } from '../../src/cli/main.js';

/**
 * Run the CLI's main() in this process and capture what IT prints. Only writes made inside its
 * async context are captured, so node's test runner (which reports through the same stdout)
 * passes through untouched.
 */
const capture = new AsyncLocalStorage<{ stdout: string; stderr: string }>();
for (const [stream, key] of [
  [process.stdout, 'stdout'],
  [process.stderr, 'stderr'],
] as const) {
  const original = stream.write.bind(stream);
  stream.write = (chunk: string | Uint8Array, ...rest: never[]) => {
    const sink = capture.getStore();
    if (!sink) return original(chunk, ...rest);
    sink[key] += String(chunk);
    return true;
  };
}

export async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const sink = { stdout: '', stderr: '' };
  const code = await capture.run(sink, () => main(argv));
  return { code, ...sink };
}
