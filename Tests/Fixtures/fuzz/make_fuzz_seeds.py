"""Writes the seed corpora of the checkpoint and IDX fuzzers (scripts/fuzz.sh): trainer checkpoints of a
tiny SiT (with and without EMA) and a tiny DiT^DH through the Python binding, and small IDX files of every
element type, plain and gzip. Run from the repository after `swift build -c release`:
    python3 Tests/Fixtures/fuzz/make_fuzz_seeds.py"""
import gzip
import struct
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402


def checkpoints():
    rng = np.random.default_rng(0)
    for name, model, ema in (
            ("sit", mixflow.Model.create(None, depth=1, hidden=16, heads=2, patch=4, input_size=8, in_channels=1,
                                         num_classes=3, learn_sigma=False), 0.5),
            ("sit-noema", mixflow.Model.create(None, depth=1, hidden=16, heads=2, patch=4, input_size=8, in_channels=1,
                                               num_classes=3, learn_sigma=True), 0.0)):
        tr = mixflow.Trainer(model, mixflow.Transport(gamma=0.5), lr=1e-3, ema=ema)
        tr.step(rng.standard_normal((2, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 2))
        tr.save(HERE / ("%s.mixflow" % name))


def idx(name, array, code):
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    body = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (HERE / name).write_bytes(body)
    (HERE / (name + ".gz")).write_bytes(gzip.compress(body, mtime=0))


if __name__ == "__main__":
    checkpoints()
    rng = np.random.default_rng(1)
    idx("images-u8.idx", rng.integers(0, 256, (3, 4, 4)).astype(np.uint8), 0x08)
    idx("labels-u8.idx", rng.integers(0, 10, 5).astype(np.uint8), 0x08)
    idx("labels-i8.idx", rng.integers(-5, 5, 5).astype(np.int8), 0x09)
    idx("i16.idx", rng.integers(-300, 300, (2, 3)).astype(np.int16), 0x0B)
    idx("i32.idx", rng.integers(-(1 << 20), 1 << 20, 4).astype(np.int32), 0x0C)
    idx("f32.idx", rng.standard_normal((2, 2)).astype(np.float32), 0x0D)
    idx("f64.idx", rng.standard_normal(3), 0x0E)
