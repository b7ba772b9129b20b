"""The C API's ONNX tensor files against pip onnx (the independent reference): files libmixflow writes must
load in onnx (checker included) with the same values, and files onnx writes must read back identically
through libmixflow. Uses ctypes directly on libmixflow.so (a private CDLL handle, so the package's declared
stubs are untouched)."""
import ctypes
from ctypes import POINTER, byref, c_char_p, c_float, c_int, c_int32, c_int64, c_size_t, c_void_p

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mixflow import _lib  # noqa: E402

L = ctypes.CDLL(_lib.lib._name)
FP = POINTER(c_float)
for name, args, res in [
    ("mixflow_tensor_file_load", [c_char_p, POINTER(c_void_p)], c_int),
    ("mixflow_tensor_file_free", [c_void_p], None),
    ("mixflow_tensor_file_num_tensors", [c_void_p], c_int64),
    ("mixflow_tensor_file_tensor_name", [c_void_p, c_int64, c_char_p, c_size_t, POINTER(c_size_t)], c_int),
    ("mixflow_tensor_file_tensor_info", [c_void_p, c_int64, POINTER(c_int32), POINTER(c_int32), POINTER(c_int64),
                                         c_int32, POINTER(c_int64), POINTER(c_int32)], c_int),
    ("mixflow_tensor_file_read", [c_void_p, c_char_p, FP, c_int64], c_int),
    ("mixflow_tensor_file_metadata", [c_void_p, c_char_p, c_char_p, c_size_t, POINTER(c_size_t)], c_int),
    ("mixflow_tensor_writer_create", [c_char_p, c_int64, POINTER(c_void_p)], c_int),
    ("mixflow_tensor_writer_add", [c_void_p, c_char_p, FP, POINTER(c_int64), c_int32], c_int),
    ("mixflow_tensor_writer_set_metadata", [c_void_p, c_char_p, c_char_p], c_int),
    ("mixflow_tensor_writer_finish", [c_void_p], c_int),
    ("mixflow_tensor_writer_free", [c_void_p], None),
    ("mixflow_last_error", [], c_char_p),
]:
    getattr(L, name).argtypes, getattr(L, name).restype = args, res


def ok(status):
    assert status == 0, L.mixflow_last_error().decode()


def write(path, tensors, metadata, threshold):
    w = c_void_p()
    ok(L.mixflow_tensor_writer_create(str(path).encode(), threshold, byref(w)))
    try:
        for name, a in tensors.items():
            a = np.require(a, np.float32, "C")  # (np.ascontiguousarray would turn a scalar into shape [1])
            shape = (c_int64 * max(a.ndim, 1))(*a.shape)
            ok(L.mixflow_tensor_writer_add(w, name.encode(), a.ctypes.data_as(FP), shape, a.ndim))
        for k, v in metadata.items():
            ok(L.mixflow_tensor_writer_set_metadata(w, k.encode(), v.encode()))
        ok(L.mixflow_tensor_writer_finish(w))
    finally:
        L.mixflow_tensor_writer_free(w)


def read_all(path):
    f = c_void_p()
    ok(L.mixflow_tensor_file_load(str(path).encode(), byref(f)))
    try:
        out = {}
        for i in range(L.mixflow_tensor_file_num_tensors(f)):
            n = c_size_t()
            ok(L.mixflow_tensor_file_tensor_name(f, i, None, 0, byref(n)))
            buf = ctypes.create_string_buffer(n.value + 1)
            ok(L.mixflow_tensor_file_tensor_name(f, i, buf, n.value + 1, byref(n)))
            ndim, count = c_int32(), c_int64()
            dims = (c_int64 * 16)()
            ok(L.mixflow_tensor_file_tensor_info(f, i, None, byref(ndim), dims, 16, byref(count), None))
            a = np.empty(count.value, np.float32)
            ok(L.mixflow_tensor_file_read(f, buf.value, a.ctypes.data_as(FP), count.value))
            out[buf.value.decode()] = a.reshape([dims[k] for k in range(ndim.value)])
        return out
    finally:
        L.mixflow_tensor_file_free(f)


