"""Peak resident memory of a SiT training step, libmixflow against PyTorch, each side in its own process.

    python3 benchmarks/sit/memory.py [--arch SiT-S/2] [--batch 32] [--threads 2] [--steps 2]

libmixflow: `mixflow.Trainer.step` (MixFlow transport, forward, loss, backward, AdamW, EMA) through the Python
binding. PyTorch: the same SiT in plain ops (benchmarks/sit/bench.py), forward + MSE + backward,
`torch.optim.AdamW` (foreach) and an EMA copy of the weights. Each child reports `ru_maxrss` (whole process,
interpreter and libraries included) and, to separate the library's own footprint, the RSS after loading the
library and building the model but before the first step. Needs the release library and torch.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def mixflow_child(a):
    import numpy as np
    sys.path.insert(0, str(ROOT / "bindings/python"))
    import mixflow
    m = mixflow.Model.create(a.arch, input_size=32, in_channels=4, seed=1, num_threads=a.threads)
    tr = mixflow.Trainer(m, mixflow.Transport.preset("sit", gamma=0.8), ema=0.9999, seed=1, num_threads=a.threads)
    before = current_mib()
    rng = np.random.default_rng(0)
    for _ in range(a.steps):
        tr.step(rng.standard_normal((a.batch, 4, 32, 32)).astype(np.float32), rng.integers(0, 1000, a.batch))
    return before


def torch_child(a):
    import numpy as np
    sys.path.insert(0, str(ROOT / "benchmarks/sit"))
    from bench import load_torch, torch_sit
    torch = load_torch()
    torch.set_num_threads(a.threads)
    sizes = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
    depth, d, heads = sizes[a.arch.split("-")[1].split("/")[0].upper()]
    p = int(a.arch.split("/")[1])
    cfg = dict(depth=depth, hidden=d, heads=heads, patch=p, input=32, channels=4)
    g, cout = 32 // p, 8
    shapes = {"x_embedder.proj.weight": (d, 4, p, p), "x_embedder.proj.bias": (d,), "pos_embed": (1, g * g, d),
              "t_embedder.mlp.0.weight": (d, 256), "t_embedder.mlp.0.bias": (d,), "t_embedder.mlp.2.weight": (d, d),
              "t_embedder.mlp.2.bias": (d,), "y_embedder.embedding_table.weight": (1001, d),
              "final_layer.adaLN_modulation.1.weight": (2 * d, d), "final_layer.adaLN_modulation.1.bias": (2 * d,),
              "final_layer.linear.weight": (p * p * cout, d), "final_layer.linear.bias": (p * p * cout,)}
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({b + "adaLN_modulation.1.weight": (6 * d, d), b + "adaLN_modulation.1.bias": (6 * d,),
                       b + "attn.qkv.weight": (3 * d, d), b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d),
                       b + "attn.proj.bias": (d,), b + "mlp.fc1.weight": (4 * d, d), b + "mlp.fc1.bias": (4 * d,),
                       b + "mlp.fc2.weight": (d, 4 * d), b + "mlp.fc2.bias": (d,)})
    P = {k: (torch.randn(s) * 0.02).requires_grad_(k != "pos_embed") for k, s in shapes.items()}
    ema = {k: v.detach().clone() for k, v in P.items()}
    opt = torch.optim.AdamW([v for k, v in P.items() if k != "pos_embed"], lr=1e-4, weight_decay=0)
    before = current_mib()
    rng = np.random.default_rng(0)
    for _ in range(a.steps):
        x = torch.from_numpy(rng.standard_normal((a.batch, 4, 32, 32)).astype(np.float32))
        t = torch.rand(a.batch)
        y = torch.from_numpy(rng.integers(0, 1000, a.batch))
        opt.zero_grad(set_to_none=True)
        ((torch_sit(P, cfg, x, t, y) - torch.randn_like(x)) ** 2).mean().backward()
        opt.step()
        with torch.no_grad():
            for k, v in P.items():
                ema[k].mul_(0.9999).add_(v.detach(), alpha=1e-4)
    return before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="SiT-S/2")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--child", choices=["mixflow", "torch"])
    a = ap.parse_args()
    if a.child:
        before = (mixflow_child if a.child == "mixflow" else torch_child)(a)
        print(json.dumps({"before_step_mib": before, "peak_mib": rss_mib()}))
        return
    print(f"{a.arch} 32x32x4 batch {a.batch}, {a.threads} threads, {a.steps} training steps")
    for side in ("mixflow", "torch"):
        out = subprocess.run([sys.executable, __file__, "--child", side, "--arch", a.arch, "--batch", str(a.batch),
                              "--threads", str(a.threads), "--steps", str(a.steps)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{side:8}: peak RSS {r['peak_mib'] / 1024:.2f} GiB "
              f"(before the first step {r['before_step_mib'] / 1024:.2f} GiB, "
              f"step adds {(r['peak_mib'] - r['before_step_mib']) / 1024:.2f} GiB)")


if __name__ == "__main__":
    main()
