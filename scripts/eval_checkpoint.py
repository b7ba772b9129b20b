"""FD (Fashion-MNIST classifier features) of a trainer checkpoint's EMA weights or of EMA snapshots
(`ema-<step>.npz` from scripts/pretrain_base.py), for the FD-vs-steps curve of the base model.

    python3 scripts/eval_checkpoint.py runs/base/ckpt.mixflow [runs/base/ema-002000.npz ...] [--samples 1000]

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
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
