#!/usr/bin/env python3
"""Generates the DiT^DH conformance fixtures in Tests/Fixtures/ditdh/ (DO NOT EDIT the generated files).

An independent PyTorch re-implementation of the RAE stage-2 model DiT^DH (DiTwDDTHead) written from
docs/exactness.md §6 — not the official code and not libmixflow's output. Tiny configs, seeded
non-zero weights EVERYWHERE (adaLN, final layer and RMSNorm weights included, so every path carries
signal), evaluated in float64 on float32-rounded weights and inputs. Each fixture holds the weights
(the fixed pos_embed, t_embedder.W and RoPE tables too), the inputs (x, t, y, target), the model output,
and the gradients of L = mean((out - target)^2) with respect to every trainable parameter and to x.

Regenerate:  pip install 'torch<2.14' numpy && python3 Tests/Fixtures/make_ditdh_fixtures.py
Format: see fixture_common.py.
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_common import (generate, parameter, random_batch, random_weight, sincos_pos,  # noqa: E402
                            write_denoising_fixture)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ditdh")
F = torch.nn.functional

CONFIGS = {
    # encoder depth/hidden/heads, head depth/hidden/heads, latent channels and size, classes, batch
    "tiny": dict(depth=2, hidden=32, heads=2, head_depth=1, head_hidden=48, head_heads=2,
                 channels=16, input=8, classes=10, batch=2),
    # equal widths: s_projector is Identity (absent from the state dict); two per-token head blocks
    "tiny_identity": dict(depth=1, hidden=32, heads=2, head_depth=2, head_hidden=32, head_heads=4,
                          channels=8, input=4, classes=5, batch=3),
}


def swiglu_hidden(d):
    return int(2 / 3 * int(4 * d))


def param_shapes(c):
    de, dh, C, T = c["hidden"], c["head_hidden"], c["channels"], c["input"] ** 2
    s = [("pos_embed", (1, T, de)), ("x_embedder.proj.weight", (dh, C, 1, 1)), ("x_embedder.proj.bias", (dh,)),
         ("s_embedder.proj.weight", (de, C, 1, 1)), ("s_embedder.proj.bias", (de,))]
    if de != dh:
        s += [("s_projector.weight", (dh, de)), ("s_projector.bias", (dh,))]
    s += [("t_embedder.W", (256,)), ("t_embedder.mlp.0.weight", (de, 512)), ("t_embedder.mlp.0.bias", (de,)),
          ("t_embedder.mlp.2.weight", (de, de)), ("t_embedder.mlp.2.bias", (de,)),
          ("y_embedder.embedding_table.weight", (c["classes"] + 1, de)),
          ("final_layer.norm_final.weight", (dh,)), ("final_layer.linear.weight", (C, dh)),
          ("final_layer.linear.bias", (C,)), ("final_layer.adaLN_modulation.1.weight", (2 * dh, dh)),
          ("final_layer.adaLN_modulation.1.bias", (2 * dh,)),
          ("enc_feat_rope.freqs_cos", (T, de // c["heads"])), ("enc_feat_rope.freqs_sin", (T, de // c["heads"])),
          ("dec_feat_rope.freqs_cos", (T, dh // c["head_heads"])), ("dec_feat_rope.freqs_sin", (T, dh // c["head_heads"]))]
    for i in range(c["depth"] + c["head_depth"]):
        d = de if i < c["depth"] else dh
        h = swiglu_hidden(d)
        b = f"blocks.{i}."
        s += [(b + "norm1.weight", (d,)), (b + "norm2.weight", (d,)),
              (b + "attn.qkv.weight", (3 * d, d)), (b + "attn.qkv.bias", (3 * d,)),
              (b + "attn.proj.weight", (d, d)), (b + "attn.proj.bias", (d,)),
              (b + "mlp.w12.weight", (2 * h, d)), (b + "mlp.w12.bias", (2 * h,)),
              (b + "mlp.w3.weight", (d, h)), (b + "mlp.w3.bias", (d,)),
              (b + "adaLN_modulation.1.weight", (6 * d, d)), (b + "adaLN_modulation.1.bias", (6 * d,))]
    return s


FIXED = ("pos_embed", "t_embedder.W", "enc_feat_rope.freqs_cos", "enc_feat_rope.freqs_sin",
         "dec_feat_rope.freqs_cos", "dec_feat_rope.freqs_sin")


def rope_tables(head_dim, g):
    # dim = head_dim/2 per axis, theta_k = 10000^(-2k/dim), each angle twice; first half = ROW index.
    dim = head_dim // 2
    theta = 10000.0 ** (-2.0 * np.arange(dim // 2, dtype=np.float64) / dim)
    ang = np.zeros((g * g, head_dim))
    for i in range(g):
        for j in range(g):
            ang[i * g + j, :dim] = np.repeat(i * theta, 2)
            ang[i * g + j, dim:] = np.repeat(j * theta, 2)
    return np.cos(ang), np.sin(ang)


def rms_norm(x, w, eps=1e-6):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(q, cos, sin):
    # q: [B, H, T, hd]; pairs (2m, 2m+1): (a, b) -> (a cos - b sin, b cos + a sin)
    a, b = q[..., 0::2], q[..., 1::2]
    rot = torch.stack([-b, a], dim=-1).reshape(q.shape)
    return q * cos + rot * sin


def block(P, i, x, cond, heads, cos, sin):
    # cond: [B, 1, d] (encoder) or [B, T, d] (head), already SiLU'd once more inside adaLN below
    p = f"blocks.{i}."
    B, T, d = x.shape
    mod = F.silu(cond) @ P[p + "adaLN_modulation.1.weight"].T + P[p + "adaLN_modulation.1.bias"]
    sh1, sc1, g1, sh2, sc2, g2 = mod.chunk(6, dim=-1)
    h = rms_norm(x, P[p + "norm1.weight"]) * (1 + sc1) + sh1
    qkv = h @ P[p + "attn.qkv.weight"].T + P[p + "attn.qkv.bias"]
    q, k, v = qkv.reshape(B, T, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1) @ v
    att = att.transpose(1, 2).reshape(B, T, d)
    x = x + g1 * (att @ P[p + "attn.proj.weight"].T + P[p + "attn.proj.bias"])
    h = rms_norm(x, P[p + "norm2.weight"]) * (1 + sc2) + sh2
    ab = h @ P[p + "mlp.w12.weight"].T + P[p + "mlp.w12.bias"]
    a, b = ab.chunk(2, dim=-1)
    x = x + g2 * ((F.silu(a) * b) @ P[p + "mlp.w3.weight"].T + P[p + "mlp.w3.bias"])
    return x


def ditdh_forward(P, c, x, t, y):
    B, C, S = x.shape[0], c["channels"], c["input"]
    tok = x.reshape(B, C, S * S).transpose(1, 2)  # patch size 1: token n = row*S + col
    ang = 2 * math.pi * t[:, None] * P["t_embedder.W"][None]
    e = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)  # SIN first
    temb = F.silu(e @ P["t_embedder.mlp.0.weight"].T + P["t_embedder.mlp.0.bias"]) @ P["t_embedder.mlp.2.weight"].T \
        + P["t_embedder.mlp.2.bias"]
    cond = F.silu(temb + P["y_embedder.embedding_table.weight"][y])[:, None]
    s = tok @ P["s_embedder.proj.weight"].flatten(1).T + P["s_embedder.proj.bias"] + P["pos_embed"]
    for i in range(c["depth"]):
        s = block(P, i, s, cond, c["heads"], P["enc_feat_rope.freqs_cos"], P["enc_feat_rope.freqs_sin"])
    s = F.silu(temb[:, None] + s)
    if "s_projector.weight" in P:
        s = s @ P["s_projector.weight"].T + P["s_projector.bias"]
    h = tok @ P["x_embedder.proj.weight"].flatten(1).T + P["x_embedder.proj.bias"]
    for i in range(c["depth"], c["depth"] + c["head_depth"]):
        h = block(P, i, h, s, c["head_heads"], P["dec_feat_rope.freqs_cos"], P["dec_feat_rope.freqs_sin"])
    fm = F.silu(s) @ P["final_layer.adaLN_modulation.1.weight"].T + P["final_layer.adaLN_modulation.1.bias"]
    shift, scale = fm.chunk(2, dim=-1)
    h = rms_norm(h, P["final_layer.norm_final.weight"]) * (1 + scale) + shift
    o = h @ P["final_layer.linear.weight"].T + P["final_layer.linear.bias"]
    return o.transpose(1, 2).reshape(B, C, S, S)


def make(name, c, seed):
    rng = np.random.default_rng(seed)
    shapes = param_shapes(c)
    g = c["input"]
    P = {}
    for n, s in shapes:
        if n == "pos_embed":
            w = sincos_pos(c["hidden"], g)
        elif n.startswith("enc_feat_rope") or n.startswith("dec_feat_rope"):
            cs, sn = rope_tables(s[1], g)
            w = cs if n.endswith("cos") else sn
        elif n == "t_embedder.W":
            w = rng.standard_normal(s)
        elif "norm" in n:
            w = 1 + 0.2 * rng.standard_normal(s)
        else:
            w = random_weight(rng, s)
        P[n] = parameter(w, trainable=(n not in FIXED))
    write_denoising_fixture(OUT, "make_ditdh_fixtures.py", name, c, shapes, P, FIXED,
                            random_batch(rng, c), ditdh_forward)


if __name__ == "__main__":
    generate(CONFIGS, make, first_seed=4321)
