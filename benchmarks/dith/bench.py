"""DiT^DH forward, gradient pass and training-step time: libmixflow against PyTorch CPU on the same weights and
batch, in the same run, with the peak RSS of each side.

    python3 benchmarks/dith/bench.py [--arch DiTDH-S] [--input 16] [--channels 768] [--batch 2] [--threads 2]
                                     [--repeats 3] [--rounds 2]

Each side runs in its own child process (so each peak RSS, `ru_maxrss`, is that library's alone), and the
parent alternates them for `--rounds` rounds (libmixflow first in even rounds, PyTorch first in odd ones)
because the machine is shared: a single pair of numbers would mostly measure the neighbours. Every timing
is the best of `--repeats` after one warm-up call. Passes:

- forward: `mixflow_model_forward` against the PyTorch model under `torch.no_grad()`;
- grads:   `mixflow_model_gradients` (forward + MSE + backward, every parameter gradient) against PyTorch
           forward + MSE + `backward()`;
- step:    `mixflow_trainer_step` (MixFlow-RAE transport, forward, backward, AdamW; no EMA, no clipping)
           against PyTorch (the same linear-path transport maths, forward, MSE, backward, `torch.optim.AdamW`,
           fused=True by default; `--adamw loop` for the default single-tensor loop);
           AdamW betas (0.9, 0.95), eps 1e-8, weight decay 0 on both sides.

Both children build every tensor from the same seeded generator (fixed pos_embed and RoPE tables from
docs/exactness.md §6; random non-zero values everywhere else, adaLN and final layer included) one tensor at a time, so
neither RSS holds a second copy of the weights. The parent checks that the two forward outputs agree.

Needs the release library (`swift build -c release`) and torch ('torch<2.14', CPU wheel); `MIXFLOW_LIBRARY`
overrides the library path.
"""
import argparse
import ctypes
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "gemm"))
import machine  # noqa: E402  (CPU, ISA, GEMM kernel and sgemm peak of this run)
SIZES = {"DITDH-S": (12, 384, 6), "DITDH-XL": (28, 1152, 16)}  # encoder depth, width, heads; head 2 x 2048, 16 heads


def config(a):
    depth, hidden, heads = SIZES[a.arch.upper()]
    return dict(depth=depth, hidden=hidden, heads=heads, head_depth=2, head_hidden=2048, head_heads=16,
                input=a.input, channels=a.channels, classes=1000)


def swiglu_hidden(d):
    return int(2 / 3 * int(4 * d))


