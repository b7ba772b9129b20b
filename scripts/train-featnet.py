#!/usr/bin/env python3
"""Trains the Fashion-MNIST feature network of "FD (Fashion-MNIST classifier features)" ONCE and writes the files
libmixflow ships:

  share/featnet/fmnist-cnn.mxfnet         the weights (layout: Sources/MixflowEval/FeatureNet.swift)
  share/featnet/fmnist-test-stats.mxfstat mean/covariance (float64) of its features on the 10k test set
                                          (layout: Sources/MixflowEval/FrechetDistance.swift)
  share/featnet/fmnist-cnn.json           sidecar: sha256 of both files, accuracies, script, versions, data hashes

Network (no BatchNorm, so the native forward is exactly conv/ReLU/max-pool/linear):
  conv3x3(1->32)+ReLU, conv3x3(32->32)+ReLU, maxpool2, conv3x3(32->64)+ReLU, maxpool2,
  flatten (c, y, x) 3136 -> linear 128 + ReLU (THE FEATURES) -> linear 10 (logits).
A convolutional net, not an MLP: an MLP of the same size barely noticed Gaussian pixel noise (FD 0.50 -> 0.51 at
sigma 0.1 in [-1, 1] units), while convolutions see the lost local structure, as the sensitivity check of docs/exactness.md §7.2 shows.
Inputs: the 28x28 image, x / 127.5 - 1 in [-1, 1], the range the generators produce.

Needs the CPU torch wheel: python3 -m venv /tmp/venv-featnet && /tmp/venv-featnet/bin/pip install 'torch<2.14' numpy
(never plain `pip install torch`: it pulls 3 GB of CUDA). Fixed seed, deterministic algorithms, 2 threads; the
result is reproducible on the same machine type and torch version (recorded in the sidecar).
Usage: /tmp/venv-featnet/bin/python scripts/train-featnet.py [--root DIR] [--epochs 4]    (~5-10 min on 2 cores)
"""
import argparse
import gzip
import hashlib
import json
import platform
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "share" / "featnet"
CONVS = [(32, 0), (32, 1), (64, 1)]       # (out_channels, max-pool after)
FCS = [128, 10]
FILES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
         "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def idx(path: Path) -> np.ndarray:
    """Independent numpy IDX reader (docs/exactness.md §7.4): 00 00 08 ndim, big-endian dims, uint8 payload."""
    b = gzip.open(path, "rb").read()
    assert b[0] == 0 and b[1] == 0 and b[2] == 8, path
    nd = b[3]
    shape = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(shape)


def scale(x_u8: np.ndarray) -> torch.Tensor:
    x = x_u8.astype(np.float32) / np.float32(127.5) - np.float32(1)
    return torch.from_numpy(x).reshape(len(x), 1, 28, 28)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        layers, c = [], 1
        for oc, pool in CONVS:
            layers += [nn.Conv2d(c, oc, 3, padding=1), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2))
            c = oc
        self.convs = nn.Sequential(*layers)
        self.fc1 = nn.Linear(c * 7 * 7, FCS[0])
        self.fc2 = nn.Linear(FCS[0], FCS[1])

    def forward(self, x):
        f = torch.relu(self.fc1(self.convs(x).flatten(1)))
        return f, self.fc2(f)


def evaluate(net, x, y, batch=1000):
    feats, correct = [], 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            f, logits = net(x[i:i + batch])
            feats.append(f)
            correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return torch.cat(feats).numpy(), correct / len(x)


def write_net(path: Path, net: Net):
    with open(path, "wb") as f:
        f.write(b"MXFNET02")
        f.write(struct.pack("<4I", 1, 28, 28, len(CONVS)))
        for oc, pool in CONVS:
            f.write(struct.pack("<2I", oc, pool))
        f.write(struct.pack(f"<{1 + len(FCS)}I", len(FCS), *FCS))
        convs = [m for m in net.convs if isinstance(m, nn.Conv2d)]
        for m in convs + [net.fc1, net.fc2]:
            f.write(m.weight.detach().numpy().astype("<f4").tobytes())
            f.write(m.bias.detach().numpy().astype("<f4").tobytes())


