import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildSpec } from '../../src/config/presets.js';
import { initialWeights } from '../../src/model/init.js';
import { allParameters } from '../../src/model/shapes.js';
import type { TensorMap } from '../../src/model/tensors.js';
import { OPTIMIZER_FILE, WEIGHTS_FILE, saveCheckpoint } from '../../src/train/checkpoint.js';
import { Rng } from '../../src/util/rng.js';
import { python } from '../support/onnx.js';
import { TORCH, referenceSkip } from '../support/references.js';

/**
 * docs/architecture.md says PyTorch reads the checkpoints. Debian 12 has no python3-safetensors, so the check
 * is a minimal reader written here from the safetensors format (8-byte little-endian header
 * length, a JSON header of {name: {dtype, shape, data_offsets}}, then one byte buffer that the
 * offsets must cover exactly, without holes or overlaps) that hands each tensor to
 * torch.frombuffer: every tensor of both files must come back with its name, shape and float32
 * bits unchanged, and the generator's weights must load into a torch module by name.
 */

const READER = String.raw`
import hashlib, json, struct, sys, torch
def load(path):
    data = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop('__metadata__', {})
    body = data[8 + n:]
    spans = sorted(tuple(h['data_offsets']) for h in header.values())
    end = 0
    for a, b in spans:
        assert a == end, f'hole or overlap at byte {a} (expected {end})'
        end = b
    assert end == len(body), f'{len(body) - end} bytes after the last tensor'
    out = {}
    for name, h in header.items():
        assert h['dtype'] == 'F32', (name, h['dtype'])
        a, b = h['data_offsets']
        t = torch.frombuffer(bytearray(body[a:b]), dtype=torch.float32).reshape(h['shape'])
        out[name] = t
    return out, meta
result = {}
for path in sys.argv[1:]:
    tensors, meta = load(path)
    result[path] = {'metadata': meta, 'tensors': {k: [list(t.shape), hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()] for k, t in tensors.items()}}
# The generator's dense layer as a torch module, filled by name from the file.
weights, _ = load(sys.argv[1])
fc = weights['generator.fc.weight']
layer = torch.nn.Linear(fc.shape[1], fc.shape[0], bias=False)
layer.load_state_dict({'weight': fc})
result['fcSum'] = float(layer.weight.double().sum())
print(json.dumps(result))
`;

const root = mkdtempSync(join(tmpdir(), 'cg-safetensors-torch-'));
after(() => rmSync(root, { recursive: true, force: true }));

const digest = (data: Float32Array): string =>
  createHash('sha256')
    .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .digest('hex');

test('PyTorch reads a checkpoint (weights.safetensors, optimizer.safetensors): names, shapes and float32 bits', { skip: referenceSkip(TORCH) }, () => {
  const spec = buildSpec('seed28', 0.0625);
  const weights = initialWeights(spec, 3);
  const rng = new Rng(4, 'adam');
  const tensors: TensorMap = new Map();
  for (const p of allParameters(spec).filter((q) => q.trainable)) {
    for (const k of ['m', 'v'])
      tensors.set(`adam.${k}.${p.name}`, { shape: [...p.shape], data: rng.fillNormal(new Float32Array(p.shape.reduce((a, b) => a * b, 1))) });
  }
  const { dir } = saveCheckpoint(root, {
    spec,
    step: 12,
    stepsPerEpoch: 100,
    batchSize: 8,
    seed: 3,
    dataChecksum: 'test',
    engine: 'tfjs',
    backend: 'cpu',
    weights,
    optimizer: { tensors, steps: { generator: 12, discriminator: 12 } },
  });
  const files = [join(dir, WEIGHTS_FILE), join(dir, OPTIMIZER_FILE)];
  const seen = JSON.parse(python(READER, files)) as Record<string, { tensors: Record<string, [number[], string]> }> & { fcSum: number };
  for (const [file, expected] of [
    [files[0]!, weights],
    [files[1]!, tensors],
  ] as const) {
    const got = seen[file]!.tensors;
    assert.deepEqual(Object.keys(got).sort(), [...expected.keys()].sort(), file);
    for (const [name, t] of expected) assert.deepEqual(got[name], [t.shape, digest(t.data)], `${file}: ${name}`);
  }
  const fc = weights.get('generator.fc.weight')!.data;
  assert.ok(Math.abs(seen.fcSum - fc.reduce((a, b) => a + b, 0)) < 1e-6, 'the weights load into a torch.nn.Linear by name');
});
