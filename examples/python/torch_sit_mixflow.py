"""Adopting MixFlow in an existing PyTorch training loop: the model stays in torch, the MixFlow maths
(time draws, slowed interpolation, target, loss gradient) come from libmixflow.

The only change to a standard SiT training step is where the batch comes from:

    b = transport.prepare(x1.numpy(), seed=seed, step=step)          # MixFlow batch (zero-copy numpy)
    pred = model(torch.from_numpy(b.x_in), torch.from_numpy(b.t), y)  # network sees x_m with label t
    loss, _, grad = transport.loss(pred.detach().numpy(), b)          # loss and d(loss)/d(pred)
    pred.backward(torch.from_numpy(grad))                             # backprop through torch

Runs a few hundred steps of a small class-conditional conv net on Fashion-MNIST (or synthetic data).
Skips (exit 77) when torch is not installed.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import mixflow  # noqa: E402
from transport_demo import load_images  # noqa: E402

try:
    import torch
    from torch import nn
except ImportError:
    print("skipped: torch is not installed (pip install 'torch<2.14' for the CPU wheel)")
    sys.exit(77)


class TinyVelocityNet(nn.Module):
    """A small conv net conditioned on t (sinusoidal features) — a stand-in for a SiT."""

    def __init__(self, channels=1, width=32):
        super().__init__()
        self.t_mlp = nn.Sequential(nn.Linear(32, width), nn.SiLU(), nn.Linear(width, width))
        self.inp = nn.Conv2d(channels, width, 3, padding=1)
        self.body = nn.Sequential(nn.SiLU(), nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.SiLU())
        self.out = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, x, t):
        freqs = torch.exp(-np.log(1000.0) * torch.arange(16, dtype=torch.float32) / 16)
        emb = torch.cat([torch.cos(t[:, None] * freqs * 100), torch.sin(t[:, None] * freqs * 100)], dim=1)
        h = self.inp(x) + self.t_mlp(emb)[:, :, None, None]
        return self.out(self.body(h))


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    data = load_images(4096)
    model = TinyVelocityNet()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0)
    transport = mixflow.Transport.preset("sit", gamma=0.8)
    rng = np.random.default_rng(0)
    losses = []
    for step in range(150):
        x1 = data[rng.integers(0, len(data), 64)]
        b = transport.prepare(x1, seed=0, step=step)
        pred = model(torch.from_numpy(b.x_in), torch.from_numpy(b.t))
        loss, _, grad = transport.loss(pred.detach().numpy(), b)
        opt.zero_grad()
        pred.backward(torch.from_numpy(grad))
        opt.step()
        losses.append(loss)
        if step % 50 == 0:
            print(f"step {step:3d}  MixFlow loss {loss:.4f}")
    print(f"loss {np.mean(losses[:10]):.4f} -> {np.mean(losses[-10:]):.4f}")
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


if __name__ == "__main__":
    main()
