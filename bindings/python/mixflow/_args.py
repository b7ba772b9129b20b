"""The one conversion of Python values into C arguments.

ctypes truncates silently (``c_uint64(2**64)`` is 0, ``np.int32(2**32 + 1)`` is 1, ``np.int32(1.7)`` is 1), so every
integer that reaches the library — function arguments (checked by ``_lib._api``), params-struct fields (checked by
``CStruct``), label arrays — and every output array the caller lends goes through here first. Non-integers raise
TypeError, out-of-range integers ``InvalidArgument`` (a ValueError), each naming the argument.
"""
import ctypes

import numpy as np

from .errors import InvalidArgument

RANGES = {
    ctypes.c_int32: (-(1 << 31), (1 << 31) - 1),
    ctypes.c_int64: (-(1 << 63), (1 << 63) - 1),
    ctypes.c_uint8: (0, (1 << 8) - 1),
    ctypes.c_uint32: (0, (1 << 32) - 1),
    ctypes.c_uint64: (0, (1 << 64) - 1),
}
RANGES[ctypes.c_int] = RANGES[ctypes.c_int32]       # the binding's status/enum type; 32 bits on every target
RANGES[ctypes.c_size_t] = RANGES[ctypes.c_uint64] if ctypes.sizeof(ctypes.c_size_t) == 8 else RANGES[ctypes.c_uint32]


def integer(value, name: str, ctype=ctypes.c_int64) -> int:
    """``value`` as a Python int that fits ``ctype``; TypeError for a non-integer (1.7, "3", None)."""
    if isinstance(value, ctypes._SimpleCData):
        value = value.value
    if not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    lo, hi = RANGES[ctype]
    v = int(value)
    if not lo <= v <= hi:
        raise InvalidArgument(f"{name} must be in [{lo}, {hi}], got {v}")
    return v


def int32_array(values, name: str, shape: tuple) -> np.ndarray:
    """A C-contiguous int32 copy or view of integer ``values`` of ``shape``; floats and values outside int32 are
    refused instead of truncated. (Whether a label is a valid class is the library's check.)"""
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = np.array([integer(v, f"{name}[{i}]", ctypes.c_int32) for i, v in enumerate(arr.reshape(-1))], np.int64).reshape(arr.shape)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    lo, hi = RANGES[ctypes.c_int32]
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        i = int(np.argmax((arr.reshape(-1) < lo) | (arr.reshape(-1) > hi)))
        raise InvalidArgument(f"{name}[{i}] must be in [{lo}, {hi}], got {arr.reshape(-1)[i]}")
    return np.ascontiguousarray(arr, dtype=np.int32)


def output(a, name: str, shape: tuple, dtype=np.float32) -> np.ndarray:
    """A caller's output array, checked to be a writable, C-contiguous ``dtype`` array of ``shape``: the library
    writes through its pointer, so a read-only array (e.g. ``np.frombuffer`` of bytes) is refused, not written."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != dtype or not a.flags.c_contiguous or a.shape != tuple(shape):
        raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype).name} array of shape {tuple(shape)}, "
                         f"got {a.dtype} {a.shape}{'' if a.flags.c_contiguous else ' (not contiguous)'}")
    if not a.flags.writeable:
        raise ValueError(f"{name} is read-only; the library would write into it")
    return a


class CStruct(ctypes.Structure):
    """A params struct whose integer fields refuse values that do not fit, instead of wrapping around."""

    def __setattr__(self, key, value):
        ctype = dict(type(self)._fields_).get(key)
        if ctype in RANGES:
            value = integer(value, f"{type(self).__name__}.{key}", ctype)
        super().__setattr__(key, value)
