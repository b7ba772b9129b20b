"""Locating and loading libmixflow.so, and one typed stub per function of include/mixflow.h.

The library is looked up, in order: the MIXFLOW_LIBRARY environment variable, next to this package, and the
SwiftPM build folders of the source tree (release first). The error lists every path tried.
Stubs follow the header's order; tests/test_header_parity.py fails when a header function has no stub or
its arity differs.
"""
import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_uint32, c_uint64, c_void_p
from pathlib import Path

from . import _types as T

_HERE = Path(__file__).resolve().parent
_LIBNAME = "libmixflow.so"


def _candidates() -> list[Path]:
    paths = []
    env = os.environ.get("MIXFLOW_LIBRARY")
    if env:
        paths.append(Path(env))
    paths.append(_HERE / _LIBNAME)
    root = _HERE.parent.parent.parent  # bindings/python/mixflow -> repository root
    for config in ("release", "debug"):
        paths.append(root / ".build" / config / _LIBNAME)
    return paths


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        tried.append(str(path))
        if path.is_file():
            # CDLL (not PyDLL): the GIL is released during calls, and callbacks re-take it.
            return ctypes.CDLL(str(path))
    raise OSError("libmixflow.so not found; set MIXFLOW_LIBRARY or build with `swift build -c release`. Tried:\n  "
                  + "\n  ".join(tried))


lib = _load()
_STUBS: dict[str, tuple[list, object]] = {}


def _api(name: str, argtypes: list, restype):
    """Declares the C signature of `name` and records it for the header-parity test."""
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = restype
    _STUBS[name] = (argtypes, restype)
    globals()[name] = fn
    return fn


FP = POINTER(c_float)
TR = POINTER(T.TransportHandle)

# ---- version and errors --------------------------------------------------------------------------------
_api("mixflow_abi_version", [], c_uint32)
# ---- data and evaluation (header order) -----------------------------------------------------------------
DP = POINTER(c_double)
I32P = POINTER(c_int32)
I64P = POINTER(c_int64)
IDX = POINTER(T.IdxHandle)
NET = POINTER(T.FeatnetHandle)
_api("mixflow_featnet_accuracy", [NET, FP, I32P, c_int64, c_int64, DP], c_int)
_api("mixflow_featnet_classify", [NET, FP, c_int64, c_int64, FP, I32P], c_int)
_api("mixflow_featnet_features", [NET, FP, c_int64, c_int64, FP], c_int)
_api("mixflow_featnet_free", [NET], None)
_api("mixflow_featnet_info", [NET, I64P, I64P, I64P], c_int)
_api("mixflow_featnet_load", [c_char_p, POINTER(NET)], c_int)
_api("mixflow_feature_stats_compute", [FP, c_int64, c_int64, DP, DP], c_int)
_api("mixflow_feature_stats_load", [c_char_p, c_int64, DP, DP, I64P], c_int)
_api("mixflow_frechet_distance_compute", [FP, c_int64, FP, c_int64, c_int64, DP], c_int)
_api("mixflow_frechet_distance_from_stats", [DP, DP, DP, DP, c_int64, DP], c_int)
_api("mixflow_idx_free", [IDX], None)
_api("mixflow_idx_info", [IDX, POINTER(c_int), POINTER(c_int32), I64P, c_int32], c_int)
_api("mixflow_idx_load", [c_char_p, POINTER(IDX)], c_int)
_api("mixflow_idx_read_f32", [IDX, c_int, FP, c_int64], c_int)
_api("mixflow_idx_read_i32", [IDX, I32P, c_int64], c_int)
_api("mixflow_idx_read_raw", [IDX, c_void_p, c_int64], c_int)
_api("mixflow_kid_compute", [FP, c_int64, FP, c_int64, c_int64, c_int64, c_int64, c_uint64, DP, DP, DP], c_int)
# ---- version and errors (cont.) -------------------------------------------------------------------------
_api("mixflow_last_error", [], c_char_p)
_api("mixflow_status_name", [c_int], c_char_p)
# ---- transport ------------------------------------------------------------------------------------------
_api("mixflow_transport_create", [POINTER(T.TransportParams), POINTER(TR)], c_int)
_api("mixflow_transport_default_params", [POINTER(T.TransportParams), c_uint32], c_int)
_api("mixflow_transport_free", [TR], None)
_api("mixflow_transport_get_params", [TR, POINTER(T.TransportParams), c_uint32], c_int)
_api("mixflow_transport_loss", [TR, FP, FP, FP, FP, c_int64, c_int64, FP, FP, FP], c_int)
_api("mixflow_transport_prepare", [TR, FP, c_int64, c_int64, c_uint64, c_uint64, c_uint64, FP, FP, FP, FP, FP], c_int)
_api("mixflow_transport_preset_params", [c_char_p, c_int64, POINTER(T.TransportParams), c_uint32], c_int)
_api("mixflow_transport_training_interval", [TR, POINTER(c_double), POINTER(c_double)], c_int)
_api("mixflow_version", [], c_char_p)
_api("mixflow_version_number", [], c_uint32)


def check(status: int) -> None:
    """Raises the exception of a non-zero status with the thread's last-error message."""
    if status != 0:
        from .errors import for_status
        message = lib.mixflow_last_error().decode("utf-8", "replace")
        raise for_status(status)(message, status)


def fptr(a) -> "ctypes._Pointer | None":
    """A float* to a C-contiguous float32 numpy array (None passes NULL)."""
    if a is None:
        return None
    return a.ctypes.data_as(FP)

