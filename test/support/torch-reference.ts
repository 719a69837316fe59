import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArchitectureSpec } from '../../src/model/spec.js';
import type { TensorMap } from '../../src/model/tensors.js';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.js';
import { PYTHON } from './references.js';

/**
 * An independent reference: the same spec run by PyTorch eager (Debian's python3-torch), written
 * here from the spec's plain meaning rather than from our code. Padding `same` is computed in
 * Python from TensorFlow's rule (odd extra at the end) and applied EXPLICITLY (F.pad before the
 * convolution, cropping after the transposed convolution), so it checks tfjs's padding too.
 */

const SCRIPT = String.raw`
import json, struct, sys
import numpy as np
import torch
import torch.nn.functional as F
torch.set_num_threads(1)

def read_st(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(b[8 + n + s:8 + n + e], dtype='<f4').copy().reshape(v['shape']))
    return out

def write_st(path, tensors):
    h, off, blobs = {}, 0, []
    for k, t in tensors.items():
        a = t.detach().contiguous().numpy().astype('<f4').tobytes()
        h[k] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(a)]}
        off += len(a); blobs.append(a)
    j = json.dumps(h).encode()
    j += b' ' * ((8 - len(j) % 8) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(j)) + j + b''.join(blobs))

def same_pads(size, k, s):  # TensorFlow: out = ceil(in / s), odd extra padding at the end
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2

cfg = json.load(open(sys.argv[1]))
spec = cfg['spec']
P = read_st(sys.argv[2])
X = read_st(sys.argv[3])
for k in P: P[k].requires_grad_(P[k].dim() > 0 and not k.endswith('running_mean') and not k.endswith('running_var'))

def run(net, x, train, masks, y=None):
    # y [N, K]: a conditional spec's attribute rows (+1/-1).
    mi = 0
    proj = None
    for L in spec[net]:
        kind = L['kind']; p = net + '.' + L.get('name', '') + '.'
        if kind == 'dense':
            x = F.linear(x, P[p + 'weight'], P.get(p + 'bias'))
        elif kind == 'reshape':
            x = x.reshape(x.shape[0], L['channels'], L['height'], L['width'])
        elif kind == 'flatten':
            x = x.reshape(x.shape[0], -1)
        elif kind == 'conv2d':
            if L['padding'] == 'same':
                t, b = same_pads(x.shape[2], L['kernel'], L['stride']); l, r = same_pads(x.shape[3], L['kernel'], L['stride'])
                x = F.pad(x, (l, r, t, b))
            x = F.conv2d(x, P[p + 'weight'], P.get(p + 'bias'), stride=L['stride'])
        elif kind == 'convTranspose2d':
            h, w = x.shape[2], x.shape[3]
            x = F.conv_transpose2d(x, P[p + 'weight'], P.get(p + 'bias'), stride=L['stride'])
            if L['padding'] == 'same':
                th = x.shape[2] - h * L['stride']; tw = x.shape[3] - w * L['stride']
                x = x[:, :, th // 2:x.shape[2] - (th - th // 2), tw // 2:x.shape[3] - (tw - tw // 2)]
        elif kind == 'batchNorm':
            x = F.batch_norm(x, P[p + 'running_mean'], P[p + 'running_var'], P[p + 'weight'], P[p + 'bias'],
                             training=train, momentum=1 - L['momentum'], eps=L['epsilon'])
        elif kind == 'leakyRelu': x = F.leaky_relu(x, L['alpha'])
        elif kind == 'relu': x = F.relu(x)
        elif kind == 'tanh': x = torch.tanh(x)
        elif kind == 'sigmoid': x = torch.sigmoid(x)
        elif kind == 'dropout':
            if train and masks is not None:
                x = x * masks[mi].reshape(x.shape)
            mi += 1
        elif kind == 'concatLabels': x = torch.cat([x, y], 1)
        elif kind == 'projectLabels':  # Miyato & Koyama: sum_k y_k <e_k, h>, added to the logit
            proj = torch.einsum('nk,kf,nf->n', y, P[p + 'weight'], x.reshape(x.shape[0], -1)).unsqueeze(1)
        else: raise ValueError(kind)
    return x if proj is None else x + proj

def bce(logits, label):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))

def optimizers(T):
    # G's and D's trainable tensors and an Adam for each, with the spec's settings.
    gp = [P[k] for k in P if k.startswith('generator.') and P[k].requires_grad]
    dp = [P[k] for k in P if k.startswith('discriminator.') and P[k].requires_grad]
    adam = lambda ps: torch.optim.Adam(ps, lr=T['learningRate'], betas=(T['beta1'], T['beta2']), eps=T['epsilon'])
    return gp, dp, adam(gp), adam(dp)

out = {}
n = cfg['n']
if cfg['mode'] == 'forward':
    with torch.no_grad():
        out['images'] = run('generator', X['z'], False, None, X.get('labels'))
        out['logits'] = run('discriminator', X['images'], False, None, X.get('labels'))
elif cfg['mode'] == 'dataParallel':
    # R replicas, each with its own half-batch (and so its own batch-norm statistics); each
    # update averages their gradients, then one Adam step: what DDP computes.
    T = spec['training']; R = cfg['replicas']
    gp, dp, optG, optD = optimizers(T)
    def mk(tag, step, r):
        return None if not cfg['masks'] else [X['%s_%d_%d_%d' % (tag, step, r, i)] for i in range(cfg['masks'])]
    def averaged_step(opt, params, loss_of):
        grads = [torch.autograd.grad(loss_of(r), params) for r in range(R)]
        for i, p in enumerate(params): p.grad = sum(g[i] for g in grads) / R
        opt.step()
    for step in range(cfg['steps']):
        def lossD(r):
            z, real, y = X['z_%d_%d' % (step, r)], X['real_%d_%d' % (step, r)], X.get('y_%d_%d' % (step, r))
            fake = run('generator', z, True, mk('mD', step, r), y).detach()
            return bce(run('discriminator', real, True, None, y), T['realLabel']) + bce(run('discriminator', fake, True, None, y), 0.0)
        averaged_step(optD, dp, lossD)
        def lossG(r):
            y = X.get('y_%d_%d' % (step, r))
            return bce(run('discriminator', run('generator', X['z_%d_%d' % (step, r)], True, mk('mG', step, r), y), True, None, y), 1.0)
        averaged_step(optG, gp, lossG)
    out = {k: v for k, v in P.items() if v.requires_grad}
    for opt, ps in ((optG, gp), (optD, dp)):
        for k in P:
            if P[k].requires_grad and any(P[k] is q for q in ps):
                st = opt.state[P[k]]
                out['adam.m.' + k] = st['exp_avg']; out['adam.v.' + k] = st['exp_avg_sq']
else:
    T = spec['training']
    def masks(tag):
        return None if cfg['masks'] is None else [X['%s%d' % (tag, i)] for i in range(cfg['masks'])]
    gp, dp, optG, optD = optimizers(T)
    metrics = []
    for step in range(cfg['steps']):
        z, real, y = X['z%d' % step], X['real%d' % step], X.get('y%d' % step)  # fakes get the real batch's labels
        fake = run('generator', z, True, masks('mD%d_' % step), y).detach()
        lr_, lf_ = run('discriminator', real, True, None, y), run('discriminator', fake, True, None, y)
        lossD = bce(lr_, T['realLabel']) + bce(lf_, 0.0)
        optD.zero_grad(); lossD.backward(); optD.step()
        lossG = bce(run('discriminator', run('generator', z, True, masks('mG%d_' % step), y), True, None, y), 1.0)
        optG.zero_grad(); lossG.backward(); optG.step()
        metrics += [lossD.item(), lossG.item(), torch.sigmoid(lr_).mean().item(), torch.sigmoid(lf_).mean().item()]
    out = {k: v for k, v in P.items()}
    for name, opt, ps in (('g', optG, gp), ('d', optD, dp)):
        for k in P:
            if P[k].requires_grad and k.startswith('generator.' if name == 'g' else 'discriminator.'):
                st = opt.state[P[k]]
                out['adam.m.' + k] = st['exp_avg']; out['adam.v.' + k] = st['exp_avg_sq']
    out['metrics'] = torch.tensor(metrics)
write_st(sys.argv[4], out)
`;

