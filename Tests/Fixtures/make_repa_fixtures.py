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
Format: as make_sit_fixtures.py (<name>.txt lists "name dtype n d0 d1 ..."; <name>.bin the tensors).
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_sit_fixtures import layer_norm, gelu_tanh, sincos_pos  # noqa: E402

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
    d, C, p = c["hidden"], c["channels"], c["patch"]
    T = (c["input"] // p) ** 2
    s = [("pos_embed", (1, T, d)), ("x_embedder.proj.weight", (d, C, p, p)), ("x_embedder.proj.bias", (d,)),
         ("t_embedder.mlp.0.weight", (d, 256)), ("t_embedder.mlp.0.bias", (d,)),
         ("t_embedder.mlp.2.weight", (d, d)), ("t_embedder.mlp.2.bias", (d,)),
         ("y_embedder.embedding_table.weight", (c["classes"] + 1, d))]
    for i in range(c["depth"]):
        b = f"blocks.{i}."
        s += [(b + "attn.qkv.weight", (3 * d, d)), (b + "attn.qkv.bias", (3 * d,)),
              (b + "attn.proj.weight", (d, d)), (b + "attn.proj.bias", (d,)),
              (b + "mlp.fc1.weight", (4 * d, d)), (b + "mlp.fc1.bias", (4 * d,)),
              (b + "mlp.fc2.weight", (d, 4 * d)), (b + "mlp.fc2.bias", (d,)),
              (b + "adaLN_modulation.1.weight", (6 * d, d)), (b + "adaLN_modulation.1.bias", (6 * d,))]
    h = c["projector_dim"]
    for k, z in enumerate(c["z_dims"]):
        q = f"projectors.{k}."
        s += [(q + "0.weight", (h, d)), (q + "0.bias", (h,)), (q + "2.weight", (h, h)), (q + "2.bias", (h,)),
              (q + "4.weight", (z, h)), (q + "4.bias", (z,))]
    s += [("final_layer.linear.weight", (p * p * C, d)), ("final_layer.linear.bias", (p * p * C,)),
          ("final_layer.adaLN_modulation.1.weight", (2 * d, d)), ("final_layer.adaLN_modulation.1.bias", (2 * d,))]
    return s


def repa_forward(P, c, x, t, y):
    """REPA SiT.forward: returns (out [B, C, H, W], zs: one [B, T, z_dim] per projector)."""
    d, H, p, C = c["hidden"], c["heads"], c["patch"], c["channels"]
    B, S = x.shape[0], c["input"]
    g = S // p
    silu = torch.nn.functional.silu
    tok = torch.nn.functional.conv2d(x, P["x_embedder.proj.weight"], P["x_embedder.proj.bias"], stride=p)
    tok = tok.flatten(2).transpose(1, 2) + P["pos_embed"]
    f = torch.exp(-math.log(10000) * torch.arange(128, dtype=torch.float64) / 128)
    a = t[:, None] * f[None]
    e = torch.cat([torch.cos(a), torch.sin(a)], dim=1)
    temb = silu(e @ P["t_embedder.mlp.0.weight"].T + P["t_embedder.mlp.0.bias"]) @ P["t_embedder.mlp.2.weight"].T \
        + P["t_embedder.mlp.2.bias"]
    sc = silu(temb + P["y_embedder.embedding_table.weight"][y])
    xx, zs = tok, None
    for i in range(c["depth"]):
        b = f"blocks.{i}."
        mod = sc @ P[b + "adaLN_modulation.1.weight"].T + P[b + "adaLN_modulation.1.bias"]
        sh1, sc1, g1, sh2, sc2, g2 = mod.chunk(6, dim=1)
        hmod = layer_norm(xx) * (1 + sc1[:, None]) + sh1[:, None]
        qkv = hmod @ P[b + "attn.qkv.weight"].T + P[b + "attn.qkv.bias"]
        q, k, v = qkv.reshape(B, -1, 3, H, d // H).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // H), dim=-1) @ v
        att = att.transpose(1, 2).reshape(B, -1, d)
        xx = xx + g1[:, None] * (att @ P[b + "attn.proj.weight"].T + P[b + "attn.proj.bias"])
        hmod = layer_norm(xx) * (1 + sc2[:, None]) + sh2[:, None]
        m = gelu_tanh(hmod @ P[b + "mlp.fc1.weight"].T + P[b + "mlp.fc1.bias"])
        xx = xx + g2[:, None] * (m @ P[b + "mlp.fc2.weight"].T + P[b + "mlp.fc2.bias"])
        if i + 1 == c["encoder_depth"]:
            zs = []
            for kk in range(len(c["z_dims"])):
                q_ = f"projectors.{kk}."
                h = silu(xx.reshape(-1, d) @ P[q_ + "0.weight"].T + P[q_ + "0.bias"])
                h = silu(h @ P[q_ + "2.weight"].T + P[q_ + "2.bias"])
                zs.append((h @ P[q_ + "4.weight"].T + P[q_ + "4.bias"]).reshape(B, -1, c["z_dims"][kk]))
    fm = sc @ P["final_layer.adaLN_modulation.1.weight"].T + P["final_layer.adaLN_modulation.1.bias"]
    shift, scale = fm.chunk(2, dim=1)
    o = (layer_norm(xx) * (1 + scale[:, None]) + shift[:, None]) @ P["final_layer.linear.weight"].T \
        + P["final_layer.linear.bias"]
    o = o.reshape(B, g, g, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, S, S)
    return o, zs


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
    P = {}
    for n, s in shapes:
        if n == "pos_embed":
            w = sincos_pos(c["hidden"], c["input"] // c["patch"])
        else:
            w = (rng.standard_normal(s) * (0.3 if len(s) == 1 else 1.0 / math.sqrt(np.prod(s[1:])))).astype(np.float32)
        P[n] = torch.tensor(w.astype(np.float64), requires_grad=(n != "pos_embed"))
    B, C, S = c["batch"], c["channels"], c["input"]
    T = (S // c["patch"]) ** 2
    x32 = rng.standard_normal((B, C, S, S)).astype(np.float32)
    t32 = rng.uniform(0, 1, B).astype(np.float32)
    y = rng.integers(0, c["classes"] + 1, B).astype(np.int32)
    y[-1] = c["classes"]  # always exercise the null class
    target32 = rng.standard_normal((B, C, S, S)).astype(np.float32)
    z32 = [rng.standard_normal((B, T, zd)).astype(np.float32) for zd in c["z_dims"]]
    x = torch.tensor(x32.astype(np.float64), requires_grad=True)
    out, zt = repa_forward(P, c, x, torch.tensor(t32.astype(np.float64)), torch.tensor(y.astype(np.int64)))
    denoise = ((out - torch.tensor(target32.astype(np.float64))) ** 2).mean()
    proj = proj_loss([torch.tensor(z.astype(np.float64)) for z in z32], zt)
    total = denoise + c["proj_coeff"] * proj
    trainable = [n for n, _ in shapes if n != "pos_embed"]
    # The alignment term's own gradients (small next to the denoising ones), so that a wrong alignment
    # backward cannot hide inside the tolerance of the total.
    pgrads = torch.autograd.grad(proj, [P[n] for n in trainable], retain_graph=True, allow_unused=True)
    total.backward()
    tensors = [("param:" + n, P[n].detach().numpy().astype(np.float32)) for n, _ in shapes]
    tensors += [("x", x32), ("t", t32), ("y", y), ("target", target32)]
    tensors += [(f"z{k}", z) for k, z in enumerate(z32)]
    tensors += [("out", out.detach().numpy().astype(np.float32))]
    tensors += [(f"ztilde{k}", z.detach().numpy().astype(np.float32)) for k, z in enumerate(zt)]
    tensors += [("denoise", np.array([denoise.item()], dtype=np.float32)),
                ("proj", np.array([proj.item()], dtype=np.float32)),
                ("grad:x", x.grad.numpy().astype(np.float32))]
    tensors += [("grad:" + n, P[n].grad.numpy().astype(np.float32)) for n in trainable]
    tensors += [("pgrad:" + n, (g if g is not None else torch.zeros_like(P[n])).numpy().astype(np.float32))
                for n, g in zip(trainable, pgrads)]
    cfg = " ".join(f"{k}={v}" if not isinstance(v, list) else f"{k}={','.join(map(str, v))}" for k, v in c.items())
    lines = [f"# generated by Tests/Fixtures/make_repa_fixtures.py (torch {torch.__version__}, numpy {np.__version__}); DO NOT EDIT",
             f"# regenerate: pip install 'torch<2.14' numpy && python3 Tests/Fixtures/make_repa_fixtures.py",
             f"config {cfg}"]
    with open(os.path.join(OUT, name + ".bin"), "wb") as fb:
        for n, a in tensors:
            a = np.ascontiguousarray(a)
            dtype = "f32" if a.dtype == np.float32 else "i32"
            lines.append(f"{n} {dtype} {a.size} " + " ".join(str(v) for v in a.shape))
            fb.write(a.astype("<f4" if dtype == "f32" else "<i4").tobytes())
    with open(os.path.join(OUT, name + ".txt"), "w") as ft:
        ft.write("\n".join(lines) + "\n")
    print(name, "denoise", denoise.item(), "proj", proj.item(), "params", sum(int(np.prod(s)) for _, s in shapes))


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    for i, (n, c) in enumerate(CONFIGS.items()):
        make(n, c, seed=4321 + i)
    sys.exit(0)
