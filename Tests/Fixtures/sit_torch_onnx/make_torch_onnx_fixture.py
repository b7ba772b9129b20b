#!/usr/bin/env python3
"""Generates Tests/Fixtures/sit_torch_onnx/ (DO NOT EDIT the generated files): what torch.onnx.export writes
for an official-architecture SiT, for libmixflow's ONNX model import.

The module below is an independent nn.Module re-implementation of the official SiT written from
docs/exactness.md §5 (module names as in the official state dict: x_embedder.proj, t_embedder.mlp,
y_embedder.embedding_table, blocks.i.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2, adaLN_modulation.1},
final_layer.{linear, adaLN_modulation.1}). It is wrapped in a module under the attribute "net", so the
exporter may prefix the initializer names; the importer must strip that. Every parameter is non-zero
(adaLN and final layer included) so every path carries signal.

Files:
  sit_torch.onnx (+ sit_torch.onnx.data)   torch.onnx.export(dynamo=True) of the wrapper, external data on
  expected.onnx                             plain initializers: x [B,C,H,W], t [B], y [B] (as float), out [B,C,H,W]
                                            = the torch forward in float32 (learn_sigma half dropped), and
                                            metadata "heads" (not inferable from shapes for hidden 32)

Regenerate:  pip install 'torch<2.14' onnxscript onnx numpy && python3 Tests/Fixtures/sit_torch_onnx/make_torch_onnx_fixture.py
"""
import math
import os

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEPTH, HIDDEN, HEADS, PATCH, INPUT, CHANNELS, CLASSES = 2, 32, 4, 2, 8, 4, 10


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(CHANNELS, HIDDEN, PATCH, stride=PATCH)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # token n = row * W_p + col


class TimestepEmbedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, HIDDEN))

    def forward(self, t):
        freqs = torch.exp(-math.log(10000) * torch.arange(128, dtype=torch.float32) / 128)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))  # cos first


class LabelEmbedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding_table = nn.Embedding(CLASSES + 1, HIDDEN)  # + the null class

    def forward(self, y):
        return self.embedding_table(y)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.proj = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (d // HEADS) ** -0.5
        return self.proj((att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(HIDDEN, 4 * HIDDEN)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(4 * HIDDEN, HIDDEN)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(HIDDEN, elementwise_affine=False, eps=1e-6)
        self.attn = Attention()
        self.norm2 = nn.LayerNorm(HIDDEN, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(HIDDEN, 6 * HIDDEN))

    def forward(self, x, c):
        s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), s1, sc1))
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), s2, sc2))


class FinalLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm_final = nn.LayerNorm(HIDDEN, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(HIDDEN, PATCH * PATCH * 2 * CHANNELS)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(HIDDEN, 2 * HIDDEN))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)  # shift first
        return self.linear(modulate(self.norm_final(x), shift, scale))


class SiT(nn.Module):
    def __init__(self):
        super().__init__()
        g = INPUT // PATCH
        self.x_embedder = PatchEmbed()
        self.t_embedder = TimestepEmbedder()
        self.y_embedder = LabelEmbedder()
        self.pos_embed = nn.Parameter(torch.zeros(1, g * g, HIDDEN), requires_grad=False)
        self.blocks = nn.ModuleList([Block() for _ in range(DEPTH)])
        self.final_layer = FinalLayer()
        k = HIDDEN // 4
        omega = 1.0 / 10000 ** (np.arange(k, dtype=np.float64) / k)
        rows, cols = np.meshgrid(np.arange(g, dtype=np.float64), np.arange(g, dtype=np.float64), indexing="ij")
        r, cl = rows.reshape(-1, 1) * omega, cols.reshape(-1, 1) * omega
        pos = np.concatenate([np.sin(cl), np.cos(cl), np.sin(r), np.cos(r)], axis=1)  # first half = column
        self.pos_embed.data.copy_(torch.from_numpy(pos).float()[None])

    def forward(self, x, t, y):
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            h = block(h, c)
        h = self.final_layer(h, c)
        b, g = h.shape[0], INPUT // PATCH
        # features (p_row, p_col, channel) -> image [B, 2C, H, W]
        h = h.reshape(b, g, g, PATCH, PATCH, 2 * CHANNELS).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(b, 2 * CHANNELS, INPUT, INPUT)[:, :CHANNELS]  # learn_sigma half dropped


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = SiT()

    def forward(self, x, t, y):
        return self.net(x, t, y)


def main():
    torch.manual_seed(0)
    model = Wrapper().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith("pos_embed"):
                p.copy_(torch.randn_like(p) * 0.2)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, CHANNELS, INPUT, INPUT, generator=g)
    t = torch.tensor([0.05, 0.5, 0.95])
    y = torch.tensor([0, 7, CLASSES])  # CLASSES = the null class
    with torch.no_grad():
        out = model(x, t, y)
    path = os.path.join(HERE, "sit_torch.onnx")
    for f in (path, path + ".data"):
        if os.path.exists(f):
            os.remove(f)
    torch.onnx.export(model, (x, t, y), path, dynamo=True, external_data=True,
                      input_names=["x", "t", "y"], output_names=["out"])
    tensors = [numpy_helper.from_array(a.numpy().astype(np.float32), n)
               for n, a in (("x", x), ("t", t), ("y", y.float()), ("out", out))]
    m = helper.make_model(helper.make_graph([], "expected", [], [], initializer=tensors))
    m.ir_version = 8
    helper.set_model_props(m, {"heads": str(HEADS), "generator": "make_torch_onnx_fixture.py",
                               "torch": torch.__version__, "numpy": np.__version__, "note": "DO NOT EDIT"})
    onnx.save(m, os.path.join(HERE, "expected.onnx"))
    names = [i.name for i in onnx.load(path, load_external_data=False).graph.initializer]
    print("torch", torch.__version__, "initializers:", len(names), names[:4], "...")


if __name__ == "__main__":
    main()
