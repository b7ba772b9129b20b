"""The torch-free checkpoint reader (mixflow.torchfile) and the converter (mixflow.convert).

References are independent of the code under test: tensors exported by PyTorch itself into expected.npz
(fixtures/torch/make_torch_fixtures.py), pip onnx's numpy_helper for ONNX files, and safetensors bytes built
by hand from the format's specification. torch is never needed at test time."""
import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mixflow import convert, torchfile
from mixflow.torchfile import CheckpointFormatError, UnsafeCheckpointError

FIX = Path(__file__).parent / "fixtures" / "torch"
EXPECTED = np.load(FIX / "expected.npz")
PT_FILES = ["state_dict.pt", "dtypes_views.pt", "train_ckpt.pt", "parameter.pt", "legacy.pt"]


def flatten(obj, prefix="", out=None):
    out = {} if out is None else out
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}/{k}" if prefix else str(k), out)
    return out


@pytest.mark.parametrize("name", PT_FILES)
def test_torch_files_read_like_torch(name):
    got = flatten(torchfile.load(FIX / name))
    keys = [k for k in EXPECTED.files if k.startswith(name + ":")]
    assert keys, "no expected arrays for " + name
    for k in keys:
        a, ref = got[k.split(":", 1)[1]], EXPECTED[k]
        assert a.dtype == ref.dtype and a.shape == ref.shape, k
        assert np.array_equal(a, ref), k
        assert a.flags.c_contiguous and a.flags.writeable, k  # materialised copies, not views of read-only file bytes


def test_training_checkpoint_structure_survives():
    ckpt = torchfile.load(FIX / "train_ckpt.pt")
    assert ckpt["steps"] == 10
    assert isinstance(ckpt["args"], torchfile.Namespace) and ckpt["args"].model == "SiT-XL/2"
    group = ckpt["opt"]["param_groups"][0]
    assert group["lr"] == 1e-4 and tuple(group["betas"]) == (0.9, 0.999)
    assert set(ckpt["opt"]["state"][0]) >= {"exp_avg", "exp_avg_sq", "step"}


def test_malicious_global_is_refused_without_running(tmp_path):
    marker = Path("/tmp/mixflow_pwned_by_fixture")
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.system"):
        torchfile.load(FIX / "malicious.pt")
    opaque = torchfile.load(FIX / "malicious.pt", allow_opaque=True)["payload"]
    assert isinstance(opaque, torchfile.Opaque) and opaque.args == ("touch /tmp/mixflow_pwned_by_fixture",)
    assert not marker.exists()
    assert convert.main([str(FIX / "malicious.pt"), str(tmp_path / "x.onnx")]) == 2
    assert not marker.exists() and not (tmp_path / "x.onnx").exists()


