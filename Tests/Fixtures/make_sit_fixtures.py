#!/usr/bin/env python3
"""Generates the SiT conformance fixtures in Tests/Fixtures/sit/ (DO NOT EDIT the generated files).

An independent PyTorch re-implementation of the official SiT (willisma/SiT models.py) written from
docs/exactness.md §5 — not the official code and not libmixflow's output. Tiny configs, seeded
non-zero weights EVERYWHERE (adaLN and final layer included, so every path carries signal), evaluated in
float64 on float32-rounded weights and inputs. Each fixture holds the weights, inputs (x, t, y, target),
the model output (learn_sigma half dropped, as upstream), and the gradients of
L = mean((out - target)^2) with respect to every trainable parameter and to x.

Regenerate:  pip install 'torch<2.14' numpy && python3 Tests/Fixtures/make_sit_fixtures.py
Format: <name>.txt lists one tensor per line "name dtype n d0 d1 ..." in file order; <name>.bin holds the
tensors back to back, little-endian (float32 or int32).
"""
import math
import os
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sit")

CONFIGS = {
    # name: depth, hidden, heads, patch, input, channels, classes, learn_sigma, batch
    "tiny_sigma": dict(depth=2, hidden=32, heads=4, patch=2, input=8, channels=4, classes=10, learn_sigma=True, batch=3),
    "tiny_nosigma": dict(depth=1, hidden=32, heads=2, patch=4, input=8, channels=3, classes=5, learn_sigma=False, batch=2),
}


def param_shapes(c):
    d, C, p = c["hidden"], c["channels"], c["patch"]
    T = (c["input"] // p) ** 2
    cout = 2 * C if c["learn_sigma"] else C
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
    s += [("final_layer.linear.weight", (p * p * cout, d)), ("final_layer.linear.bias", (p * p * cout,)),
          ("final_layer.adaLN_modulation.1.weight", (2 * d, d)), ("final_layer.adaLN_modulation.1.bias", (2 * d,))]
    return s


def sincos_pos(d, g):
    # [sin(col w), cos(col w), sin(row w), cos(row w)], w_k = 10000^(-k/(d/4)) — first half = column.
    k = d // 4
    omega = 1.0 / 10000 ** (np.arange(k, dtype=np.float64) / k)
    rows, cols = np.meshgrid(np.arange(g, dtype=np.float64), np.arange(g, dtype=np.float64), indexing="ij")
    r, cl = rows.reshape(-1, 1) * omega, cols.reshape(-1, 1) * omega
    return np.concatenate([np.sin(cl), np.cos(cl), np.sin(r), np.cos(r)], axis=1)[None].astype(np.float32)


def layer_norm(x, eps=1e-6):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def sit_forward(P, c, x, t, y):
    d, H, p, C = c["hidden"], c["heads"], c["patch"], c["channels"]
    B, S = x.shape[0], c["input"]
    g = S // p
    cout = 2 * C if c["learn_sigma"] else C
    # patch embed as a strided convolution
    tok = torch.nn.functional.conv2d(x, P["x_embedder.proj.weight"], P["x_embedder.proj.bias"], stride=p)
    tok = tok.flatten(2).transpose(1, 2) + P["pos_embed"]
    # timestep embedding: cos first, f_k = exp(-ln(1e4) k / 128)
    f = torch.exp(-math.log(10000) * torch.arange(128, dtype=torch.float64) / 128)
    a = t[:, None] * f[None]
    e = torch.cat([torch.cos(a), torch.sin(a)], dim=1)
    h = torch.nn.functional.silu(e @ P["t_embedder.mlp.0.weight"].T + P["t_embedder.mlp.0.bias"])
    temb = h @ P["t_embedder.mlp.2.weight"].T + P["t_embedder.mlp.2.bias"]
    cond = temb + P["y_embedder.embedding_table.weight"][y]
    sc = torch.nn.functional.silu(cond)
    xx = tok
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
    fm = sc @ P["final_layer.adaLN_modulation.1.weight"].T + P["final_layer.adaLN_modulation.1.bias"]
    shift, scale = fm.chunk(2, dim=1)
    o = (layer_norm(xx) * (1 + scale[:, None]) + shift[:, None]) @ P["final_layer.linear.weight"].T \
        + P["final_layer.linear.bias"]
    # unpatchify: feature (pr, pc, ch) with ch fastest -> pixel (ch, i p + pr, j p + pc)
    o = o.reshape(B, g, g, p, p, cout).permute(0, 5, 1, 3, 2, 4).reshape(B, cout, S, S)
    return o[:, :C]


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
    x32 = rng.standard_normal((B, C, S, S)).astype(np.float32)
    t32 = rng.uniform(0, 1, B).astype(np.float32)
    y = rng.integers(0, c["classes"] + 1, B).astype(np.int32)
    y[-1] = c["classes"]  # always exercise the null class
    target32 = rng.standard_normal((B, C, S, S)).astype(np.float32)
    x = torch.tensor(x32.astype(np.float64), requires_grad=True)
    out = sit_forward(P, c, x, torch.tensor(t32.astype(np.float64)), torch.tensor(y.astype(np.int64)))
    loss = ((out - torch.tensor(target32.astype(np.float64))) ** 2).mean()
    loss.backward()
    tensors = [("param:" + n, P[n].detach().numpy().astype(np.float32)) for n, _ in shapes]
    tensors += [("x", x32), ("t", t32), ("y", y), ("target", target32),
                ("out", out.detach().numpy().astype(np.float32)),
                ("loss", np.array([loss.item()], dtype=np.float32)),
                ("grad:x", x.grad.numpy().astype(np.float32))]
    tensors += [("grad:" + n, P[n].grad.numpy().astype(np.float32)) for n, _ in shapes if n != "pos_embed"]
    cfg = " ".join(f"{k}={int(v)}" for k, v in c.items())
    lines = [f"# generated by Tests/Fixtures/make_sit_fixtures.py (torch {torch.__version__}, numpy {np.__version__}); DO NOT EDIT",
             f"# regenerate: pip install 'torch<2.14' numpy && python3 Tests/Fixtures/make_sit_fixtures.py",
             f"config {cfg}"]
    with open(os.path.join(OUT, name + ".bin"), "wb") as fb:
        for n, a in tensors:
            a = np.ascontiguousarray(a)
            dtype = "f32" if a.dtype == np.float32 else "i32"
            lines.append(f"{n} {dtype} {a.size} " + " ".join(str(v) for v in a.shape))
            fb.write(a.astype("<f4" if dtype == "f32" else "<i4").tobytes())
    with open(os.path.join(OUT, name + ".txt"), "w") as ft:
        ft.write("\n".join(lines) + "\n")
    print(name, "loss", loss.item(), "params", sum(int(np.prod(s)) for _, s in shapes))


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    for i, (n, c) in enumerate(CONFIGS.items()):
        make(n, c, seed=1234 + i)
    sys.exit(0)
