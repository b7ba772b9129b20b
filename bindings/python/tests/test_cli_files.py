"""The command line's files: output paths (missing folders are created, bad ones refused before any work)
and data files whose declared size is a lie or beyond what the process may allocate."""
import gzip
import os
import resource
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from test_cli import CLI, ROOT, tiny_posttrain_setup

pytestmark = pytest.mark.skipif(not CLI.exists(), reason="build with `swift build -c release` first")


def with_out(args, out):
    args = list(args)
    args[args.index("--out") + 1] = out
    return args


def test_posttrain_creates_missing_output_folders_from_outside_the_repository(tmp_path):
    """The fresh-clone case: --out under folders that do not exist yet, run from a folder that is not the
    repository (the README's first command with tiny settings)."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    args = with_out(tiny_posttrain_setup(tmp_path), "runs/deep/er/posttrain") + ["--steps", "2", "--gamma", "0.1"]
    r = subprocess.run(args, capture_output=True, text=True, cwd=work)
    assert r.returncode == 0, r.stderr
    out = work / "runs" / "deep" / "er" / "posttrain"
    assert {"mixflow.onnx", "standard.mixflow", "mixflow.mixflow", "mixflow-samples.png"} <= set(os.listdir(out))


def test_an_impossible_output_folder_is_refused_before_any_work(tmp_path):
    (tmp_path / "a-file").write_text("x")
    args = with_out(tiny_posttrain_setup(tmp_path), tmp_path / "a-file" / "out") + ["--steps", "2", "--gamma", "0.1"]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode != 0 and "cannot create the output folder" in r.stderr, r.stderr
    assert "base:" not in r.stdout  # nothing was loaded, nothing trained


def test_sample_and_slowflow_create_the_folders_of_their_outputs(tmp_path):
    tiny_posttrain_setup(tmp_path)
    ckpt = tmp_path / "base.mixflow"
    r = subprocess.run([CLI, "sample", "--checkpoint", ckpt, "--n", "2", "--steps", "3", "--grid", tmp_path / "g" / "h" / "s.png",
                        "--npz", tmp_path / "n" / "s.npz"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g" / "h" / "s.png").exists() and (tmp_path / "n" / "s.npz").exists()
    r = subprocess.run([CLI, "slowflow", "--checkpoint", ckpt, "--n", "4", "--steps", "4", "--csv", tmp_path / "c" / "sf.csv"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and (tmp_path / "c" / "sf.csv").exists(), r.stderr


def idx_bomb(path, images, payload):
    """A gzip IDX file declaring `images` 28x28 images whose stream holds only `payload`; its trailer is
    forged to claim the declared size, so only reading the stream tells the truth."""
    header = bytes([0, 0, 8, 3]) + struct.pack(">III", images, 28, 28)
    body = gzip.compress(header + payload, mtime=0)
    declared = len(header) + images * 28 * 28
    path.write_bytes(body[:-4] + struct.pack("<I", declared & 0xFFFFFFFF))


RUN_LIMITED = """
import resource, subprocess, sys
limit = int(sys.argv[1])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
r = subprocess.run(sys.argv[2:], capture_output=True, text=True, preexec_fn=cap)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
print(r.stderr[-2000:])
"""


def run_limited(args, limit_bytes):
    r = subprocess.run([sys.executable, "-c", RUN_LIMITED, str(limit_bytes)] + [str(a) for a in args],
                       capture_output=True, text=True)
    first, _, stderr = r.stdout.partition("\n")
    code, rss_mb = map(int, first.split())
    return code, rss_mb, stderr


@pytest.mark.parametrize("limit_gb", [2, 8])
def test_an_idx_file_declaring_4m_images_is_refused_with_bounded_memory(tmp_path, limit_gb):
    """4M images (3.1 GB, 12.5 GB as float32) declared by a 3 MB file. Under a 2 GB address-space limit the
    declared size is refused before allocating; under 8 GB the stream is read and found short after
    allocating what it holds, not what it claims. Either way: a message and exit 1, never a crash."""
    args = tiny_posttrain_setup(tmp_path) + ["--steps", "1", "--gamma", "0.1"]
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    idx_bomb(data / "train-images-idx3-ubyte.gz", 4_000_000, rng.integers(0, 256, 3_100_000, dtype=np.uint8).tobytes())
    code, rss_mb, stderr = run_limited(args, limit_gb << 30)
    assert code == 1, stderr
    assert ("more than this process may allocate" if limit_gb == 2 else "corrupt gzip data") in stderr, stderr
    assert rss_mb < 1000, rss_mb
