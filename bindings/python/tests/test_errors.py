"""Bad input through Python and through the raw C functions: a status and a clear message, never a crash."""
import ctypes

import numpy as np
import pytest

import mixflow
from mixflow import _lib, _types as T
from mixflow._lib import lib


def last_error() -> str:
    return lib.mixflow_last_error().decode()


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(gamma=1.7), "params->gamma must be in [0, 1], got 1.7"),
    (dict(gamma=-0.1), "gamma must be in [0, 1]"),
    (dict(gamma=float("nan")), "gamma must be in [0, 1], got nan"),
    (dict(time_shift=0.5), "time_shift must be >= 1"),
    (dict(train_eps=0.7), "train_eps must be -1"),
    (dict(input_perturbation=-1.0), "input_perturbation must be >= 0"),
    (dict(logit_normal_std=0.0), "logit_normal_std must be > 0"),
    (dict(num_threads=-2), "num_threads must be >= 0"),
])
def test_invalid_params_raise_with_message(kwargs, fragment):
    with pytest.raises(mixflow.InvalidArgument) as e:
        mixflow.Transport(**kwargs)
    assert "mixflow_transport_create" in str(e.value) and fragment in str(e.value)
    assert e.value.status == T.Status.ERR_INVALID_ARGUMENT


def test_unknown_names_are_rejected_in_python():
    with pytest.raises(ValueError, match="path must be one of"):
        mixflow.Transport(path="cosine")
    with pytest.raises(mixflow.InvalidArgument, match="preset must be"):
        mixflow.Transport.preset("dit")
    with pytest.raises(TypeError, match="unknown transport option"):
        mixflow.Transport.preset("sit", gama=0.3)


def params():
    p = T.TransportParams()
    assert lib.mixflow_transport_default_params(ctypes.byref(p), ctypes.sizeof(p)) == 0
    return p


@pytest.mark.parametrize("field,value,name", [("path", 3, "params->path"), ("convention", -1, "params->convention"),
                                              ("prediction", 99, "params->prediction"),
                                              ("loss_weight", 7, "params->loss_weight"),
                                              ("time_dist", 3, "params->time_dist"),
                                              ("target_time", 2, "params->target_time")])
def test_unknown_enum_values_are_rejected(field, value, name):
    p = params()
    setattr(p, field, value)
    h = _lib.TR()
    assert lib.mixflow_transport_create(ctypes.byref(p), ctypes.byref(h)) == T.Status.ERR_INVALID_ARGUMENT
    assert f"{name} has unknown value {value}" in last_error()
    assert not h  # *out is NULL on failure


def test_struct_size_checks():
    p = params()
    h = _lib.TR()
    p.struct_size = ctypes.sizeof(p) + 8
    assert lib.mixflow_transport_create(ctypes.byref(p), ctypes.byref(h)) == T.Status.ERR_ABI_MISMATCH
    assert "newer mixflow.h" in last_error()
    p.struct_size = 12
    assert lib.mixflow_transport_create(ctypes.byref(p), ctypes.byref(h)) == T.Status.ERR_INVALID_ARGUMENT
    assert "struct_size must be between" in last_error()
    assert lib.mixflow_transport_default_params(ctypes.byref(p), 1000) == T.Status.ERR_ABI_MISMATCH
    assert lib.mixflow_transport_default_params(None, ctypes.sizeof(p)) == T.Status.ERR_INVALID_ARGUMENT
    assert "out must not be NULL" in last_error()