def write_stats(path: Path, feats: np.ndarray):
    f64 = feats.astype(np.float64)
    mean, cov = f64.mean(0), np.cov(f64, rowvar=False)
    with open(path, "wb") as f:
        f.write(b"MXFSTAT1")
        f.write(struct.pack("<IIQ", feats.shape[1], 0, feats.shape[0]))
        f.write(np.ascontiguousarray(mean, "<f8").tobytes())
        f.write(np.ascontiguousarray(cov, "<f8").tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    root = Path(args.root)
    data = {k: idx(root / v) for k, v in FILES.items()}
    x_train, y_train = scale(data["train_images"]), torch.from_numpy(data["train_labels"].astype(np.int64))
    x_test, y_test = scale(data["test_images"]), torch.from_numpy(data["test_labels"].astype(np.int64))

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = 128
    steps = args.epochs * (len(x_train) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + np.cos(np.pi * t / steps)))
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        start, total = time.time(), 0.0
        order = torch.randperm(len(x_train), generator=gen)
        for s in range(len(x_train) // batch):
            ids = order[s * batch:(s + 1) * batch]
            _, logits = net(x_train[ids])
            loss = nn.functional.cross_entropy(logits, y_train[ids])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        _, acc = evaluate(net, x_test, y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / (s + 1):.4f}, test accuracy {acc:.4f} "
              f"({time.time() - start:.0f} s)", flush=True)

    test_feats, test_acc = evaluate(net, x_test, y_test)
    _, train_acc = evaluate(net, x_train, y_train)
    print(f"test accuracy {test_acc:.4f}, train accuracy {train_acc:.4f}")
    if test_acc < 0.88:
        sys.exit(f"test accuracy {test_acc:.4f} is below the required 0.88; not writing the weights")

    OUT.mkdir(parents=True, exist_ok=True)
    net_path, stats_path = OUT / "fmnist-cnn.mxfnet", OUT / "fmnist-test-stats.mxfstat"
    write_net(net_path, net)
    write_stats(stats_path, test_feats)
    sidecar = {
        "name": "Fashion-MNIST feature CNN for FD (Fashion-MNIST classifier features), KID and conditional accuracy",
        "weights": {"file": net_path.name, "sha256": sha256(net_path), "bytes": net_path.stat().st_size},
        "reference_stats": {"file": stats_path.name, "sha256": sha256(stats_path), "split": "test", "count": 10000,
                            "features": "128-d fc1 activations after ReLU (torch float32 forward); float64 mean and "
                                        "np.cov(rowvar=False) (divisor n - 1)"},
        "architecture": {"convs": [{"out_channels": oc, "kernel": 3, "padding": 1, "relu": True, "maxpool2": bool(p)}
                                   for oc, p in CONVS],
                         "fcs": FCS, "features": "fc1 output after ReLU (128-d)",
                         "input": "[1, 28, 28], x / 127.5 - 1"},
        "training": {"optimizer": "Adam(lr 1e-3) with cosine decay to 0, no weight decay, no augmentation",
                     "batch": batch, "epochs": args.epochs, "seed": args.seed, "threads": 2,
                     "deterministic_algorithms": True},
        "test_accuracy": round(test_acc, 6), "train_accuracy": round(train_acc, 6),
        "script": "scripts/train-featnet.py",
        "command": "/tmp/venv-featnet/bin/python scripts/train-featnet.py",
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__},
        "data": {"package": "Debian dataset-fashion-mnist", "root": str(root),
                 "sha256": {v: sha256(root / v) for v in FILES.values()}},
    }
    (OUT / "fmnist-cnn.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote {net_path} ({net_path.stat().st_size} bytes), {stats_path}, fmnist-cnn.json")


if __name__ == "__main__":
    main()
