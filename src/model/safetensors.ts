import { readFileSync } from 'node:fs';
import type { ErrorCode } from '../error-codes.js';
import { CelebaGanError, fileError } from '../errors.js';
import { numel, type Tensor32, type TensorMap } from './tensors.js';
import { writeFileAtomicSync } from '../util/atomic.js';

/**
 * safetensors (https://huggingface.co/docs/safetensors): 8-byte little-endian header length, a
 * JSON header `{name: {dtype, shape, data_offsets}, __metadata__: {...}}`, then raw tensor bytes.
 * Float32 only, which is all celeba-gan stores. PyTorch users read these files with
 * `safetensors.torch.load_file`.
 */

export function encodeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Buffer[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    if (numel(t.shape) !== t.data.length) throw new Error(`tensor ${name}: shape [${t.shape}] does not match ${t.data.length} values`);
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // data starts 8-byte aligned
  const jsonBuf = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(jsonBuf.length));
  const parts: Buffer[] = [len, jsonBuf];
  for (const t of tensors.values()) parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return parts;
}

export function writeSafetensors(path: string, tensors: TensorMap, metadata: Record<string, string> = {}): void {
  writeFileAtomicSync(path, encodeSafetensors(tensors, metadata));
}

export interface SafetensorsFile {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

/** The largest JSON header read (the reference implementation's limit): a bigger one is refused before parsing. */
export const MAX_HEADER_BYTES = 100_000_000;

interface Entry {
  name: string;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parse a safetensors buffer, checking everything the format promises before any tensor is
 * built: the header size (capped), the JSON, each entry's dtype (F32), shape (non-negative
 * integers), offsets (non-negative integers, begin <= end, size = numel x 4), and that the
 * tensors tile the data area exactly, in order, with no gap, overlap or trailing bytes. Each
 * failure has its own code, so a crafted file with consistent hashes still cannot load garbage.
 */
export function decodeSafetensors(buf: Buffer, source = 'safetensors data'): SafetensorsFile {
  const fail = (code: ErrorCode, why: string): CelebaGanError =>
    new CelebaGanError(code, `${source} is not a valid safetensors file: ${why}`, {
      hint: 'The file may be truncated, crafted or not a celeba-gan checkpoint; use another checkpoint or retrain.',
    });
  if (buf.length < 8) throw fail('E_SAFETENSORS_CORRUPT', 'shorter than its 8-byte header length');
  const n64 = buf.readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw fail('E_SAFETENSORS_HEADER_SIZE', `header length ${n64} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const n = Number(n64);
  if (n < 2 || 8 + n > buf.length) throw fail('E_SAFETENSORS_HEADER_SIZE', `header length ${n} does not fit the file size ${buf.length}`);
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (err) {
    throw fail('E_SAFETENSORS_CORRUPT', `header is not JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('E_SAFETENSORS_CORRUPT', 'header is not a JSON object');
  const dataStart = 8 + n;
  const dataBytes = buf.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Object.values(raw).some((v) => typeof v !== 'string')) {
        throw fail('E_SAFETENSORS_CORRUPT', '__metadata__ is not an object of strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof e !== 'object' || e === null) throw fail('E_SAFETENSORS_CORRUPT', `entry ${name} is not an object`);
    if (e.dtype !== 'F32') throw fail('E_SAFETENSORS_DTYPE', `tensor ${name} has dtype ${JSON.stringify(e.dtype)}; celeba-gan stores and reads F32 only`);
    if (!Array.isArray(e.shape) || !e.shape.every(isIndex))
      throw fail('E_SAFETENSORS_SHAPE', `tensor ${name} has shape ${JSON.stringify(e.shape)}; expected a list of integers >= 0`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !isIndex(off[0]) || !isIndex(off[1]) || off[0] > off[1]) {
      throw fail('E_SAFETENSORS_OFFSETS', `tensor ${name} has data_offsets ${JSON.stringify(off)}; expected [begin, end] with 0 <= begin <= end`);
    }
    const shape = e.shape;
    const [begin, end] = off as [number, number];
    if (end - begin !== numel(shape) * 4) {
      throw fail(
        'E_SAFETENSORS_SIZE',
        `tensor ${name} of shape [${shape.join(', ')}] x 4 bytes needs ${numel(shape) * 4} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    entries.push({ name, shape, begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of entries) {
    if (e.begin !== at) {
      throw fail(
        'E_SAFETENSORS_OFFSETS',
        e.begin < at
          ? `tensor ${e.name} at bytes [${e.begin}, ${e.end}] overlaps the tensor before it (which ends at ${at})`
          : `bytes [${at}, ${e.begin}) of the data belong to no tensor`,
      );
    }
    at = e.end;
  }
  if (at !== dataBytes) {
    throw fail(
      'E_SAFETENSORS_OFFSETS',
      at > dataBytes
        ? `the tensors need ${at} bytes of data but the file holds ${dataBytes} (truncated?)`
        : `the last ${dataBytes - at} bytes of the file belong to no tensor`,
    );
  }
  const tensors: TensorMap = new Map();
  for (const e of entries) {
    // Copy into an aligned buffer: Float32Array views need 4-byte aligned offsets.
    const data = new Float32Array(numel(e.shape));
    Buffer.from(data.buffer).set(buf.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { shape: e.shape, data } satisfies Tensor32);
  }
  // Keep the file's own order (the header's key order) for callers that list tensors.
  const ordered: TensorMap = new Map();
  for (const name of Object.keys(header)) {
    const t = tensors.get(name);
    if (t) ordered.set(name, t);
  }
  return { tensors: ordered, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw fileError(err, path, 'read');
  }
  return decodeSafetensors(buf, path);
}