def test_null_pointers_and_sizes_through_the_c_api():
    tr = mixflow.Transport()
    h = tr._handle
    x = np.zeros((2, 8), np.float32)
    outs = [np.empty_like(x), np.empty(2, np.float32), np.empty(2, np.float32), np.empty_like(x), np.empty_like(x)]
    f = _lib.fptr
    args = [h, f(x), 2, 8, 0, 0, 0] + [f(o) for o in outs]
    assert lib.mixflow_transport_prepare(*args) == 0 and last_error() == ""
    for index, name in [(0, "transport"), (1, "x1"), (7, "out_x_in"), (8, "out_t"), (11, "out_target")]:
        bad = list(args)
        bad[index] = None
        assert lib.mixflow_transport_prepare(*bad) == T.Status.ERR_INVALID_ARGUMENT
        assert f"{name} must not be NULL" in last_error()
    # Optional outputs may be NULL.
    ok = list(args)
    ok[9] = None
    ok[10] = None
    assert lib.mixflow_transport_prepare(*ok) == 0
    for index, value, fragment in [(2, 0, "batch must be > 0, got 0"), (3, -5, "dim must be > 0, got -5"),
                                   (2, 2 ** 62, "overflows"), (5, 2 ** 61, "step must be < 2^60"),
                                   (6, 2 ** 32, "first_sample + batch must be <= 2^32")]:
        bad = list(args)
        bad[index] = value
        assert lib.mixflow_transport_prepare(*bad) == T.Status.ERR_INVALID_ARGUMENT
        assert fragment in last_error(), last_error()


def test_nan_and_inf_inputs_are_rejected():
    tr = mixflow.Transport()
    x = np.zeros((3, 100), np.float32)
    x[1, 37] = np.nan
    with pytest.raises(mixflow.InvalidArgument, match=r"x1\[1, 37\] is nan"):
        tr.prepare(x)
    x[1, 37] = np.inf
    with pytest.raises(mixflow.InvalidArgument, match=r"x1\[1, 37\] is inf"):
        tr.prepare(x)
    b = tr.prepare(np.zeros((3, 100), np.float32))
    pred = np.zeros((3, 100), np.float32)
    pred[2, 99] = -np.inf
    with pytest.raises(mixflow.InvalidArgument, match=r"pred\[2, 99\] is -inf"):
        tr.loss(pred, b)
    b.target[0, 5] = np.nan
    with pytest.raises(mixflow.InvalidArgument, match=r"target\[0, 5\] is nan"):
        tr.loss(np.zeros((3, 100), np.float32), b)


def test_wrong_shapes_in_python():
    tr = mixflow.Transport()
    b = tr.prepare(np.zeros((3, 10), np.float32))
    with pytest.raises(ValueError, match="pred has shape"):
        tr.loss(np.zeros((3, 11), np.float32), b)
    with pytest.raises(ValueError, match="batch dimension"):
        tr.prepare(np.float32(1.0))


def test_handle_of_the_wrong_kind_and_closed_handles():
    h = ctypes.cast(ctypes.create_string_buffer(64), _lib.TR)
    t0, t1 = ctypes.c_double(), ctypes.c_double()
    assert lib.mixflow_transport_training_interval(h, ctypes.byref(t0), ctypes.byref(t1)) == T.Status.ERR_INVALID_HANDLE
    assert "is not a live Transport handle" in last_error()
    tr = mixflow.Transport()
    tr.close()
    with pytest.raises(ValueError, match="closed"):
        tr.prepare(np.zeros((1, 4), np.float32))
    lib.mixflow_transport_free(None)   # NULL is a no-op


def test_error_is_cleared_on_success_and_status_names():
    with pytest.raises(mixflow.InvalidArgument):
        mixflow.Transport(gamma=2)
    assert last_error() != ""
    mixflow.Transport()
    assert last_error() == ""
    assert lib.mixflow_status_name(5) == b"MIXFLOW_ERR_FORMAT"
    assert lib.mixflow_status_name(12345) == b"MIXFLOW_ERR_UNKNOWN"


def test_errors_are_per_thread():
    import threading
    with pytest.raises(mixflow.InvalidArgument):
        mixflow.Transport(gamma=2)
    seen = []
    th = threading.Thread(target=lambda: seen.append(last_error()))
    th.start()
    th.join()
    assert seen == [""] and "gamma" in last_error()


def test_missing_library_error_lists_every_path_tried(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    pkg = Path(mixflow.__file__).resolve().parent
    shutil.copytree(pkg, tmp_path / "mixflow", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    env = {"MIXFLOW_LIBRARY": str(tmp_path / "nowhere" / "libmixflow.so"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", "import mixflow; mixflow.Transport"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert "libmixflow.so not found" in r.stderr and str(tmp_path / "nowhere" / "libmixflow.so") in r.stderr
    assert str(tmp_path / "mixflow" / "libmixflow.so") in r.stderr
