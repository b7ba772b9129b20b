#!/usr/bin/env python3
"""Generates the REPA SiT conformance fixtures in Tests/Fixtures/repa/ (DO NOT EDIT the generated files).

The reference is re-implemented here (not vendored, not fetched) from the definitions of REPA's official
`models/sit.py` and `loss.py` (github.com/sihyun-yu/REPA):
  * the model is SiT (the same blocks as make_sit_fixtures.py, which this script imports) with
    out_channels = in_channels (no learn_sigma half) and `projectors`, one per target encoder:
    nn.Sequential(Linear(D, projector_dim), SiLU, Linear(projector_dim, projector_dim), SiLU,
    Linear(projector_dim, z_dim)), applied to every token of the residual stream after block
    `encoder_depth` (1-based: after blocks[encoder_depth - 1]); the state dict holds
    `projectors.<k>.{0,2,4}.{weight,bias}` between the blocks and final_layer;
  * SILoss: denoising = mean_flat((out - target)^2), projection = for every encoder k and sample j,
    mean over tokens of -<normalize(z), normalize(z~)> (F.normalize, eps 1e-12), summed and divided by
    (encoders * batch); train.py's total is mean(denoising) + proj_coeff * mean(projection).
The model time t is used as given (REPA's linear path has the noise at t = 1).

Tiny configs with a small projector_dim (the official default is 2048), seeded non-zero weights everywhere,
evaluated in float64 on float32-rounded weights and inputs. Each fixture holds the weights, the inputs
(x, t, y, target, one feature tensor z<k> [B, T, z_dim] per encoder), the model output, each projector's
output z~<k>, the two losses, the gradients of total = denoise + lambda * proj for every trainable
parameter and x ("grad:"), and the gradients of proj alone ("pgrad:").

Regenerate:  pip install 'torch<2.14' numpy && python3 Tests/Fixtures/make_repa_fixtures.py
Format: see fixture_common.py.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_common import f32, f64, generate, random_batch, write_fixture  # noqa: E402
from make_sit_fixtures import init_params, param_shapes as sit_param_shapes, sit_forward  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repa")

CONFIGS = {
    # Two target encoders of different widths, alignment after block 2 of 3.
    "tiny_two_encoders": dict(depth=3, hidden=32, heads=4, patch=2, input=8, channels=4, classes=10, batch=3,
                              encoder_depth=2, projector_dim=24, z_dims=[12, 8], proj_coeff=0.5),
    # One encoder, alignment after the last block (the projector's input is the final layer's input).
    "tiny_one_encoder": dict(depth=2, hidden=16, heads=2, patch=4, input=8, channels=3, classes=5, batch=2,
                             encoder_depth=2, projector_dim=20, z_dims=[6], proj_coeff=0.5),
}


def param_shapes(c):
    """SiT's state dict (no learn_sigma half) with projectors.<k>.{0,2,4} between the blocks and final_layer."""
    d, h = c["hidden"], c["projector_dim"]
    projectors = []
    for k, z in enumerate(c["z_dims"]):
        q = f"projectors.{k}."
        projectors += [(q + "0.weight", (h, d)), (q + "0.bias", (h,)), (q + "2.weight", (h, h)), (q + "2.bias", (h,)),
                       (q + "4.weight", (z, h)), (q + "4.bias", (z,))]
    return sit_param_shapes(c, before_final=projectors)


def repa_forward(P, c, x, t, y):
    """REPA SiT.forward: returns (out [B, C, H, W], zs: one [B, T, z_dim] per projector)."""
    d, silu = c["hidden"], torch.nn.functional.silu
    zs = []

    def projectors(i, xx):
        if i + 1 != c["encoder_depth"]:
            return
        for kk in range(len(c["z_dims"])):
            q_ = f"projectors.{kk}."
            h = silu(xx.reshape(-1, d) @ P[q_ + "0.weight"].T + P[q_ + "0.bias"])
            h = silu(h @ P[q_ + "2.weight"].T + P[q_ + "2.bias"])
            zs.append((h @ P[q_ + "4.weight"].T + P[q_ + "4.bias"]).reshape(x.shape[0], -1, c["z_dims"][kk]))
    return sit_forward(P, c, x, t, y, after_block=projectors), zs


def proj_loss(zs, zs_tilde):
    """SILoss's projection term: sum over encoders and samples of mean_n -cos, / (encoders * batch)."""
    normalize = torch.nn.functional.normalize
    total, bsz = 0.0, zs[0].shape[0]
    for z, zt in zip(zs, zs_tilde):
        for zj, ztj in zip(z, zt):
            total = total + (-(normalize(zj, dim=-1) * normalize(ztj, dim=-1)).sum(dim=-1)).mean()
    return total / (len(zs) * bsz)


def make(name, c, seed):
    rng = np.random.default_rng(seed)
    shapes = param_shapes(c)
    P = init_params(c, shapes, rng)
    T = (c["input"] // c["patch"]) ** 2
    x32, t32, y, target32 = random_batch(rng, c)
    z32 = [rng.standard_normal((c["batch"], T, zd)).astype(np.float32) for zd in c["z_dims"]]
    x = torch.tensor(x32.astype(np.float64), requires_grad=True)
    out, zt = repa_forward(P, c, x, f64(t32), torch.tensor(y.astype(np.int64)))
    denoise = ((out - f64(target32)) ** 2).mean()
    proj = proj_loss([f64(z) for z in z32], zt)
    total = denoise + c["proj_coeff"] * proj
    trainable = [n for n, _ in shapes if n != "pos_embed"]
    # The alignment term's own gradients (small next to the denoising ones), so that a wrong alignment
    # backward cannot hide inside the tolerance of the total.
    pgrads = torch.autograd.grad(proj, [P[n] for n in trainable], retain_graph=True, allow_unused=True)
    total.backward()
    tensors = [("param:" + n, f32(P[n])) for n, _ in shapes]
    tensors += [("x", x32), ("t", t32), ("y", y), ("target", target32)]
    tensors += [(f"z{k}", z) for k, z in enumerate(z32)]
    tensors += [("out", f32(out))]
    tensors += [(f"ztilde{k}", f32(z)) for k, z in enumerate(zt)]
    tensors += [("denoise", np.array([denoise.item()], dtype=np.float32)),
                ("proj", np.array([proj.item()], dtype=np.float32)), ("grad:x", f32(x.grad))]
    tensors += [("grad:" + n, f32(P[n].grad)) for n in trainable]
    tensors += [("pgrad:" + n, f32(g if g is not None else torch.zeros_like(P[n]))) for n, g in zip(trainable, pgrads)]
    write_fixture(OUT, name, "make_repa_fixtures.py", c, tensors)
    print(name, "denoise", denoise.item(), "proj", proj.item(), "params", sum(int(np.prod(s)) for _, s in shapes))


if __name__ == "__main__":
    generate(CONFIGS, make, first_seed=4321)
