import { readFileSync } from 'node:fs';
import { CelebaGanError } from '../errors.js';
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

export function decodeSafetensors(buf: Buffer, source = 'safetensors data'): SafetensorsFile {
  const bad = (why: string): CelebaGanError =>
    new CelebaGanError('E_SAFETENSORS_CORRUPT', `${source} is not a valid safetensors file: ${why}`, {
      hint: 'The file may be truncated or not a celeba-gan checkpoint; use another checkpoint or retrain.',
    });
  if (buf.length < 8) throw bad('shorter than its 8-byte header length');
  const n = Number(buf.readBigUInt64LE(0));
  if (n <= 0 || 8 + n > buf.length) throw bad(`header length ${n} exceeds the file size ${buf.length}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (err) {
    throw bad(`header is not JSON (${(err as Error).message})`);
  }
  const dataStart = 8 + n;
  const tensors: TensorMap = new Map();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (e.dtype !== 'F32') throw bad(`tensor ${name} has dtype ${e.dtype}; only F32 is supported`);
    const [b, end] = e.data_offsets;
    if (end - b !== numel(e.shape) * 4 || dataStart + end > buf.length) throw bad(`tensor ${name} has inconsistent offsets`);
    // Copy into an aligned buffer: Float32Array views need 4-byte aligned offsets.
    const data = new Float32Array(numel(e.shape));
    Buffer.from(data.buffer).set(buf.subarray(dataStart + b, dataStart + end));
    tensors.set(name, { shape: e.shape, data } satisfies Tensor32);
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  return decodeSafetensors(readFileSync(path), path);
}
