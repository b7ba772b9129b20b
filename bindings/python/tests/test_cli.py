"""The `mixflow` command line: sample (PNG grid + ADM .npz) and slowflow on a trainer checkpoint."""
import csv
import io
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

import mixflow

ROOT = Path(__file__).resolve().parents[3]
CLI = ROOT / ".build" / "release" / "mixflow-cli"
pytestmark = pytest.mark.skipif(not CLI.exists(), reason="build with `swift build -c release` first")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    m = mixflow.Model.create(None, depth=2, hidden=32, heads=4, patch=4, input_size=8, in_channels=1,
                             num_classes=3, learn_sigma=False)
    tr = mixflow.Trainer(m, mixflow.Transport(gamma=0.0, time_dist="uniform"), lr=1e-3, ema=0.5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        tr.step(rng.standard_normal((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 8))
    path = tmp_path_factory.mktemp("cli") / "ckpt.mixflow"
    tr.save(path)
    return path


def read_png(path):
    """A minimal independent PNG decoder (8-bit grey, filter 0) using Python's zlib."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 0)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, width + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:]


def test_sample_writes_consistent_npz_and_png(checkpoint, tmp_path):
    npz, png = tmp_path / "s.npz", tmp_path / "g.png"
    r = subprocess.run([CLI, "sample", "--checkpoint", checkpoint, "--n", "5", "--steps", "10", "--method", "euler",
                        "--npz", npz, "--grid", png], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    images = np.load(npz)["arr_0"]
    assert images.shape == (5, 8, 8, 1) and images.dtype == np.uint8
    grid = read_png(png)
    assert grid.shape == (2 + 10, 2 + 5 * 10)
    for k in range(5):     # image k sits at column 2 + 10k, row 2
        assert np.array_equal(grid[2:10, 2 + 10 * k:10 + 10 * k], images[k, :, :, 0])


def test_slowflow_reports_statistics_and_gamma(checkpoint, tmp_path):
    out = tmp_path / "sf.csv"
    r = subprocess.run([CLI, "slowflow", "--checkpoint", checkpoint, "--n", "16", "--steps", "8", "--method", "euler",
                        "--csv", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 8 and float(rows[-1]["t"]) == 1.0
    gamma = float(r.stdout.strip().splitlines()[-1].split(":")[-1])
    assert 0.0 <= gamma <= 1.0


def test_bad_arguments_fail_cleanly(checkpoint, tmp_path):
    r = subprocess.run([CLI, "sample", "--checkpoint", checkpoint, "--method", "leapfrog"], capture_output=True, text=True)
    assert r.returncode != 0 and "--method must be one of" in r.stderr
    bad = tmp_path / "bad.mixflow"
    bad.write_bytes(b"not a checkpoint")
    r = subprocess.run([CLI, "sample", "--checkpoint", bad, "--npz", tmp_path / "x.npz"], capture_output=True, text=True)
    assert r.returncode != 0 and "bad magic" in r.stderr


def write_idx(path, array):
    import gzip
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_posttrain_runs_end_to_end_on_a_tiny_model(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (64, 28, 28)))
    write_idx(data / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 64))
    m = mixflow.Model.create(None, depth=1, hidden=32, heads=2, patch=7, input_size=28, in_channels=1,
                             num_classes=10, learn_sigma=False)
    tr = mixflow.Trainer(m, mixflow.Transport(gamma=0.0, time_dist="uniform"), lr=1e-3, ema=0.5)
    tr.step(rng.standard_normal((4, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 4))
    tr.save(tmp_path / "base.mixflow")
    out = tmp_path / "out"
    args = [CLI, "posttrain", "--base", tmp_path / "base.mixflow", "--data", data, "--featnet", ROOT / "share" / "featnet",
            "--out", out, "--steps", "3", "--batch", "4", "--eval-samples", "12", "--eval-steps", "3",
            "--eval-methods", "euler"]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("lower is better.")[1].split("\nwrote")[0]
    assert all(name in table for name in ("base", "standard", "mixflow"))
    for f in ("mixflow.onnx", "mixflow-samples.png", "slowflow.csv", "standard.mixflow", "mixflow.mixflow"):
        assert (out / f).exists(), f
    # The post-trained ONNX is a runnable model: it loads natively.
    assert mixflow.Model.from_onnx(out / "mixflow.onnx").num_params == m.num_params
    # Rerunning resumes from the checkpoints (no further steps) and reproduces the table.
    r2 = subprocess.run(args, capture_output=True, text=True)
    assert r2.returncode == 0 and r2.stdout.split("lower is better.")[1].split("\nwrote")[0] == table
