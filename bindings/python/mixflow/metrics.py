"""The quality metric: "FD (Fashion-MNIST classifier features)" (never FID: the features come from libmixflow's
own small Fashion-MNIST classifier, not Inception), KID on the same features, and conditional accuracy.

Compare methods only at the same sample count, reference set and feature net, over several seeds."""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from ._handle import HandleOwner
from . import _lib
from ._args import int32_array
from ._lib import check, fptr, lib

_REPO_SHARE = Path(__file__).resolve().parent.parent.parent.parent / "share" / "featnet"
_PKG_SHARE = Path(__file__).resolve().parent / "share" / "featnet"


def _shared(name: str, env: str) -> Path:
    """$env, else next to the package (installed), else the source tree's share/featnet."""
    if os.environ.get(env):
        return Path(os.environ[env])
    for base in (_PKG_SHARE, _REPO_SHARE):
        if (base / name).is_file():
            return base / name
    raise FileNotFoundError(f"{name} not found in {_PKG_SHARE} or {_REPO_SHARE}; set {env}")


def default_featnet_path() -> Path:
    return _shared("fmnist-cnn.mxfnet", "MIXFLOW_FEATNET")


def default_reference_stats_path() -> Path:
    return _shared("fmnist-test-stats.mxfstat", "MIXFLOW_REFERENCE_STATS")


def _f32_2d(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n, dim], got shape {arr.shape}")
    return np.ascontiguousarray(arr, np.float32)


class FeatureNet(HandleOwner):
    """The fixed classifier behind the metric (default: the shipped share/featnet/fmnist-cnn.mxfnet: three 3x3
    convolutions and two max-pools, then 3136 -> 128 features -> 10 logits; test accuracy in fmnist-cnn.json).

    Images are [n, 28, 28] or [n, 784] float in [-1, 1] (x / 127.5 - 1); uint8 images are converted with that
    formula (a copy). Other float dtypes and non-contiguous arrays are copied to float32."""

    def __init__(self, path=None):
        path = default_featnet_path() if path is None else path
        handle = _lib.NET()
        check(lib.mixflow_featnet_load(os.fsencode(str(path)), ctypes.byref(handle)))
        self._own(handle, lib.mixflow_featnet_free)
        i, f, c = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        check(lib.mixflow_featnet_info(handle, ctypes.byref(i), ctypes.byref(f), ctypes.byref(c)))
        self.input_dim, self.feature_dim, self.num_classes = i.value, f.value, c.value





    def _images(self, images) -> np.ndarray:
        arr = np.asarray(images)
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / np.float32(127.5) - np.float32(1)
        if arr.ndim < 2:
            raise ValueError(f"images must be [n, ...] with {self.input_dim} values per image, got shape {arr.shape}")
        return np.ascontiguousarray(arr.reshape(arr.shape[0], -1), np.float32)

    def features(self, images: ArrayLike) -> np.ndarray:
        """[n, feature_dim] penultimate activations."""
        x = self._images(images)
        out = np.empty((x.shape[0], self.feature_dim), np.float32)
        check(lib.mixflow_featnet_features(self._ptr, fptr(x), x.shape[0], x.shape[1], fptr(out)))
        return out

    def logits(self, images: ArrayLike) -> np.ndarray:
        x = self._images(images)
        out = np.empty((x.shape[0], self.num_classes), np.float32)
        check(lib.mixflow_featnet_classify(self._ptr, fptr(x), x.shape[0], x.shape[1], fptr(out), None))
        return out

    def classify(self, images: ArrayLike) -> np.ndarray:
        """[n] int32 predicted classes (argmax of the logits)."""
        x = self._images(images)
        out = np.empty(x.shape[0], np.int32)
        check(lib.mixflow_featnet_classify(self._ptr, fptr(x), x.shape[0], x.shape[1], None,
                                           out.ctypes.data_as(_lib.I32P)))
        return out

    def accuracy(self, images: ArrayLike, labels: ArrayLike) -> float:
        """Conditional accuracy: the fraction of images classified as their label."""
        x = self._images(images)
        y = int32_array(labels, "labels", (x.shape[0],))
        acc = ctypes.c_double()
        check(lib.mixflow_featnet_accuracy(self._ptr, fptr(x), y.ctypes.data_as(_lib.I32P), x.shape[0], x.shape[1],
                                           ctypes.byref(acc)))
        return acc.value


def feature_stats(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(mean [d], covariance [d, d]) in float64, covariance with divisor n - 1."""
    f = _f32_2d(features, "features")
    mean, cov = np.empty(f.shape[1]), np.empty((f.shape[1], f.shape[1]))
    check(lib.mixflow_feature_stats_compute(fptr(f), f.shape[0], f.shape[1], mean.ctypes.data_as(_lib.DP),
                                            cov.ctypes.data_as(_lib.DP)))
    return mean, cov


def load_reference_stats(path: str | os.PathLike | None = None, dim: int = 128) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean, covariance, count) cached in a .mxfstat file (default: the shipped Fashion-MNIST test set)."""
    path = default_reference_stats_path() if path is None else path
    mean, cov, count = np.empty(dim), np.empty((dim, dim)), ctypes.c_int64()
    check(lib.mixflow_feature_stats_load(os.fsencode(str(path)), dim, mean.ctypes.data_as(_lib.DP),
                                         cov.ctypes.data_as(_lib.DP), ctypes.byref(count)))
    return mean, cov, count.value


def frechet_distance(a: ArrayLike | tuple[ArrayLike, ArrayLike], b: ArrayLike | tuple[ArrayLike, ArrayLike]) -> float:
    """FD between two feature sets [n, d], or between (mean, cov) statistics (either side may be either)."""
    stats = [(np.ascontiguousarray(x[0], np.float64), np.ascontiguousarray(x[1], np.float64))
             if isinstance(x, tuple) else feature_stats(x) for x in (a, b)]
    (m1, c1), (m2, c2) = stats
    d = m1.shape[0]
    for m, c in stats:
        if m.shape != (d,) or c.shape != (d, d):
            raise ValueError(f"statistics must be mean [{d}] and covariance [{d}, {d}], got {m.shape} and {c.shape}")
    out = ctypes.c_double()
    check(lib.mixflow_frechet_distance_from_stats(*(x.ctypes.data_as(_lib.DP) for x in (m1, c1, m2, c2)), d,
                                                  ctypes.byref(out)))
    return out.value


def kid(a: ArrayLike, b: ArrayLike, num_subsets: int = 50, subset_size: int = 1000, seed: int = 0,
        return_subsets: bool = False) -> tuple[float, float] | tuple[float, float, np.ndarray]:
    """KID: unbiased MMD² with the kernel (x·y/d + 1)^3 over random subsets. Returns (mean, standard error)
    [, subset values]. ``subset_size`` is capped at min(len(a), len(b))."""
    fa, fb = _f32_2d(a, "a"), _f32_2d(b, "b")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"a and b must have the same feature dim, got {fa.shape[1]} and {fb.shape[1]}")
    m = min(subset_size, fa.shape[0], fb.shape[0])
    mean, se, values = ctypes.c_double(), ctypes.c_double(), np.empty(num_subsets)
    check(lib.mixflow_kid_compute(fptr(fa), fa.shape[0], fptr(fb), fb.shape[0], fa.shape[1], num_subsets, m, seed,
                                  ctypes.byref(mean), ctypes.byref(se), values.ctypes.data_as(_lib.DP)))
    return (mean.value, se.value, values) if return_subsets else (mean.value, se.value)
