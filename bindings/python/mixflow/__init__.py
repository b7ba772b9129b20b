"""libmixflow: MixFlow post-training and sampling for flow-matching image models (ctypes binding).

numpy in, numpy out; float32 C-contiguous arrays are passed without copies.
"""
from . import _lib
from ._types import ABI_VERSION
from .errors import (AbiMismatch, CallbackError, Cancelled, FormatError, InternalError, InvalidArgument,
                     InvalidHandle, IOFailure, MixflowError, OutOfMemory, Unsupported)
from .transport import Batch, Transport
# ---- data and evaluation ----
from .data import fashion_mnist, load_idx
from .metrics import FeatureNet, feature_stats, frechet_distance, kid, load_reference_stats

__version__ = _lib.lib.mixflow_version().decode()

if _lib.lib.mixflow_abi_version() != ABI_VERSION:
    raise ImportError(f"libmixflow ABI {_lib.lib.mixflow_abi_version()} does not match this binding's ABI "
                      f"{ABI_VERSION}; rebuild the library or reinstall the binding")

__all__ = ["Transport", "Batch", "MixflowError", "InvalidArgument", "InvalidHandle", "OutOfMemory", "IOFailure",
           "FormatError", "Unsupported", "CallbackError", "Cancelled", "AbiMismatch", "InternalError",
           "__version__",
           # ---- data and evaluation ----
           "load_idx", "fashion_mnist", "FeatureNet", "feature_stats", "frechet_distance", "kid",
           "load_reference_stats"]