def torch_zip(path, pickled, storages=None):
    """A torch-layout zip (archive/data.pkl + archive/data/<key>) around an arbitrary pickle."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            z.writestr("archive/data/" + key, raw)
    return path


@pytest.mark.parametrize("global_", [b"cos\nsystem\n", b"cbuiltins\neval\n", b"csubprocess\nPopen\n",
                                     b"cbuiltins\ngetattr\n", b"ctorch\nload\n", b"cnumpy\nload\n"])
def test_every_other_global_is_refused(tmp_path, global_):
    pickled = b"(" + global_ + b"(S'echo hi'\ntR."  # protocol 0: GLOBAL then a REDUCE call
    with pytest.raises(UnsafeCheckpointError, match="refusing to load global"):
        torchfile.load(torch_zip(tmp_path / "evil.pt", pickled))


def test_stack_global_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))
    pickled = pickle.dumps({"x": Evil()}, protocol=4)  # STACK_GLOBAL / memoized strings
    with pytest.raises(UnsafeCheckpointError):
        torchfile.load(torch_zip(tmp_path / "evil.pt", pickled))


def rebuild_pickle(offset, size, stride, numel, storage_cls=b"FloatStorage"):
    p = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n" + storage_cls +
         b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu" + pickle.dumps(numel, 2)[2:-1] + b"tQ")
    p += pickle.dumps(offset, 2)[2:-1] + pickle.dumps(tuple(size), 2)[2:-1] + pickle.dumps(tuple(stride), 2)[2:-1]
    return p + b"\x89}tR."


def test_handmade_tensor_pickle_reads(tmp_path):
    raw = np.arange(6, dtype="<f4").tobytes()
    t = torchfile.load(torch_zip(tmp_path / "ok.pt", rebuild_pickle(1, (2, 2), (1, 2), 6), {"0": raw}))
    assert np.array_equal(t, np.array([[1, 3], [2, 4]], np.float32))


@pytest.mark.parametrize("offset,size,stride,numel,nbytes,fragment", [
    (0, (2, 4), (4, 1), 6, 24, "reaches element 7 of a 6-element storage"),
    (5, (2,), (1,), 6, 24, "reaches element 6"),
    (0, (2, 2), (-1, 1), 6, 24, "negative"),
    (-1, (2,), (1,), 6, 24, "negative"),
    (0, (2,), (1,), 6, 20, "holds 20 bytes, 6 elements need 24"),
    (0, (1 << 62, 1 << 62), (1, 1), 6, 24, "reaches element"),
])
def test_hostile_tensor_views_are_format_errors(tmp_path, offset, size, stride, numel, nbytes, fragment):
    path = torch_zip(tmp_path / "bad.pt", rebuild_pickle(offset, size, stride, numel), {"0": bytes(nbytes)})
    with pytest.raises(CheckpointFormatError, match=fragment):
        torchfile.load(path)


def test_truncated_and_corrupt_torch_files_fail_cleanly(tmp_path):
    data = (FIX / "train_ckpt.pt").read_bytes()
    for cut in list(range(0, len(data), 97)) + [len(data) - 1]:
        (tmp_path / "t.pt").write_bytes(data[:cut])
        with pytest.raises(CheckpointFormatError):
            torchfile.load(tmp_path / "t.pt")
    legacy = (FIX / "legacy.pt").read_bytes()
    for cut in range(1, len(legacy), 61):
        (tmp_path / "l.pt").write_bytes(legacy[:cut])
        with pytest.raises((CheckpointFormatError, UnsafeCheckpointError)):
            torchfile.load(tmp_path / "l.pt")
    (tmp_path / "e.pt").write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match="not a torch checkpoint"):
        torchfile.load(tmp_path / "e.pt")
    rng = np.random.default_rng(0)
    for _ in range(200):  # random byte damage inside data.pkl: an error or a value, never another exception
        b = bytearray(zipfile.ZipFile(FIX / "state_dict.pt").read("state_dict/data.pkl"))
        b[rng.integers(len(b))] = rng.integers(256)
        try:
            torchfile.load(torch_zip(tmp_path / "c.pt", bytes(b), {str(i): bytes(4096) for i in range(6)}))
        except (CheckpointFormatError, UnsafeCheckpointError):
            pass


# ---- conversion ------------------------------------------------------------------------------------------
def onnx_arrays(path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper
    m = onnx.load(str(path))
    onnx.checker.check_model(str(path))
    return ({t.name: numpy_helper.to_array(t) for t in m.graph.initializer},
            {p.key: p.value for p in m.metadata_props})


@pytest.mark.parametrize("use,threshold", [(None, 0), ("model", -1), ("ema", 32)])
def test_training_checkpoint_to_onnx(tmp_path, use, threshold):
    dst = tmp_path / "ckpt.onnx"
    args = [str(FIX / "train_ckpt.pt"), str(dst), "--external-threshold", str(threshold)]
    assert convert.main(args + (["--use", use] if use else [])) == 0
    arrays, meta = onnx_arrays(dst)
    key = use or "ema"
    ref = {k.split("/", 1)[1].removeprefix("module."): EXPECTED[k]
           for k in EXPECTED.files if k.startswith("train_ckpt.pt:" + key + "/")}
    assert list(arrays) == list(ref) and all(not k.startswith("module.") for k in arrays)
    for k, v in ref.items():
        assert arrays[k].dtype == np.float32 and np.array_equal(arrays[k], v), k
    assert meta["mixflow.source_key"] == key and meta["mixflow.step"] == "10"
    assert json.loads(meta["mixflow.train_args"])["model"] == "SiT-XL/2"
    assert sorted(os.listdir(tmp_path)) == (["ckpt.onnx"] if threshold < 0 else ["ckpt.onnx", "ckpt.onnx.data"])


def test_round_trips_through_every_format(tmp_path):
    ref = {k.split(":", 1)[1]: EXPECTED[k] for k in EXPECTED.files if k.startswith("dtypes_views.pt:")}
    convert.convert(FIX / "dtypes_views.pt", tmp_path / "a.safetensors")
    convert.convert(tmp_path / "a.safetensors", tmp_path / "b.onnx", external_threshold=16)
    convert.convert(tmp_path / "b.onnx", tmp_path / "c.npz")
    arrays, _ = onnx_arrays(tmp_path / "b.onnx")
    with np.load(tmp_path / "c.npz") as z:
        for k, v in ref.items():
            want = v.astype(np.float32) if v.dtype.kind == "f" else v
            assert np.array_equal(z[k], want) and z[k].dtype == want.dtype, k
            assert np.array_equal(arrays[k], want) and arrays[k].dtype == want.dtype, k
    # libmixflow's reader (what the converter reads ONNX with) gives the same arrays, dtypes included.
    t, m = convert.read_onnx(tmp_path / "b.onnx")
    assert list(t) == list(arrays) and all(np.array_equal(t[k], arrays[k]) and t[k].dtype == arrays[k].dtype for k in arrays)


def test_onnx_reader_matches_onnx_on_onnx_written_files(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper
    inits = [numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(5, 8), "w"),
             helper.make_tensor("typed", onnx.TensorProto.FLOAT, [3], [1.0, -2.0, 0.5], raw=False),
             numpy_helper.from_array(np.array([1, -(1 << 40)], np.int64), "i")]
    model = helper.make_model(helper.make_graph([], "g", [], [], initializer=inits))
    model.metadata_props.add(key="k", value="v")
    onnx.save_model(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="m.bin", size_threshold=64)
    t, meta = convert.read_onnx(tmp_path / "m.onnx")
    assert meta == {"k": "v"} and list(t) == ["w", "typed", "i"]
    for ti in onnx.load(str(tmp_path / "m.onnx")).graph.initializer:
        want = numpy_helper.to_array(ti, base_dir=str(tmp_path))
        assert np.array_equal(t[ti.name], want) and t[ti.name].dtype == want.dtype, ti.name


def safetensors_bytes(header, data):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_safetensors_reads_the_specified_layout(tmp_path):
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([1, 2, 3], dtype="<u2")  # BF16 bit patterns: 1, 2, 3 << 16 as float32
    hdr = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
           "b": {"dtype": "BF16", "shape": [3], "data_offsets": [24, 30]}, "__metadata__": {"format": "pt"}}
    (tmp_path / "x.safetensors").write_bytes(safetensors_bytes(hdr, a.tobytes() + b.tobytes()))
    t, meta = torchfile.read_safetensors(tmp_path / "x.safetensors")
    assert meta == {"format": "pt"} and np.array_equal(t["a"], a)
    assert np.array_equal(t["b"].view(np.uint32), b.astype(np.uint32) << 16)
    torchfile.write_safetensors(tmp_path / "y.safetensors", {"a": a}, {"m": "1"})
    raw = (tmp_path / "y.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0 and json.loads(raw[8:8 + n])["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert raw[8 + n:] == a.tobytes()


@pytest.mark.parametrize("header,data,fragment", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, bytes(8), "outside the 8 data bytes"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "spans 8 bytes"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(8), "has shape"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, bytes(8), "outside"),
    ({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8), "unsupported dtype"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12), "overlap"),
    ({"a": [1, 2]}, bytes(8), "malformed"),
])
def test_hostile_safetensors(tmp_path, header, data, fragment):
    (tmp_path / "h.safetensors").write_bytes(safetensors_bytes(header, data))
    with pytest.raises(CheckpointFormatError, match=fragment):
        torchfile.read_safetensors(tmp_path / "h.safetensors")
    (tmp_path / "n.safetensors").write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    with pytest.raises(CheckpointFormatError, match="exceeds the file"):
        torchfile.read_safetensors(tmp_path / "n.safetensors")


def test_converter_errors_are_clear(tmp_path, capsys):
    assert convert.main([str(FIX / "train_ckpt.pt"), str(tmp_path / "x.txt")]) == 2
    assert "unknown destination format" in capsys.readouterr().err
    (tmp_path / "nested.npz").write_bytes(b"")
    np.savez(tmp_path / "ok.npz", w=np.ones(3))
    assert convert.main([str(tmp_path / "ok.npz"), str(tmp_path / "ok.safetensors")]) == 0
    with pytest.raises(CheckpointFormatError, match="has no 'model' state dict"):
        convert.load_state_dict(FIX / "state_dict.pt", use="model")
    with pytest.raises(CheckpointFormatError, match="not a valid .npz"):
        convert.load_state_dict(tmp_path / "nested.npz")