export interface ReferenceRun {
  /** dataParallel: inputs z_<step>_<r>, real_<step>_<r>, mD_/mG_<step>_<r>_<i>; `replicas` of them. */
  mode: 'forward' | 'train' | 'dataParallel';
  replicas?: number;
  n: number;
  steps?: number;
  /** Number of dropout masks per update, or null for none. */
  masks?: number | null;
}

/**
 * Run the PyTorch reference; inputs by name (z, images, z0/real0/mD0_0/...; a conditional spec's
 * label rows as labels (forward), y<step> (train), y_<step>_<r> (dataParallel)), returns its outputs.
 */
export function runTorchReference(spec: ArchitectureSpec, weights: TensorMap, inputs: TensorMap, run: ReferenceRun): TensorMap {
  const dir = mkdtempSync(join(tmpdir(), 'cg-torchref-'));
  try {
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ spec, steps: 1, masks: null, ...run }));
    writeFileSync(join(dir, 'ref.py'), SCRIPT);
    writeSafetensors(join(dir, 'weights.safetensors'), weights);
    writeSafetensors(join(dir, 'inputs.safetensors'), inputs);
    const r = spawnSync(
      PYTHON,
      [join(dir, 'ref.py'), join(dir, 'cfg.json'), join(dir, 'weights.safetensors'), join(dir, 'inputs.safetensors'), join(dir, 'out.safetensors')],
      {
        encoding: 'utf8',
        env: { ...process.env, OMP_NUM_THREADS: '1' },
      },
    );
    if (r.status !== 0) throw new Error(`torch reference failed (${r.status}): ${r.stderr}`);
    return readSafetensors(join(dir, 'out.safetensors')).tensors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
