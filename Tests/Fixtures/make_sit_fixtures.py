#!/usr/bin/env python3
"""Generates the SiT conformance fixtures in Tests/Fixtures/sit/ (DO NOT EDIT the generated files).

An independent PyTorch re-implementation of the official SiT (willisma/SiT models.py) written from
docs/exactness.md §5 — not the official code and not libmixflow's output. Tiny configs, seeded
non-zero weights EVERYWHERE (adaLN and final layer included, so every path carries signal), evaluated in
float64 on float32-rounded weights and inputs. Each fixture holds the weights, inputs (x, t, y, target),
the model output (learn_sigma half dropped, as upstream), and the gradients of
L = mean((out - target)^2) with respect to every trainable parameter and to x.

Regenerate:  pip install 'torch<2.14' numpy && python3 Tests/Fixtures/make_sit_fixtures.py
Format: see fixture_common.py (shared with make_ditdh_fixtures.py and make_repa_fixtures.py, which builds on
this script's SiT).
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_common import (generate, parameter, random_batch, random_weight, sincos_pos,  # noqa: E402
                            write_denoising_fixture)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sit")

CONFIGS = {
    # name: depth, hidden, heads, patch, input, channels, classes, learn_sigma, batch
    "tiny_sigma": dict(depth=2, hidden=32, heads=4, patch=2, input=8, channels=4, classes=10, learn_sigma=True, batch=3),
    "tiny_nosigma": dict(depth=1, hidden=32, heads=2, patch=4, input=8, channels=3, classes=5, learn_sigma=False, batch=2),
}


def out_channels(c):
    return 2 * c["channels"] if c.get("learn_sigma") else c["channels"]


def param_shapes(c, before_final=()):
    """The official state dict's (name, shape) in order; `before_final` (REPA's projectors) goes between the
    blocks and final_layer."""
    d, C, p = c["hidden"], c["channels"], c["patch"]
    T = (c["input"] // p) ** 2
    cout = out_channels(c)
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
    s += list(before_final)
    s += [("final_layer.linear.weight", (p * p * cout, d)), ("final_layer.linear.bias", (p * p * cout,)),
          ("final_layer.adaLN_modulation.1.weight", (2 * d, d)), ("final_layer.adaLN_modulation.1.bias", (2 * d,))]
    return s


def init_params(c, shapes, rng):
    """Seeded non-zero weights for every tensor; pos_embed is the fixed sin-cos table (no gradient)."""
    P = {}
    for n, s in shapes:
        w = sincos_pos(c["hidden"], c["input"] // c["patch"]) if n == "pos_embed" else random_weight(rng, s)
        P[n] = parameter(w, trainable=(n != "pos_embed"))
    return P


def layer_norm(x, eps=1e-6):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def sit_forward(P, c, x, t, y, after_block=None):
    """SiT.forward (learn_sigma half dropped). `after_block(i, tokens)` sees the residual stream after
    blocks[i] (REPA's projectors read it)."""
    d, H, p, C = c["hidden"], c["heads"], c["patch"], c["channels"]
    B, S = x.shape[0], c["input"]
    g = S // p
    cout = out_channels(c)
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
        if after_block is not None:
            after_block(i, xx)
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
    P = init_params(c, shapes, rng)
    write_denoising_fixture(OUT, "make_sit_fixtures.py", name, c, shapes, P, ("pos_embed",),
                            random_batch(rng, c), sit_forward)


if __name__ == "__main__":
    generate(CONFIGS, make, first_seed=1234)
