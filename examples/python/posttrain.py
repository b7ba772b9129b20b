"""MixFlow post-training end to end from Python through ctypes (the same steps as examples/c/posttrain.c):
load a base model, measure its Slow Flow and pick gamma, post-train on Fashion-MNIST, sample, evaluate
with the FD (Fashion-MNIST classifier features), save the post-trained model as ONNX.

    python3 examples/python/posttrain.py [BASE.onnx|BASE.mixflow|-] [STEPS]

BASE defaults to the shipped base model, models/fmnist-base/base.onnx; "-" creates a small SiT from scratch
instead (every call is still exercised).
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402

EVAL = 200
SHIPPED_BASE = Path(__file__).resolve().parents[2] / "models" / "fmnist-base" / "base.onnx"


def load_base(arg):
    if arg is None:
        return mixflow.Model.create(None, depth=2, hidden=64, heads=4, patch=4, input_size=28, in_channels=1,
                                    num_classes=10, learn_sigma=False), "from scratch"
    if arg.endswith(".onnx"):
        return mixflow.Model.from_onnx(arg), arg
    return mixflow.Trainer.resume(arg).ema_model(), arg


def main():
    base_arg = (sys.argv[1] if sys.argv[1] != "-" else None) if len(sys.argv) > 1 else str(SHIPPED_BASE)
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    try:
        x, y = mixflow.fashion_mnist("train")
    except FileNotFoundError as e:
        print(f"skipped: {e}")
        sys.exit(77)
    x = x[:, None]                                                  # [N, 1, 28, 28] in [-1, 1]
    model, source = load_base(base_arg)
    print(f"Fashion-MNIST {x.shape}; model {model.num_params:,} parameters ({source})")

    net = mixflow.FeatureNet()
    reference = mixflow.load_reference_stats()[:2]
    noise = np.random.default_rng(1234).standard_normal((EVAL, 1, 28, 28)).astype(np.float32)
    labels = np.arange(EVAL) % 10

    def fd(m):
        sampler = mixflow.Sampler(method="euler", steps=20, null_class=10)
        images = sampler.sample_model(m, noise, y=labels).x
        images = mixflow.to_uint8(images).astype(np.float32) / 127.5 - 1     # the uint8 round trip of real images
        return mixflow.frechet_distance(net.features(images.reshape(EVAL, -1)), reference)

    # gamma from the base model's Slow Flow (nearest-data definition, 95 % coverage; docs/slow-flow.md).
    sf = mixflow.slow_flow(lambda a, t, yy: model.forward(a, t, yy), noise[:64], steps=20, method="euler",
                           reference="nearest_data", data=x[:2000], y=labels[:64], null_class=10)
    # A model trained for 30 steps from scratch has no meaningful Slow Flow: use the SiT default there.
    gamma = mixflow.suggest_gamma(sf, coverage=0.95) if base_arg else 0.8
    print(f"FD before: {fd(model):.2f}; gamma = {gamma:.3f}")

    trainer = mixflow.Trainer(model, mixflow.Transport.preset("sit", gamma=gamma), lr=1e-4 if base_arg else 1e-3,
                              ema=0.9)
    rng = np.random.default_rng(0)
    for step in range(steps):
        idx = rng.integers(0, len(x), 32)
        loss = trainer.step(x[idx], y[idx])
        if step % 10 == 0 or step == steps - 1:
            print(f"step {step:3d}  MixFlow loss {loss:.4f}")
    ema = trainer.ema_model()
    print(f"FD after: {fd(ema):.2f} (same noise and labels)")
    if base_arg == str(SHIPPED_BASE):
        print("expected: on the shipped base MixFlow makes the FD worse, not better (results/fmnist/README.md)")
    out = Path(tempfile.mkdtemp()) / "posttrained.onnx"
    ema.save_onnx(out, step=steps)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
