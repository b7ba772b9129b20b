"""Named float tensors + metadata in ONNX files (checkpoint interchange), through libmixflow's validated
reader (hostile files are refused with clear errors) and atomic writer."""
from __future__ import annotations

import ctypes
import os

import numpy as np

from ._handle import HandleOwner
from . import _lib
from ._lib import check, fptr, lib
from .transport import as_float32

_MAX_NDIM = 16


def _two_call(fn, *args) -> str:
    """The library's (buf, cap, out_len) string protocol: query the length, then fill."""
    n = ctypes.c_size_t()
    check(fn(*args, None, 0, ctypes.byref(n)))
    buf = ctypes.create_string_buffer(n.value + 1)
    check(fn(*args, buf, n.value + 1, ctypes.byref(n)))
    return buf.value.decode("utf-8")


class TensorFile(HandleOwner):
    """An ONNX file's initializers and metadata (values read on demand, converted to float32)."""

    def __init__(self, path: str | os.PathLike):
        handle = _lib.TF()
        check(lib.mixflow_tensor_file_load(os.fsencode(path), ctypes.byref(handle)))
        self._own(handle, lib.mixflow_tensor_file_free)




    def __len__(self):
        return int(lib.mixflow_tensor_file_num_tensors(self._handle))

    def names(self) -> list[str]:
        return [_two_call(lib.mixflow_tensor_file_tensor_name, self._handle, i) for i in range(len(self))]

    def info(self, index: int) -> tuple[int, tuple[int, ...], int]:
        """(ONNX dtype code, shape, storage kind) of tensor `index`."""
        dtype, ndim, count, storage = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int64(), ctypes.c_int32()
        dims = (ctypes.c_int64 * _MAX_NDIM)()
        check(lib.mixflow_tensor_file_tensor_info(self._handle, index, ctypes.byref(dtype), ctypes.byref(ndim), dims,
                                                  _MAX_NDIM, ctypes.byref(count), ctypes.byref(storage)))
        return dtype.value, tuple(dims[:ndim.value]), storage.value

    def read(self, name: str) -> np.ndarray:
        """The tensor as float32 (float16/bfloat16/float64/integers converted)."""
        index = ctypes.c_int64()
        check(lib.mixflow_tensor_file_find(self._handle, name.encode(), ctypes.byref(index)))
        if index.value < 0:
            raise KeyError(name)
        _, shape, _ = self.info(index.value)
        out = np.empty(shape, np.float32)
        check(lib.mixflow_tensor_file_read_index(self._handle, index.value, fptr(out), out.size))
        return out

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: self.read(name) for name in self.names()}

    def metadata(self) -> dict[str, str]:
        keys = [_two_call(lib.mixflow_tensor_file_metadata_key, self._handle, i)
                for i in range(int(lib.mixflow_tensor_file_num_metadata(self._handle)))]
        return {k: _two_call(lib.mixflow_tensor_file_metadata, self._handle, k.encode()) for k in keys}


def write_tensor_file(path: str | os.PathLike, tensors: dict, metadata: dict | None = None,
                      external_threshold: int = 1 << 20) -> None:
    """Writes float32 tensors (+ string metadata) as an ONNX file, atomically. Tensors of at least
    ``external_threshold`` bytes go to ``<name>.data`` next to it (-1 = all inline)."""
    w = _lib.TW()
    check(lib.mixflow_tensor_writer_create(os.fsencode(path), external_threshold, ctypes.byref(w)))
    try:
        for name, value in tensors.items():
            arr = as_float32(value, name) if np.ndim(value) else np.asarray([value], np.float32)
            dims = (ctypes.c_int64 * arr.ndim)(*arr.shape)
            check(lib.mixflow_tensor_writer_add(w, name.encode(), fptr(arr), dims, arr.ndim))
        for k, v in (metadata or {}).items():
            check(lib.mixflow_tensor_writer_set_metadata(w, str(k).encode(), str(v).encode()))
        check(lib.mixflow_tensor_writer_finish(w))
    finally:
        lib.mixflow_tensor_writer_free(w)
