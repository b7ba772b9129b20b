"""MixFlow training maths from Python through ctypes, with the model living in the caller (numpy).

A stand-in velocity model v(x, t) = a * x + b (one a, b per pixel) is trained by gradient descent on
MixFlow batches built from real Fashion-MNIST images when the Debian package is installed, else from
synthetic blobs. libmixflow draws (t, m, x0), builds the slowed input x_m and the target, and returns
d(loss)/d(prediction); we backpropagate it through our own model.
"""
import gzip
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def load_images(n: int) -> np.ndarray:
    if FMNIST.is_file():
        raw = gzip.open(FMNIST, "rb").read()
        images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
        return (images.astype(np.float32) / 127.5 - 1.0)            # [-1, 1], as image flow models use
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:28, 0:28]
    centres = rng.integers(6, 22, size=(n, 2))
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    return (2 * np.exp(-d2 / 20.0) - 1).astype(np.float32)[:, None]


def main() -> None:
    data = load_images(4096)
    print(f"libmixflow {mixflow.__version__}; data {data.shape} from {'Fashion-MNIST' if FMNIST.is_file() else 'synthetic blobs'}")
    tr = mixflow.Transport.preset("sit", gamma=0.8)
    a = np.zeros(data.shape[1:], np.float32)
    b = np.zeros(data.shape[1:], np.float32)
    rng = np.random.default_rng(0)
    losses = []
    for step in range(200):
        x1 = data[rng.integers(0, len(data), 64)]
        batch = tr.prepare(x1, seed=0, step=step)
        pred = a * batch.x_in + b
        loss, _, grad = tr.loss(pred, batch)
        a -= 0.5 * grad.size / 64 * (grad * batch.x_in).mean(0)
        b -= 0.5 * grad.size / 64 * grad.mean(0)
        losses.append(loss)
        if step % 50 == 0:
            print(f"step {step:3d}  loss {loss:.4f}")
    print(f"loss {np.mean(losses[:10]):.4f} -> {np.mean(losses[-10:]):.4f}")
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


if __name__ == "__main__":
    main()
