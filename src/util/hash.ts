import { createHash } from 'node:crypto';

/** Hex SHA-256 of the concatenated parts. */
export function sha256Hex(parts: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}
