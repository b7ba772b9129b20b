"""A trainer checkpoint whose metadata describes a model far larger than the weights it holds (a few hundred
bytes of metadata asking for gigabytes) is refused before the model is built."""
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

import mixflow

ROOT = Path(__file__).resolve().parents[3]


def fnv1a_words(b):
    """The checkpoint's checksum (Checkpoint.swift: FNV-1a over 64-bit little-endian words, tail bytewise)."""
    h, prime, mask = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1
    n = len(b) // 8 * 8
    for (w,) in struct.iter_unpack("<Q", b[:n]):
        h = ((h ^ w) * prime) & mask
    for x in b[n:]:
        h = ((h ^ x) * prime) & mask
    return h


def with_metadata(raw, edit):
    """The checkpoint `raw` with its metadata text edited and a valid checksum (what a hostile writer does)."""
    off = 17  # magic (13) + version (4)
    (n,) = struct.unpack_from("<I", raw, off)
    text = edit(raw[off + 4:off + 4 + n].decode())
    body = raw[:off] + struct.pack("<I", len(text)) + text.encode() + raw[off + 4 + n:-8]
    return body + struct.pack("<Q", fnv1a_words(body))


CHILD = """
import resource, sys
sys.path.insert(0, %r)
import mixflow
try:
    mixflow.Trainer.resume(sys.argv[1], num_threads=1)
    print("accepted")
except mixflow.errors.MixflowError as e:
    print(type(e).__name__, str(e))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
""" % str(ROOT / "bindings" / "python")


def test_metadata_asking_for_a_huge_model_is_refused_before_allocating(tmp_path):
    m = mixflow.Model.create(None, depth=1, hidden=16, heads=2, patch=4, input_size=8, in_channels=1, num_classes=3,
                             learn_sigma=False)
    tr = mixflow.Trainer(m, mixflow.Transport(gamma=0.5), lr=1e-3, ema=0.5)
    rng = np.random.default_rng(0)
    tr.step(rng.standard_normal((2, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 2))
    tr.save(tmp_path / "ok.mixflow")
    raw = (tmp_path / "ok.mixflow").read_bytes()
    # 4 blocks of width 4096: ~800 M parameters (3.2 GB, and as much again for each of EMA and moments).
    bomb = with_metadata(raw, lambda t: t.replace("model.hidden=16", "model.hidden=4096")
                         .replace("model.depth=1", "model.depth=4").replace("model.heads=2", "model.heads=16"))
    (tmp_path / "bomb.mixflow").write_bytes(bomb)
    r = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "bomb.mixflow")], capture_output=True, text=True)
    verdict, rss_mb = r.stdout.strip().splitlines()
    assert verdict.startswith("FormatError") and "params section" in verdict, r.stdout + r.stderr
    assert int(rss_mb) < 1000
    # The unedited file still resumes.
    mixflow.Trainer.resume(tmp_path / "ok.mixflow")
