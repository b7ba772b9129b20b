"""FD (Fashion-MNIST classifier features) of a trainer checkpoint's EMA weights or of EMA snapshots
(`ema-<step>.npz` from scripts/pretrain_base.py), for the FD-vs-steps curve of the base model.

    python3 scripts/eval_checkpoint.py runs/base/ckpt.mixflow [runs/base/ema-002000.npz ...] [--samples 1000]
    python3 scripts/eval_checkpoint.py runs/base/ckpt.mixflow runs/base/ema-*.npz --csv fd.csv --plot fd.png

Every model is sampled from the same noise and labels (Euler, 50 grid points) and goes through the uint8
round trip real images went through; FD against the shipped 10k test-set statistics.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings" / "python"))
import mixflow  # noqa: E402


def fd_of(model, n, steps, method, seed=1):
    net = mixflow.FeatureNet()
    ref = mixflow.load_reference_stats()[:2]
    noise = np.random.default_rng(seed).standard_normal((n, 1, 28, 28)).astype(np.float32)
    labels = np.arange(n) % 10
    x = mixflow.Sampler(method=method, steps=steps, null_class=10).sample_model(model, noise, y=labels).x
    x = mixflow.to_uint8(x).astype(np.float32) / 127.5 - 1
    f = net.features(x.reshape(n, -1))
    acc = net.accuracy(x.reshape(n, -1), labels) if hasattr(net, "accuracy") else float("nan")
    return mixflow.frechet_distance(f, ref), acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--method", default="euler")
    ap.add_argument("--csv", help="write path,step,fd,accuracy rows here")
    ap.add_argument("--plot", help="PNG of FD against the snapshot step (matplotlib)")
    args = ap.parse_args()
    rows = []
    template = None
    for p in args.paths:
        if p.endswith(".mixflow"):
            tr = mixflow.Trainer.resume(p)
            model, label = tr.ema_model(), f"{p} (step {tr.step_count}, EMA)"
            template = template or tr
        else:
            if template is None:
                raise SystemExit("give a .mixflow checkpoint first: it supplies the architecture for .npz snapshots")
            model = template.ema_model()
            model.load_state_dict(dict(np.load(p)))
            label = p
        fd, acc = fd_of(model, args.samples, args.steps, args.method)
        print(f"{label}: FD {fd:.2f}, class accuracy {acc:.3f} ({args.samples} samples, {args.method} {args.steps})", flush=True)
        step = int(Path(p).stem.split("-")[-1]) if p.endswith(".npz") else tr.step_count
        rows.append((p, step, fd, acc))
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("path,step,fd,accuracy\n" + "".join(f"{p},{s},{fd:.4f},{a:.4f}\n" for p, s, fd, a in rows))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        pts = sorted({(s, fd) for _, s, fd, _ in rows})
        fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
        ax.plot([s for s, _ in pts], [fd for _, fd in pts], "o-")
        ax.set_yscale("log")
        ax.set_xlabel("pre-training step")
        ax.set_ylabel(f"FD ({args.samples} samples, {args.method} {args.steps})")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot)


if __name__ == "__main__":
    main()
