import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildSpec } from '../../src/config/presets.js';
import type { TensorMap } from '../../src/model/tensors.js';
import { buildGeneratorOnnx } from '../../src/onnx/export.js';
import { weightsWithBatchNorm } from './fixtures.js';
import { maxAbsDiff, python, randomZ, runOnnx } from '../support/onnx.js';
import { TORCH, referenceSkip } from '../support/references.js';
import { assertWithin } from '../support/tensors.js';

/**
 * An independent reference: the 2018 seed28 generator written out by hand in PyTorch (not read
 * from the spec), with TensorFlow's `same` for the stride-2 transposed convolutions done as an
 * explicit asymmetric crop of the full output (1 row/column at the start, 2 at the end).
 */

const REFERENCE = `
import json, sys, numpy as np, torch, torch.nn.functional as F
index = json.load(open(sys.argv[1]))
blob = np.fromfile(sys.argv[2], dtype='<f4')
def t(name):
    offset, shape = index[name]
    return torch.from_numpy(blob[offset:offset + int(np.prod(shape))].reshape(shape).copy())
def bn(x, name):
    return F.batch_norm(x, t(f'generator.{name}.running_mean'), t(f'generator.{name}.running_var'),
                        t(f'generator.{name}.weight'), t(f'generator.{name}.bias'), training=False, eps=1e-3)
with torch.no_grad():
    z = t('z')
    c0 = t('generator.fc.weight').shape[0] // 16
    x = F.linear(z, t('generator.fc.weight')).view(-1, c0, 4, 4)                    # c0 x 4 x 4 (no bias)
    x = F.leaky_relu(bn(x, 'bn0'), 0.2)
    x = F.conv_transpose2d(x, t('generator.deconv1.weight'), t('generator.deconv1.bias'), stride=1)  # 7 x 7 (valid)
    x = F.leaky_relu(bn(x, 'bn1'), 0.2)
    x = F.conv_transpose2d(x, t('generator.deconv2.weight'), t('generator.deconv2.bias'), stride=2)  # 17 x 17 full
    assert x.shape[-1] == 17
    x = x[:, :, 1:15, 1:15]                                                          # same: crop 1 + 2 -> 14 x 14
    x = F.leaky_relu(bn(x, 'bn2'), 0.2)
    x = F.conv_transpose2d(x, t('generator.deconv3.weight'), t('generator.deconv3.bias'), stride=2)  # 31 x 31 full
    x = torch.tanh(x[:, :, 1:29, 1:29])                                              # 3 x 28 x 28
sys.stdout.buffer.write(x.contiguous().numpy().astype('<f4').tobytes())
`;

const tmp = mkdtempSync(join(tmpdir(), 'celeba-gan-onnx-torch-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('seed28 ONNX model matches a hand-written PyTorch generator with explicit asymmetric crops (batch 7)', { skip: referenceSkip(TORCH) }, async () => {
  const spec = buildSpec('seed28', 0.0625);
  const weights = weightsWithBatchNorm(spec, 21);
  const n = 7;
  const z = randomZ(3, n, spec.zDim, spec.latent);
  const tensors: TensorMap = new Map([...weights].filter(([name]) => name.startsWith('generator.')));
  tensors.set('z', { shape: [n, spec.zDim], data: z });
  const index: Record<string, [number, number[]]> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    index[name] = [offset, t.shape];
    parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    offset += t.data.length;
  }
  writeFileSync(join(tmp, 'index.json'), JSON.stringify(index));
  writeFileSync(join(tmp, 'blob.bin'), Buffer.concat(parts));
  const raw = Buffer.from(python(REFERENCE, [join(tmp, 'index.json'), join(tmp, 'blob.bin')], 'buffer'));
  const expected = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  assert.equal(expected.length, n * 3 * 28 * 28);
  for (const fold of [false, true]) {
    const got = await runOnnx(buildGeneratorOnnx(spec, weights, { foldBatchNorm: fold }), z, n, spec.zDim);
    const diff = maxAbsDiff(got.data, expected);
    assertWithin(`onnx~PyTorch ${fold ? 'folded' : 'running stats'}`, diff, 1e-4, `${fold ? 'folded' : 'running stats'}: max |onnx - torch| = ${diff}`);
  }
});
