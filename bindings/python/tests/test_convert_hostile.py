"""python -m mixflow.convert on hostile and damaged inputs: every one ends in the converter's one-line error
(exit 2), refused early and with bounded memory; and the ONNX it writes is one save even when killed."""
import io
import os
import resource
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mixflow import convert, torchfile
from mixflow.torchfile import CheckpointFormatError

FIX = Path(__file__).parent / "fixtures" / "torch"
ROOT = Path(__file__).resolve().parents[3]


def run_convert(src, dst, limit_mb=None):
    """python -m mixflow.convert in a child (optionally under an address-space limit): (exit, stderr, seconds)."""
    pre = None
    if limit_mb:
        def pre():
            resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "mixflow.convert", str(src), str(dst)], capture_output=True, text=True,
                       preexec_fn=pre, cwd=ROOT / "bindings" / "python")
    return r.returncode, r.stderr, time.monotonic() - t0


def one_line_error(code, stderr):
    return code == 2 and stderr.startswith("mixflow.convert: error:") and stderr.count("\n") == 1


def test_a_huge_pickle_memo_index_is_refused_fast_with_small_memory(tmp_path):
    """A 2 KB .pt whose pickle says LONG_BINPUT 374869873: pickle's memo would grow to 3 GB first."""
    pkl = b"\x80\x02}q\x00" + b"r" + struct.pack("<I", 374869873) + b"X\x01\x00\x00\x00a" + b"K\x01s." + bytes(1900)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pkl)
    (tmp_path / "bomb.pt").write_bytes(buf.getvalue())
    code, err, seconds = run_convert(tmp_path / "bomb.pt", tmp_path / "x.onnx", limit_mb=1024)
    assert one_line_error(code, err) and "memo index 374869873" in err, err
    assert seconds < 10


def test_an_npz_bomb_is_refused_before_inflating(tmp_path):
    """1 MiB of zip expanding to 1 GiB of zeros."""
    buf = io.BytesIO()
    np.savez_compressed(buf, w=np.zeros(1 << 28, np.float32))
    (tmp_path / "bomb.npz").write_bytes(buf.getvalue())
    assert len(buf.getvalue()) < 2 << 20
    code, err, seconds = run_convert(tmp_path / "bomb.npz", tmp_path / "x.onnx", limit_mb=1024)
    assert one_line_error(code, err) and "decompression bomb" in err, err
    assert seconds < 10


def test_an_npz_member_longer_than_its_header_says_is_refused(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.ones(4, np.float32))
    with zipfile.ZipFile(tmp_path / "x.npz", "w") as z:
        z.writestr("w.npy", buf.getvalue() + bytes(64))
    with pytest.raises(CheckpointFormatError, match="needs"):
        torchfile.read_tensors(tmp_path / "x.npz")


def test_a_deeply_nested_safetensors_header_is_refused(tmp_path):
    text = b"[" * 100000 + b"]" * 100000
    (tmp_path / "deep.safetensors").write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(CheckpointFormatError, match="nests deeper"):
        torchfile.read_safetensors(tmp_path / "deep.safetensors")


@pytest.mark.parametrize("damage", ["crc", "deflate", "method", "utf8-header"])
def test_damaged_files_end_in_the_converters_error(tmp_path, damage):
    if damage == "utf8-header":
        text = b'{"\xff": 1}'
        (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", len(text)) + text)
        src = tmp_path / "x.safetensors"
    else:
        buf = io.BytesIO()
        np.savez_compressed(buf, w=np.arange(1000, dtype=np.float32))
        raw = bytearray(buf.getvalue())
        name_len, extra_len = struct.unpack("<HH", raw[26:30])
        data = 30 + name_len + extra_len              # the member's deflate stream
        central = raw.rfind(b"PK\x01\x02")
        if damage == "crc":
            raw[data + 200] ^= 1                      # inside the deflate stream: a CRC or inflate error
        elif damage == "deflate":
            raw[data:data + 8] = b"\xff" * 8          # an invalid block type: zlib.error
        else:
            raw[central + 10:central + 12] = struct.pack("<H", 99)  # an unknown compression method
        src = tmp_path / "x.npz"
        src.write_bytes(bytes(raw))
    code, err, _ = run_convert(src, tmp_path / "y.onnx")
    assert one_line_error(code, err), err
    assert "Traceback" not in err


def test_a_converted_model_with_another_conversions_data_file_is_refused(tmp_path):
    """The converter writes ONNX through libmixflow: the model and its data file carry one save id."""
    for name, value in (("a", 1.0), ("b", 2.0)):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "w.npz", w=np.full(256, value, np.float32))
        convert.convert(tmp_path / name / "w.npz", tmp_path / name / "m.onnx", external_threshold=64)
    (tmp_path / "a" / "m.onnx.data").write_bytes((tmp_path / "b" / "m.onnx.data").read_bytes())
    code, err, _ = run_convert(tmp_path / "a" / "m.onnx", tmp_path / "a" / "back.npz")
    assert one_line_error(code, err) and "another save" in err, err


def test_encrypted_members_and_names_with_newlines_end_in_one_line(tmp_path):
    """Two classes the converter fuzzer found: zipfile's RuntimeError for an encrypted member (of a .pt or an
    .npz), and messages quoting a member name that holds a newline."""
    buf = io.BytesIO()
    np.savez(buf, w=np.ones(4, np.float32))
    raw = bytearray(buf.getvalue())
    central = raw.rfind(b"PK\x01\x02")
    raw[6] |= 1                                   # general purpose flag bit 0: encrypted (local header)
    raw[central + 8] |= 1                         # and in the central directory
    (tmp_path / "enc.npz").write_bytes(bytes(raw))
    code, err, _ = run_convert(tmp_path / "enc.npz", tmp_path / "x.onnx")
    assert one_line_error(code, err) and "encrypted" in err, err
    npy = io.BytesIO()
    np.save(npy, np.ones(4, np.float32))
    with zipfile.ZipFile(tmp_path / "nl.npz", "w") as z:
        z.writestr("w\nsecond line.npy", npy.getvalue() + bytes(8))
    code, err, _ = run_convert(tmp_path / "nl.npz", tmp_path / "x.onnx")
    assert one_line_error(code, err), err


def test_the_converters_own_writes_leave_no_temporaries(tmp_path):
    """safetensors and npz outputs go through torchfile._atomic: an unnamed file while writing (nothing for a
    kill to leave behind), and the temporaries of dead processes (named ones, where O_TMPFILE is missing)
    are removed by the next save of the same file."""
    dead = 2 ** 22 + 12345  # above pid_max's default: no such process
    (tmp_path / (".w.safetensors.tmp-%d-1" % dead)).write_bytes(b"stale")
    (tmp_path / (".w.safetensors.tmp-%d-1" % os.getpid())).write_bytes(b"live")
    with torchfile._atomic(tmp_path / "w.safetensors") as f:
        f.write(b"partial")
        assert sorted(os.listdir(tmp_path)) == [".w.safetensors.tmp-%d-1" % os.getpid()]
    assert sorted(os.listdir(tmp_path)) == [".w.safetensors.tmp-%d-1" % os.getpid(), "w.safetensors"]
    assert (tmp_path / "w.safetensors").read_bytes() == b"partial"
