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
# numpy dtype <-> mixflow_dtype (ONNX TensorProto.DataType): the types read_stored and exact writes keep.
ONNX_DTYPES = {np.dtype("float32"): 1, np.dtype("uint8"): 2, np.dtype("int8"): 3, np.dtype("uint16"): 4,
               np.dtype("int16"): 5, np.dtype("int32"): 6, np.dtype("int64"): 7, np.dtype("bool"): 9,
               np.dtype("float16"): 10, np.dtype("float64"): 11, np.dtype("uint32"): 12, np.dtype("uint64"): 13}
NUMPY_DTYPES = {v: k for k, v in ONNX_DTYPES.items()}


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

    def read_stored(self, name: str) -> np.ndarray:
        """The tensor in its stored dtype, bit for bit (bfloat16 widened to float32, as numpy has no bfloat16)."""
        index = ctypes.c_int64()
        check(lib.mixflow_tensor_file_find(self._handle, name.encode(), ctypes.byref(index)))
        if index.value < 0:
            raise KeyError(name)
        dtype, shape, _ = self.info(index.value)
        bf16 = dtype == 16
        if not bf16 and dtype not in NUMPY_DTYPES:
            return self.read(name)  # (lets the library name the unsupported type)
        out = np.empty(shape, np.dtype("<u2") if bf16 else NUMPY_DTYPES[dtype].newbyteorder("<"))
        check(lib.mixflow_tensor_file_read_stored(self._handle, index.value, out.ctypes.data_as(ctypes.c_void_p), out.nbytes))
        return (out.astype(np.uint32) << 16).view(np.float32) if bf16 else out.astype(out.dtype.newbyteorder("="))

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: self.read(name) for name in self.names()}

    def metadata(self) -> dict[str, str]:
        keys = [_two_call(lib.mixflow_tensor_file_metadata_key, self._handle, i)
                for i in range(int(lib.mixflow_tensor_file_num_metadata(self._handle)))]
        return {k: _two_call(lib.mixflow_tensor_file_metadata, self._handle, k.encode()) for k in keys}


def write_tensor_file(path: str | os.PathLike, tensors: dict, metadata: dict | None = None,
                      external_threshold: int = 1 << 20, exact: bool = False) -> None:
    """Writes tensors (+ string metadata) as an ONNX file, atomically: the model and its data file form one
    save (see the library's OnnxWriter). Tensors of at least ``external_threshold`` bytes go to an external
    data file next to it (-1 = all inline). Values are stored as float32, or with ``exact`` in each array's
    own dtype (float16/64, integers, bool; ``ONNX_DTYPES``)."""
    w = _lib.TW()
    check(lib.mixflow_tensor_writer_create(os.fsencode(path), external_threshold, ctypes.byref(w)))
    try:
        for name, value in tensors.items():
            if exact:
                arr = np.require(np.asarray(value), requirements="C")
                if arr.dtype.newbyteorder("=") not in ONNX_DTYPES:
                    raise ValueError("tensor %r has dtype %s, which ONNX cannot store" % (name, arr.dtype))
                arr = np.require(arr.astype(arr.dtype.newbyteorder("<"), copy=False), requirements="C")
                dims = (ctypes.c_int64 * arr.ndim)(*arr.shape)
                check(lib.mixflow_tensor_writer_add_typed(w, name.encode(), ONNX_DTYPES[arr.dtype.newbyteorder("=")],
                                                          arr.ctypes.data_as(ctypes.c_void_p), dims, arr.ndim))
                continue
            arr = as_float32(value, name) if np.ndim(value) else np.asarray([value], np.float32)
            dims = (ctypes.c_int64 * arr.ndim)(*arr.shape)
            check(lib.mixflow_tensor_writer_add(w, name.encode(), fptr(arr), dims, arr.ndim))
        for k, v in (metadata or {}).items():
            check(lib.mixflow_tensor_writer_set_metadata(w, str(k).encode(), str(v).encode()))
        check(lib.mixflow_tensor_writer_finish(w))
    finally:
        lib.mixflow_tensor_writer_free(w)
