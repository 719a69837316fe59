/**
 * The least of POSIX ustar a stream of generated files needs: regular files, names under 100
 * bytes, mode 0644, mtime 0 (the same faces give the same archive bytes, so it can carry a
 * strong ETag). Any `tar` reads it: `curl .../v1/batch?... | tar x`.
 */

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as the format asks.
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** The 512-byte header of a file `name` of `size` bytes. */
function tarHeader(name: string, size: number): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 100) throw new RangeError(`tar: the name ${name} is longer than 100 bytes`);
  const h = Buffer.alloc(BLOCK);
  nameBytes.copy(h, 0);
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime
  h.write('        ', 148, 'ascii'); // the checksum counts its own field as spaces
  h.write('0', 156, 'ascii'); // a regular file
  h.write('ustar\u000000', 257, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** Zeros that round a file of `size` bytes up to whole blocks. */
function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** Two zero blocks end an archive. */
export const TAR_END: Buffer = Buffer.alloc(2 * BLOCK);

/** Files as the bytes they take in an archive, in one buffer (a chunk of a streamed archive). */
export function tarFiles(files: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data } of files) parts.push(tarHeader(name, data.length), data, tarPadding(data.length));
  return Buffer.concat(parts);
}