def tensor_shapes(c):
    """The official state dict (docs/exactness.md §6.5) in PyTorch order: (name, shape, trainable)."""
    de, dh, C, T = c["hidden"], c["head_hidden"], c["channels"], c["input"] ** 2
    s = [("pos_embed", (1, T, de), False), ("x_embedder.proj.weight", (dh, C, 1, 1), True),
         ("x_embedder.proj.bias", (dh,), True), ("s_embedder.proj.weight", (de, C, 1, 1), True),
         ("s_embedder.proj.bias", (de,), True)]
    if de != dh:
        s += [("s_projector.weight", (dh, de), True), ("s_projector.bias", (dh,), True)]
    s += [("t_embedder.W", (256,), False), ("t_embedder.mlp.0.weight", (de, 512), True),
          ("t_embedder.mlp.0.bias", (de,), True), ("t_embedder.mlp.2.weight", (de, de), True),
          ("t_embedder.mlp.2.bias", (de,), True), ("y_embedder.embedding_table.weight", (c["classes"] + 1, de), True),
          ("final_layer.norm_final.weight", (dh,), True), ("final_layer.linear.weight", (C, dh), True),
          ("final_layer.linear.bias", (C,), True), ("final_layer.adaLN_modulation.1.weight", (2 * dh, dh), True),
          ("final_layer.adaLN_modulation.1.bias", (2 * dh,), True)]
    for part, d, h in (("enc", de, c["heads"]), ("dec", dh, c["head_heads"])):
        s += [(f"{part}_feat_rope.freqs_cos", (T, d // h), False), (f"{part}_feat_rope.freqs_sin", (T, d // h), False)]
    for i in range(c["depth"] + c["head_depth"]):
        d = de if i < c["depth"] else dh
        hs, b = swiglu_hidden(d), f"blocks.{i}."
        s += [(b + "norm1.weight", (d,), True), (b + "norm2.weight", (d,), True),
              (b + "attn.qkv.weight", (3 * d, d), True), (b + "attn.qkv.bias", (3 * d,), True),
              (b + "attn.proj.weight", (d, d), True), (b + "attn.proj.bias", (d,), True),
              (b + "mlp.w12.weight", (2 * hs, d), True), (b + "mlp.w12.bias", (2 * hs,), True),
              (b + "mlp.w3.weight", (d, hs), True), (b + "mlp.w3.bias", (d,), True),
              (b + "adaLN_modulation.1.weight", (6 * d, d), True), (b + "adaLN_modulation.1.bias", (6 * d,), True)]
    return s


def sincos_pos(d, g):
    """SiT's 2-D sin-cos embedding: [sin(col w), cos(col w), sin(row w), cos(row w)] (first half = column)."""
    k = d // 4
    omega = 1.0 / 10000 ** (np.arange(k, dtype=np.float64) / k)
    rows, cols = np.meshgrid(np.arange(g, dtype=np.float64), np.arange(g, dtype=np.float64), indexing="ij")
    r, cl = rows.reshape(-1, 1) * omega, cols.reshape(-1, 1) * omega
    return np.concatenate([np.sin(cl), np.cos(cl), np.sin(r), np.cos(r)], axis=1)[None]


def rope_table(head_dim, g, fn):
    """VisionRotaryEmbeddingFast: per axis dim = head_dim/2, each angle twice; first half = ROW index."""
    dim = head_dim // 2
    theta = 10000.0 ** (-2.0 * np.arange(dim // 2, dtype=np.float64) / dim)
    i, j = np.divmod(np.arange(g * g), g)
    return fn(np.concatenate([np.repeat(i[:, None] * theta, 2, 1), np.repeat(j[:, None] * theta, 2, 1)], 1))


def weights(c, seed=0):
    """Yields (name, float32 array, trainable) one tensor at a time, identically in both children."""
    for k, (name, shape, trainable) in enumerate(tensor_shapes(c)):
        rng = np.random.default_rng([seed, k])
        if name == "pos_embed":
            w = sincos_pos(c["hidden"], c["input"])
        elif name.endswith("freqs_cos") or name.endswith("freqs_sin"):
            w = rope_table(shape[1], c["input"], np.cos if name.endswith("cos") else np.sin)
        elif "norm" in name:
            w = 1 + 0.1 * rng.standard_normal(shape, np.float32)
        elif len(shape) == 1:
            w = 0.02 * rng.standard_normal(shape, np.float32) if name != "t_embedder.W" else rng.standard_normal(shape, np.float32)
        else:
            w = rng.standard_normal(shape, np.float32) * np.float32(1 / math.sqrt(np.prod(shape[1:])))
        yield name, np.ascontiguousarray(w, np.float32).reshape(shape), trainable


def batch(c, b, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, c["channels"], c["input"], c["input"]), np.float32)
    t = rng.uniform(0, 1, b).astype(np.float32)
    y = rng.integers(0, c["classes"], b).astype(np.int32)
    target = rng.standard_normal(x.shape, np.float32)
    return x, t, y, target


CLOCK = time.perf_counter  # --clock cpu: time.process_time (all threads of the child)


def best(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    return min(times)


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---- libmixflow side --------------------------------------------------------------------------------------
def run_mixflow(a, c, out_path):
    os.environ.setdefault("MIXFLOW_LIBRARY", "")
    if not os.environ["MIXFLOW_LIBRARY"]:
        os.environ["MIXFLOW_LIBRARY"] = subprocess.check_output(
            ["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/libmixflow.so"
    sys.path.insert(0, str(ROOT / "bindings" / "python"))
    import mixflow
    base = rss_mib()
    m = mixflow.Model.create("DiTDH", depth=c["depth"], hidden=c["hidden"], heads=c["heads"], head_depth=c["head_depth"],
                             head_hidden=c["head_hidden"], head_heads=c["head_heads"], input_size=c["input"],
                             in_channels=c["channels"], num_classes=c["classes"], class_dropout=0.0,
                             num_threads=a.threads)
    for name, w, _ in weights(c):
        m.load_state_dict({name: w}, strict=False)
    x, t, y, target = batch(c, a.batch)
    out = m.forward(x, t, y)
    np.save(out_path, out)
    r = dict(side="libmixflow", rss_base=base, params=m.num_params)
    r["forward"] = best(lambda: m.forward(x, t, y), a.repeats)
    # The raw C call (Model.gradients would also copy every gradient out to numpy).
    from mixflow._lib import IP, check, fptr, lib
    loss = ctypes.c_float()
    r["grads"] = best(lambda: check(lib.mixflow_model_gradients(m._ptr, fptr(x), fptr(t), y.ctypes.data_as(IP),
                                                                fptr(target), a.batch, ctypes.byref(loss), None)),
                      a.repeats)
    tr = mixflow.Trainer(m, mixflow.Transport.preset("rae", latent_shape=x.shape[1:]), preset="sit", lr=1e-4,
                         betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0, ema=0.0,
                         max_grad_norm=0.0, seed=1, num_threads=a.threads)
    r["step"] = best(lambda: tr.step(x, y), a.repeats)
    r["rss_peak"] = rss_mib()
    return r


# ---- PyTorch side -----------------------------------------------------------------------------------------
def run_torch(a, c, out_path):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    base = rss_mib()
    P = {}
    for name, w, trainable in weights(c):
        P[name] = torch.from_numpy(w).requires_grad_(trainable)

    def rope(q, cos, sin):
        # pairs (2m, 2m+1): (a, b) -> (a cos - b sin, b cos + a sin)
        a_, b_ = q.unflatten(-1, (-1, 2)).unbind(-1)
        return q * cos + torch.stack((-b_, a_), -1).flatten(-2) * sin

    def block(i, h, cond, heads, cos, sin):
        p = f"blocks.{i}."
        B, T, d = h.shape
        m = F.linear(F.silu(cond), P[p + "adaLN_modulation.1.weight"], P[p + "adaLN_modulation.1.bias"]).chunk(6, -1)
        u = F.rms_norm(h, (d,), P[p + "norm1.weight"], eps=1e-6) * (1 + m[1]) + m[0]
        q, k, v = F.linear(u, P[p + "attn.qkv.weight"], P[p + "attn.qkv.bias"]).reshape(B, T, 3, heads, d // heads) \
            .permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(rope(q, cos, sin), rope(k, cos, sin), v).transpose(1, 2).reshape(B, T, d)
        h = h + m[2] * F.linear(o, P[p + "attn.proj.weight"], P[p + "attn.proj.bias"])
        u = F.rms_norm(h, (d,), P[p + "norm2.weight"], eps=1e-6) * (1 + m[4]) + m[3]
        ga, gb = F.linear(u, P[p + "mlp.w12.weight"], P[p + "mlp.w12.bias"]).chunk(2, -1)
        return h + m[5] * F.linear(F.silu(ga) * gb, P[p + "mlp.w3.weight"], P[p + "mlp.w3.bias"])

    def forward(x, t, y):
        B, C, S = x.shape[0], c["channels"], c["input"]
        tok = x.flatten(2).transpose(1, 2)  # patch size 1: token n = row*S + col
        ang = t[:, None] * P["t_embedder.W"][None] * 2 * math.pi
        temb = F.linear(F.silu(F.linear(torch.cat([torch.sin(ang), torch.cos(ang)], 1), P["t_embedder.mlp.0.weight"],
                                        P["t_embedder.mlp.0.bias"])), P["t_embedder.mlp.2.weight"], P["t_embedder.mlp.2.bias"])
        cond = F.silu(temb + P["y_embedder.embedding_table.weight"][y])[:, None]
        s = F.linear(tok, P["s_embedder.proj.weight"].flatten(1), P["s_embedder.proj.bias"]) + P["pos_embed"]
        for i in range(c["depth"]):
            s = block(i, s, cond, c["heads"], P["enc_feat_rope.freqs_cos"], P["enc_feat_rope.freqs_sin"])
        s = F.silu(temb[:, None] + s)
        if "s_projector.weight" in P:
            s = F.linear(s, P["s_projector.weight"], P["s_projector.bias"])
        h = F.linear(tok, P["x_embedder.proj.weight"].flatten(1), P["x_embedder.proj.bias"])
        for i in range(c["depth"], c["depth"] + c["head_depth"]):
            h = block(i, h, s, c["head_heads"], P["dec_feat_rope.freqs_cos"], P["dec_feat_rope.freqs_sin"])
        shift, scale = F.linear(F.silu(s), P["final_layer.adaLN_modulation.1.weight"],
                                P["final_layer.adaLN_modulation.1.bias"]).chunk(2, -1)
        h = F.rms_norm(h, (h.shape[-1],), P["final_layer.norm_final.weight"], eps=1e-6) * (1 + scale) + shift
        o = F.linear(h, P["final_layer.linear.weight"], P["final_layer.linear.bias"])
        return o.transpose(1, 2).reshape(B, C, S, S)

    xs, ts, ys, targets = batch(c, a.batch)
    x, t, y, target = torch.from_numpy(xs), torch.from_numpy(ts), torch.from_numpy(ys.astype(np.int64)), torch.from_numpy(targets)
    with torch.no_grad():
        np.save(out_path, forward(x, t, y).numpy())
        r = dict(side="pytorch", rss_base=base, params=sum(v.numel() for v in P.values()),
                 torch=f"{torch.__version__} (kernels {machine.torch_isa(torch)})")
        r["forward"] = best(lambda: forward(x, t, y), a.repeats)
    trainable = [v for v in P.values() if v.requires_grad]

    def grads():
        for v in trainable:
            v.grad = None
        ((forward(x, t, y) - target) ** 2).mean().backward()
    r["grads"] = best(grads, a.repeats)
    # fused: PyTorch's fastest CPU AdamW (the default per-tensor loop was ~8x slower on 200M parameters here).
    opt = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0,
                            fused=a.adamw == "fused", foreach=False if a.adamw == "loop" else None)
    shift = math.sqrt(c["channels"] * c["input"] ** 2 / 4096)
    gen = torch.Generator().manual_seed(1)

    def step():
        # The RAE transport's work on the batch (noise at 1, shifted time, x_t, velocity target): elementwise.
        u = torch.rand(x.shape[0], generator=gen) * 0.999
        tau = (shift * u / (1 + (shift - 1) * u))[:, None, None, None]
        noise = torch.randn(x.shape, generator=gen)
        xt = (1 - tau) * x + tau * noise
        opt.zero_grad(set_to_none=True)
        ((forward(xt, tau.flatten(), y) - (noise - x)) ** 2).mean().backward()
        opt.step()
    r["step"] = best(step, a.repeats)
    r["rss_peak"] = rss_mib()
    return r


def forward_flops(c, b):
    """GEMM work of one forward pass (2·m·n·k per matmul, attention included; backward = 2 × forward)."""
    de, dh, C, T = c["hidden"], c["head_hidden"], c["channels"], c["input"] ** 2
    he, hh = swiglu_hidden(de), swiglu_hidden(dh)
    enc = 2 * de * 6 * de + 2 * T * (4 * de * de + 3 * he * de) + 4 * T * T * de          # adaLN once per sample
    head = 2 * T * dh * 6 * dh + 2 * T * (4 * dh * dh + 3 * hh * dh) + 4 * T * T * dh     # adaLN per token
    rest = 2 * T * C * (de + dh) + 2 * (512 * de + de * de) + (2 * T * de * dh if de != dh else 0) \
        + 2 * T * dh * 2 * dh + 2 * T * dh * C
    return b * (c["depth"] * enc + c["head_depth"] * head + rest)


# ---- parent -----------------------------------------------------------------------------------------------
def child(a, side, out_path):
    cmd = [sys.executable, __file__, "--child", side, "--out", out_path, "--arch", a.arch, "--input", str(a.input),
           "--channels", str(a.channels), "--batch", str(a.batch), "--threads", str(a.threads), "--repeats", str(a.repeats),
           "--adamw", a.adamw, "--clock", a.clock, "--isa", a.isa]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"the {side} child failed ({res.returncode}):\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def span(values, fmt):
    lo, hi = min(values), max(values)
    return fmt.format(lo) if len(values) == 1 or fmt.format(lo) == fmt.format(hi) else fmt.format(lo) + "–" + fmt.format(hi)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="DiTDH-S")
    ap.add_argument("--input", type=int, default=16)
    ap.add_argument("--channels", type=int, default=768)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--adamw", choices=["fused", "loop"], default="fused", help="PyTorch's AdamW implementation")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: process CPU time, far less sensitive to a shared machine; compare at --threads 1 "
                         "(PyTorch's OpenMP workers spin while waiting, which counts as CPU time)")
    ap.add_argument("--child", choices=["libmixflow", "pytorch"])
    ap.add_argument("--out")
    machine.add_isa_argument(ap)
    a = ap.parse_args()
    machine.limit_isa(a.isa)  # before a child imports torch or loads libmixflow (children inherit it)
    global CLOCK
    CLOCK = time.process_time if a.clock == "cpu" else time.perf_counter
    c = config(a)
    if a.child:
        r = (run_mixflow if a.child == "libmixflow" else run_torch)(a, c, a.out)
        print(json.dumps(r))
        return 0
    print(f"{a.arch} on a {a.channels}x{a.input}x{a.input} latent, batch {a.batch}, {a.threads} threads, "
          f"best of {a.repeats} per round, {a.rounds} rounds, {a.clock} time, PyTorch AdamW {a.adamw}; load average {os.getloadavg()[0]:.1f}", flush=True)
    results = {"libmixflow": [], "pytorch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.rounds):
            order = ["libmixflow", "pytorch"] if k % 2 == 0 else ["pytorch", "libmixflow"]
            for side in order:
                results[side].append(child(a, side, f"{tmp}/{side}.npy"))
            mf, th = np.load(f"{tmp}/libmixflow.npy"), np.load(f"{tmp}/pytorch.npy")
            err = float(np.abs(mf - th).max() / np.abs(th).max())
            rm, rt = results["libmixflow"][-1], results["pytorch"][-1]
            print(f"round {k + 1}: forward max rel diff {err:.1e}; " + "; ".join(
                f"{p} {rm[p] * 1e3:.0f} / {rt[p] * 1e3:.0f} ms = {rm[p] / rt[p]:.2f}x" for p in ("forward", "grads", "step"))
                  + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
    mf, th = results["libmixflow"], results["pytorch"]
    print(f"\nparameters: libmixflow {mf[0]['params']:,}, PyTorch {th[0]['params']:,}; torch {th[0]['torch']}")
    print("| pass | libmixflow | PyTorch | ratio (same round) |")
    print("|---|---|---|---|")
    for p in ("forward", "grads", "step"):
        ratios = [m[p] / t[p] for m, t in zip(mf, th)]
        print(f"| {p} | {span([m[p] for m in mf], '{:.2f}')} s | {span([t[p] for t in th], '{:.2f}')} s | "
              f"{span(ratios, '{:.2f}')}x |")
    lib = ctypes.CDLL(os.environ.get("MIXFLOW_LIBRARY") or subprocess.check_output(
        ["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, text=True).strip() + "/libmixflow.so")
    about, peak = machine.header(lib, a.threads)
    print(about)
    fwd = forward_flops(c, a.batch)
    print(f"| GEMM work | {fwd / 1e9:.0f} GFLOP forward, {3 * fwd / 1e9:.0f} GFLOP gradient pass / step | "
          f"sgemm 1024³ peak now: {peak:.0f} GFLOP/s | |")
    for p, work in (("forward", fwd), ("grads", 3 * fwd)):
        print(f"| {p} GFLOP/s | {span([work / m[p] / 1e9 for m in mf], '{:.0f}')} | "
              f"{span([work / t[p] / 1e9 for t in th], '{:.0f}')} | |")
    print(f"| peak RSS | {span([m['rss_peak'] / 1024 for m in mf], '{:.2f}')} GiB | "
          f"{span([t['rss_peak'] / 1024 for t in th], '{:.2f}')} GiB | |")
    print(f"| RSS after imports | {span([m['rss_base'] for m in mf], '{:.0f}')} MiB | "
          f"{span([t['rss_base'] for t in th], '{:.0f}')} MiB | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
