import { latentsFor, type GeneratorSession } from '../src/inference/session.js';

/**
 * images/s of session.run at batch size b (one warm-up call, then calls for about `seconds`),
 * and the CPU milliseconds per image (this process, all threads), which other processes on a
 * shared machine disturb far less. The model-only figure bench:generate and bench:serve compare
 * against.
 */
export async function modelOnly(session: GeneratorSession, b: number, seconds: number, seed = 2018): Promise<{ rate: number; cpuPerImage: number }> {
  const z = latentsFor(seed, 0, b, session.info.zDim, session.info.latent);
  // A fresh copy per call: a worker-hosted session takes its latents' buffer.
  await session.run(z.slice(), b);
  let images = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  do {
    await session.run(z.slice(), b);
    images += b;
  } while (performance.now() - t0 < seconds * 1000);
  const u = process.cpuUsage(cpu0);
  return { rate: images / ((performance.now() - t0) / 1000), cpuPerImage: (u.user + u.system) / 1000 / images };
}
