"""IDX arrays (the MNIST container) and Fashion-MNIST, read by libmixflow's native reader (plain or .gz)."""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from . import _lib
from . import _types as T
from ._lib import check, lib

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"   # Debian package dataset-fashion-mnist
_DTYPES = {T.IdxDtype.UINT8: np.uint8, T.IdxDtype.INT8: np.int8, T.IdxDtype.INT16: np.int16,
           T.IdxDtype.INT32: np.int32, T.IdxDtype.FLOAT32: np.float32, T.IdxDtype.FLOAT64: np.float64}
_SCALINGS = {"none": T.PixelScaling.NONE, "symmetric": T.PixelScaling.SYMMETRIC, "unit": T.PixelScaling.UNIT}
_SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
           "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def load_idx(path: str | os.PathLike, scaling: str | None = None) -> np.ndarray:
    """Reads an IDX file (plain or gzip) into a numpy array of its shape.

    ``scaling=None`` keeps the stored dtype (uint8 images stay 0..255). Otherwise the result is float32:
    ``"none"`` (the values), ``"symmetric"`` (uint8 only: x / 127.5 - 1, in [-1, 1]) or ``"unit"`` (uint8
    only: x / 255). Corrupt or hostile files raise ``FormatError`` naming the path and byte offset."""
    if scaling is not None and scaling not in _SCALINGS:
        raise ValueError(f"scaling must be None or one of {sorted(_SCALINGS)}, got {scaling!r}")
    handle = _lib.IDX()
    check(lib.mixflow_idx_load(os.fsencode(str(path)), ctypes.byref(handle)))
    try:
        dtype, ndim = ctypes.c_int(), ctypes.c_int32()
        shape = (ctypes.c_int64 * 255)()
        check(lib.mixflow_idx_info(handle, ctypes.byref(dtype), ctypes.byref(ndim), shape, 255))
        dims = tuple(shape[k] for k in range(ndim.value))
        if scaling is None:
            out = np.empty(dims, _DTYPES[T.IdxDtype(dtype.value)])
            check(lib.mixflow_idx_read_raw(handle, out.ctypes.data_as(ctypes.c_void_p), out.nbytes))
        else:
            out = np.empty(dims, np.float32)
            check(lib.mixflow_idx_read_f32(handle, int(_SCALINGS[scaling]), out.ctypes.data_as(_lib.FP), out.size))
        return out
    finally:
        lib.mixflow_idx_free(handle)


def fashion_mnist_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else $MIXFLOW_FASHION_MNIST, else Debian's /usr/share/datasets/fashion-mnist."""
    return Path(root or os.environ.get("MIXFLOW_FASHION_MNIST") or DEFAULT_ROOT)


def fashion_mnist(split: str = "train", root: str | os.PathLike | None = None,
                  scaling: str | None = "symmetric") -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(images, labels)`` of Fashion-MNIST: images [N, 28, 28] float32 in [-1, 1] by default
    (``scaling=None`` gives the raw uint8), labels [N] int32 in 0..9. N is 60000 (train) or 10000 (test).
    Files are looked up as ``<name>.gz`` then ``<name>`` under ``root`` (see ``fashion_mnist_root``);
    ``apt-get install dataset-fashion-mnist`` provides them."""
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    base = fashion_mnist_root(root)

    def find(name: str) -> Path:
        for candidate in (base / f"{name}.gz", base / name):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{name}(.gz) not found under {base}; install the Debian package "
                                "dataset-fashion-mnist or pass root=")

    images = load_idx(find(_SPLITS[split][0]), scaling)
    labels = load_idx(find(_SPLITS[split][1])).astype(np.int32)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{base}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels
