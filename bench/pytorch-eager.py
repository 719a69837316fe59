"""PyTorch eager reference for bench/train-native.ts: the same networks, built from the same spec
data the torch engine gets (src/engines/torch/layers.ts), trained with the step of
src/engines/engine.ts, written the way a PyTorch user would (nn.Modules, torch.optim.Adam,
BCEWithLogitsLoss, loss.backward()).

usage: python3 bench/pytorch-eager.py < spec.json   (spec.json: see train-native.ts)
prints one JSON line: {"imagesPerSecond": ..., "stepSeconds": [...], "cpuSecondsPerStep": ..., "torch": "1.13.0", "threads": 2, "device": "cpu", "amp": false}

spec.json may name a "device" (cpu, cuda, cuda:N) and "amp" (bfloat16 autocast on CUDA, as the
torch engine's --amp). Each step ends with loss.item(), which waits for the GPU, so the times are
of finished steps.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Crop(nn.Module):
    """TensorFlow `same` for transposed convolutions crops the odd extra row/column at the END."""

    def __init__(self, top, bottom, left, right):
        super().__init__()
        self.t, self.b, self.l, self.r = top, bottom, left, right

    def forward(self, x):
        return x[:, :, self.t : x.shape[2] - self.b, self.l : x.shape[3] - self.r]


class Pad(nn.Module):
    def __init__(self, top, bottom, left, right):
        super().__init__()
        self.pads = (left, right, top, bottom)

    def forward(self, x):
        return F.pad(x, self.pads)


class Reshape(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


def build(layers, params):
    """layers: NativeLayer[]; params: {name: shape}. Returns nn.Sequential."""
    mods = []
    for l in layers:
        k = l["kind"]
        if k == "dense":
            out_f, in_f = params[l["weight"]]
            mods.append(nn.Linear(in_f, out_f, bias="bias" in l))
        elif k == "reshape":
            mods.append(Reshape(l["shape"]))
        elif k == "conv2d":
            out_c, in_c, kh, _ = params[l["weight"]]
            t, b, le, r = l["pads"]
            if t == b and le == r:
                mods.append(nn.Conv2d(in_c, out_c, kh, l["stride"], padding=(t, le), bias="bias" in l))
            else:
                mods += [Pad(t, b, le, r), nn.Conv2d(in_c, out_c, kh, l["stride"], bias="bias" in l)]
        elif k == "convTranspose2d":
            in_c, out_c, kh, _ = params[l["weight"]]
            t, b, le, r = l["pads"]
            ph, pw = min(t, b), min(le, r)
            mods.append(nn.ConvTranspose2d(in_c, out_c, kh, l["stride"], padding=(ph, pw), bias="bias" in l))
            if (t, b, le, r) != (ph, ph, pw, pw):
                mods.append(Crop(t - ph, b - ph, le - pw, r - pw))
        elif k == "batchNorm":
            (c,) = params[l["weight"]]
            mods.append(nn.BatchNorm2d(c, eps=l["epsilon"], momentum=1 - l["momentum"]))
        elif k == "leakyRelu":
            mods.append(nn.LeakyReLU(l["alpha"]))
        elif k == "relu":
            mods.append(nn.ReLU())
        elif k == "dropout":
            mods.append(nn.Dropout(l["rate"]))
        elif k == "tanh":
            mods.append(nn.Tanh())
        elif k == "sigmoid":
            mods.append(nn.Sigmoid())
        elif k == "flatten":
            mods.append(nn.Flatten())
        else:
            raise ValueError(f"unsupported layer kind {k}")
    return nn.Sequential(*mods)


def main():
    cfg = json.load(sys.stdin)
    torch.manual_seed(cfg.get("seed", 1))
    torch.set_num_threads(cfg["threads"])
    device = torch.device(cfg.get("device", "cpu"))
    amp = bool(cfg.get("amp", False))
    if amp and device.type != "cuda":
        raise SystemExit("--amp needs a CUDA device")
    params = {p["name"]: p["shape"] for p in cfg["params"]}
    G = build(cfg["generator"], params)
    D = build(cfg["discriminator"], params)
    G.to(device)
    D.to(device)
    tr = cfg["training"]
    optD = torch.optim.Adam(D.parameters(), lr=tr["learningRate"], betas=(tr["beta1"], tr["beta2"]), eps=tr["epsilon"])
    optG = torch.optim.Adam(G.parameters(), lr=tr["learningRate"], betas=(tr["beta1"], tr["beta2"]), eps=tr["epsilon"])
    bce = nn.BCEWithLogitsLoss()
    n, z_dim = cfg["batch"], cfg["zDim"]
    img = cfg["image"]
    real_u8 = torch.randint(0, 256, (n, img["height"], img["width"], img["channels"]), dtype=torch.uint8).to(device)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else (lambda: torch.autocast(device.type, enabled=False))
    G.train()
    D.train()

    def step():
        real = real_u8.float().div(127.5).sub(1).permute(0, 3, 1, 2)
        z = torch.rand(n, z_dim, device=device) * 2 - 1 if cfg["latent"] == "uniform" else torch.randn(n, z_dim, device=device)
        # D update
        optD.zero_grad(set_to_none=True)
        with autocast():
            fake = G(z)
            out_real, out_fake = D(real), D(fake.detach())
            loss_d = bce(out_real.float(), torch.full_like(out_real.float(), tr["realLabel"])) + bce(out_fake.float(), torch.zeros_like(out_fake.float()))
        loss_d.backward()
        optD.step()
        # G update: same z, fresh dropout, updated D
        optG.zero_grad(set_to_none=True)
        with autocast():
            out = D(G(z)).float()
            loss_g = bce(out, torch.ones_like(out))
        loss_g.backward()
        optG.step()
        return loss_d.item(), loss_g.item()

    for _ in range(cfg["warmup"]):
        step()
    times = []
    cpu0 = time.process_time()
    for _ in range(cfg["steps"]):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / len(times)
    total = sum(times)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(json.dumps({"imagesPerSecond": n * len(times) / total, "stepSeconds": times, "cpuSecondsPerStep": cpu, "torch": torch.__version__, "threads": torch.get_num_threads(), "device": f"{device} ({where})" if device.type == "cuda" else "cpu", "amp": amp}))


if __name__ == "__main__":
    main()
