"""quickstart.py: post-train the shipped base with MixFlow on Fashion-MNIST, then sample 16 images into a PNG."""
import sys

import numpy as np

import mixflow

try:
    x, y = mixflow.fashion_mnist("train")             # [60000, 28, 28] in [-1, 1]; apt-get install dataset-fashion-mnist
except FileNotFoundError as e:
    print(f"skipped: {e}")
    sys.exit(77)
model = mixflow.Model.from_onnx("models/fmnist-base/base.onnx")
trainer = mixflow.Trainer(model, mixflow.Transport.preset("sit", gamma=0.12), lr=1e-4)   # gamma 0 = standard
rng = np.random.default_rng(0)
for step in range(20):
    i = rng.integers(0, len(x), 32)
    loss = trainer.step(x[i, None], y[i])             # x1 [32, 1, 28, 28] float32, labels [32]
    if step % 5 == 0:
        print(f"step {step:2d}  loss {loss:.4f}")

noise = rng.standard_normal((16, 1, 28, 28), dtype=np.float32)
sampler = mixflow.Sampler(method="heun", steps=20)   # 20 grid points, SiT's grid
samples = sampler.sample_model(trainer.ema_model(), noise, y=np.arange(16) % 10).x
mixflow.save_png("quickstart.png", samples, columns=8)
trainer.save_onnx("quickstart.onnx")                  # EMA weights + a runnable graph (onnxruntime)
print("wrote quickstart.png and quickstart.onnx (after 20 steps the samples look like the base's; see results/fmnist)")