def same(a, b):
    """Bitwise equality of float32 arrays with every NaN treated as equal."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("threshold", [-1, 0, 256])
def test_files_written_by_libmixflow_load_in_onnx(tmp_path, threshold):
    rng = np.random.default_rng(threshold + 2)
    tensors = {
        "pos_embed": rng.standard_normal((1, 16, 8)).astype(np.float32),
        "x_embedder.proj.weight": rng.standard_normal((8, 4, 2, 2)).astype(np.float32),
        "x_embedder.proj.bias": rng.standard_normal(8).astype(np.float32),
        "special": np.array([np.nan, np.inf, -0.0, 1e-45], np.float32),
        "scalar": np.array(3.5, np.float32),
    }
    path = tmp_path / "ckpt.onnx"
    write(path, tensors, {"mixflow.arch": "SiT-S/2", "mixflow.gamma": "0.8"}, threshold)
    onnx.checker.check_model(str(path))  # by path, so the checker also validates the external-data file
    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    if threshold >= 0:  # with external data the model records its save id, which ends the data file
        save_id = props.pop("mixflow.save_id")
        assert (tmp_path / "ckpt.onnx.data").read_bytes()[-32:] == b"mixflow-save-id:" + save_id.encode()
    assert props == {"mixflow.arch": "SiT-S/2", "mixflow.gamma": "0.8"}
    assert [t.name for t in model.graph.initializer] == list(tensors)
    for t in model.graph.initializer:
        external = t.data_location == TensorProto.EXTERNAL
        assert external == (threshold >= 0 and tensors[t.name].nbytes >= threshold), t.name
        assert same(numpy_helper.to_array(t, base_dir=str(tmp_path)), tensors[t.name]), t.name
    assert sorted(p.name for p in tmp_path.iterdir()) == (["ckpt.onnx"] if threshold < 0 else ["ckpt.onnx", "ckpt.onnx.data"])


def test_files_written_by_onnx_read_identically(tmp_path):
    rng = np.random.default_rng(7)
    arrays = {
        "f32": rng.standard_normal((3, 7)).astype(np.float32),
        "f16": rng.standard_normal((5, 2)).astype(np.float16),
        "f64": rng.standard_normal((4,)) * 1e3,
        "i64": np.array([-3, 0, 1 << 40], np.int64),
        "u8": np.array([0, 7, 255], np.uint8),
        "big": rng.standard_normal((64, 33)).astype(np.float32),
    }
    inits = [numpy_helper.from_array(a, n) for n, a in arrays.items()]
    inits.append(helper.make_tensor("typed", TensorProto.FLOAT, [2, 2], [1.5, -2.0, 0.0, 9.0], raw=False))
    model = helper.make_model(helper.make_graph([], "g", [], [], initializer=inits))
    for one_file in (True, False):
        d = tmp_path / ("one" if one_file else "many")
        d.mkdir()
        onnx.save_model(onnx.ModelProto.FromString(model.SerializeToString()), str(d / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=one_file,
                        location="m.onnx.data" if one_file else None, size_threshold=64)
        got = read_all(d / "m.onnx")
        ref = onnx.load(str(d / "m.onnx"))
        assert list(got) == [t.name for t in ref.graph.initializer]
        for t in ref.graph.initializer:
            assert same(got[t.name], numpy_helper.to_array(t).astype(np.float32)), t.name


def test_hostile_location_is_a_format_error(tmp_path):
    t = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "16")):
        e = t.external_data.add()
        e.key, e.value = k, v
    (tmp_path / "m.onnx").write_bytes(helper.make_model(helper.make_graph([], "g", [], [], initializer=[t])).SerializeToString())
    f = c_void_p()
    assert L.mixflow_tensor_file_load(str(tmp_path / "m.onnx").encode(), byref(f)) == 5  # MIXFLOW_ERR_FORMAT
    assert f.value is None
    assert 'contains ".."' in L.mixflow_last_error().decode()


def test_converter_output_loads_through_the_c_api(tmp_path):
    """python -m mixflow.convert's ONNX (its own protobuf encoder) is read by libmixflow like torch wrote it."""
    from pathlib import Path
    from mixflow import convert
    fix = Path(__file__).parent / "fixtures" / "torch"
    expected = np.load(fix / "expected.npz")
    # (not a SiT state dict, so no --arch: that now checks the tensors against the architecture)
    convert.convert(fix / "train_ckpt.pt", tmp_path / "c.onnx", external_threshold=32)
    got = read_all(tmp_path / "c.onnx")
    ref = {k.split("/", 1)[1]: expected[k] for k in expected.files if k.startswith("train_ckpt.pt:ema/")}
    assert list(got) == list(ref)
    for k, v in ref.items():
        assert same(got[k], v), k
    f = c_void_p()
    ok(L.mixflow_tensor_file_load(str(tmp_path / "c.onnx").encode(), byref(f)))
    buf, n = ctypes.create_string_buffer(32), c_size_t()
    ok(L.mixflow_tensor_file_metadata(f, b"mixflow.source_key", buf, 32, byref(n)))
    L.mixflow_tensor_file_free(f)
    assert buf.value == b"ema"
