"""Locating and loading libmixflow.so, and one typed stub per function of include/mixflow.h.

The library is looked up, in order: the MIXFLOW_LIBRARY environment variable, next to this package, and the
SwiftPM build folders of the source tree (release first). The error lists every path tried.
Stubs follow the header's order; tests/test_header_parity.py fails when a header function has no stub or
its arity differs.
"""
import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_uint8, c_uint32, c_uint64, c_void_p
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
SA = POINTER(T.SamplerHandle)
DP = POINTER(c_double)

# ---- version and errors --------------------------------------------------------------------------------
_api("mixflow_abi_version", [], c_uint32)
_api("mixflow_last_error", [], c_char_p)
# ---- samplers -------------------------------------------------------------------------------------------
_api("mixflow_sample", [SA, T.MODEL_FN, c_void_p, T.MODEL_FN, c_void_p, FP, c_int64, c_int64, POINTER(c_int32), c_uint64,
                        FP, FP, POINTER(c_int64)], c_int)
_api("mixflow_sampler_create", [POINTER(T.SamplerParams), POINTER(SA)], c_int)
_api("mixflow_sampler_default_params", [POINTER(T.SamplerParams), c_uint32], c_int)
_api("mixflow_sampler_free", [SA], None)
_api("mixflow_sampler_get_params", [SA, POINTER(T.SamplerParams), c_uint32], c_int)
_api("mixflow_sampler_step", [SA, FP, c_int64, FP, c_int64, c_int64, c_uint64, FP], c_int)
_api("mixflow_sampler_timesteps", [SA, DP, c_int64, POINTER(c_int64)], c_int)
# ---- samples and slow flow ------------------------------------------------------------------------------
_api("mixflow_samples_to_uint8", [c_int, FP, c_int64, c_int64, c_int64, c_int64, POINTER(c_uint8)], c_int)
_api("mixflow_samples_write_npz", [c_char_p, POINTER(c_uint8), c_int64, c_int64, c_int64, c_int64], c_int)
_api("mixflow_slow_flow_export", [c_char_p, c_int, c_int, DP, DP, c_int64, c_int64], c_int)
_api("mixflow_slow_flow_measure", [c_int, c_int, c_int, DP, c_int64, FP, FP, c_int64, c_int64, FP, c_int64, DP, DP], c_int)
_api("mixflow_slow_flow_stats", [DP, DP, c_int64, c_int64, DP], c_int)
_api("mixflow_slow_flow_suggest_gamma", [DP, DP, c_int64, c_int64, c_double, DP], c_int)
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

