"""libmixflow: MixFlow post-training and sampling for flow-matching image models (ctypes binding).

numpy in, numpy out; float32 C-contiguous arrays are passed without copies.

The shared library is loaded on first use of a class that needs it (not at import), so pure-Python
tools such as ``python -m mixflow.convert`` work without a built libmixflow.so.
"""
import importlib

# The binding's version, equal to the library's MIXFLOW_VERSION_STRING (tests/test_packaging.py checks both).
__version__ = "0.1.0"

from ._types import ABI_VERSION
from .errors import (AbiMismatch, CallbackError, Cancelled, FormatError, InternalError, InvalidArgument,
                     InvalidHandle, IOFailure, MixflowError, OutOfMemory, Unsupported)

# public name -> submodule that defines it (imported lazily)
_LAZY = {
    "Transport": "transport", "Batch": "transport",
    "Model": "model",
    "Trainer": "trainer",
    "TensorFile": "tensorfile", "write_tensor_file": "tensorfile",
    "Sampler": "sampler", "SampleResult": "sampler", "sample": "sampler", "save_npz": "sampler", "to_uint8": "sampler",
    "equal_labels": "sampler", "save_png": "sampler", "pixel_shuffle": "sampler", "pixel_unshuffle": "sampler",
    "SlowFlow": "slowflow", "slow_flow": "slowflow", "slow_flow_measure": "slowflow", "suggest_gamma": "slowflow", "slow_flow_lag": "slowflow", "slow_flow_outlook": "slowflow",
    "slow_flow_outlook_rule": "slowflow",
    # ---- data and evaluation ----
    "load_idx": "data", "fashion_mnist": "data",
    "FeatureNet": "metrics", "feature_stats": "metrics", "frechet_distance": "metrics", "kid": "metrics",
    "load_reference_stats": "metrics",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mixflow' has no attribute {name!r}")


def blas_info() -> dict:
    """What libmixflow computes with in this process (``mixflow_blas_info()``): ``cpu``, ``gemm`` (libmixflow's
    own GEMM and its instruction-set path), ``gemm paths``, ``threads``, ``openblas`` (float64 metrics only) and
    the builds of the other kernels, as {key: value} strings."""
    from . import _lib
    text = _lib.lib.mixflow_blas_info().decode()
    return dict(line.split(": ", 1) for line in text.splitlines())


__all__ = sorted(_LAZY) + ["MixflowError", "InvalidArgument", "InvalidHandle", "OutOfMemory", "IOFailure",
                           "FormatError", "Unsupported", "CallbackError", "Cancelled", "AbiMismatch",
                           "InternalError", "ABI_VERSION", "__version__", "blas_info"]
