"""The MixFlow training transport: build slowed-interpolation batches and their loss for any model."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._handle import HandleOwner
from . import _lib
from . import _types as T
from ._args import integer, output
from ._lib import check, fptr, lib
from ctypes import c_uint64

_PATHS = {"linear": T.Path.LINEAR, "gvp": T.Path.GVP, "vp": T.Path.VP}
_CONVENTIONS = {"sit": T.Convention.SIT, "rae": T.Convention.RAE, "repa": T.Convention.REPA}
_PREDICTIONS = {"velocity": T.Prediction.VELOCITY, "noise": T.Prediction.NOISE, "score": T.Prediction.SCORE}
_WEIGHTS = {None: T.LossWeight.NONE, "none": T.LossWeight.NONE, "velocity": T.LossWeight.VELOCITY,
            "likelihood": T.LossWeight.LIKELIHOOD}
_TIME_DISTS = {"uniform": T.TimeDist.UNIFORM, "beta21": T.TimeDist.BETA21, "logit_normal": T.TimeDist.LOGIT_NORMAL}
_TARGETS = {"t": T.TargetTime.T, "m": T.TargetTime.M}
_MIXTURES = {"slowed": T.Mixture.SLOWED, "uniform": T.Mixture.UNIFORM}


def _choice(table: dict, value, name: str):
    key = value.lower() if isinstance(value, str) else value
    if key not in table:
        raise ValueError(f"{name} must be one of {sorted(k for k in table if k is not None)}, got {value!r}")
    return int(table[key])


def _name_of(table: dict, value: int) -> str:
    return next(k for k, v in table.items() if k is not None and int(v) == value)


def as_float32(a: ArrayLike, name: str) -> np.ndarray:
    """C-contiguous float32 view of `a`; copies only when `a` is not already float32 and contiguous."""
    arr = np.asarray(a)
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.ndim < 1:
        raise ValueError(f"{name} must have a batch dimension, got a scalar")
    return arr


@dataclass
class Batch:
    """A prepared MixFlow batch. ``x_in`` goes into the model with time label ``t``; ``target`` is the
    regression target; ``m`` the slowed times the input was built at; ``noise`` the Gaussian x0."""
    x_in: np.ndarray
    t: np.ndarray
    m: np.ndarray
    noise: np.ndarray
    target: np.ndarray


class Transport(HandleOwner):
    """MixFlow training transport (see ``mixflow_transport_params`` in mixflow_types.h for every field).

    >>> tr = Transport(path="linear", prediction="velocity", convention="sit", time_dist="beta21", gamma=0.8)
    >>> b = tr.prepare(x1, seed=0, step=0)
    >>> loss, per_sample, grad = tr.loss(model(b.x_in, b.t), b)
    """

    def __init__(self, path=None, prediction=None, convention=None, time_dist=None, gamma=None,
                 target=None, loss_weight=None, train_eps=None, time_shift=None, logit_normal_mean=None,
                 logit_normal_std=None, input_perturbation=None, num_threads=None, mixture=None, *,
                 _params: T.TransportParams = None):
        # Every argument defaults to None: the C library's default (mixflow_transport_default_params) applies,
        # one source of truth for defaults (linear, velocity, SiT convention, Beta(2,1), gamma 0.8, …).
        if _params is None:
            p = T.TransportParams()
            check(lib.mixflow_transport_default_params(ctypes.byref(p), ctypes.sizeof(p)))
            choices = {"path": (_PATHS, path), "prediction": (_PREDICTIONS, prediction),
                       "convention": (_CONVENTIONS, convention), "time_dist": (_TIME_DISTS, time_dist),
                       "target_time": (_TARGETS, target), "mixture": (_MIXTURES, mixture)}
            for field, (table, value) in choices.items():
                if value is not None:
                    setattr(p, field, _choice(table, value, "target" if field == "target_time" else field))
            if loss_weight is not None:
                p.loss_weight = _choice(_WEIGHTS, loss_weight, "loss_weight")
            if train_eps is not None:
                p.train_eps = train_eps
            for field, value in (("gamma", gamma), ("time_shift", time_shift), ("logit_normal_mean", logit_normal_mean),
                                 ("logit_normal_std", logit_normal_std), ("input_perturbation", input_perturbation),
                                 ("num_threads", num_threads)):
                if value is not None:
                    setattr(p, field, value)
        else:
            p = _params
        handle = _lib.TR()
        check(lib.mixflow_transport_create(ctypes.byref(p), ctypes.byref(handle)))
        self._own(handle, lib.mixflow_transport_free)

    @classmethod
    def preset(cls, name: str, latent_shape: tuple[int, ...] | None = None, dim: int = 0, **overrides) -> "Transport":
        """An official recipe: "sit" (gamma 0.8), "rae" (gamma 0.4; pass ``latent_shape=(768, 16, 16)`` for
        the dimension shift), "repa". Keyword overrides edit the preset (e.g. ``gamma=0.5``)."""
        if latent_shape is not None:
            dim = int(np.prod(latent_shape))
        p = T.TransportParams()
        check(lib.mixflow_transport_preset_params(name.encode(), dim, ctypes.byref(p), ctypes.sizeof(p)))
        tables = {"path": _PATHS, "prediction": _PREDICTIONS, "convention": _CONVENTIONS, "time_dist": _TIME_DISTS,
                  "target": _TARGETS, "loss_weight": _WEIGHTS, "mixture": _MIXTURES}
        for key, value in overrides.items():
            if key in tables:
                setattr(p, "target_time" if key == "target" else key, _choice(tables[key], value, key))
            elif key == "train_eps":
                p.train_eps = -1.0 if value is None else value
            elif hasattr(p, key) and key != "struct_size":
                setattr(p, key, value)
            else:
                raise TypeError(f"unknown transport option {key!r}")
        return cls(_params=p)

    # ---- introspection --------------------------------------------------------------------------------
    @property
    def params(self) -> dict:
        p = T.TransportParams()
        check(lib.mixflow_transport_get_params(self._ptr, ctypes.byref(p), ctypes.sizeof(p)))
        return {
            "path": _name_of(_PATHS, p.path), "prediction": _name_of(_PREDICTIONS, p.prediction),
            "convention": _name_of(_CONVENTIONS, p.convention), "time_dist": _name_of(_TIME_DISTS, p.time_dist),
            "target": _name_of(_TARGETS, p.target_time), "loss_weight": _name_of(_WEIGHTS, p.loss_weight),
            "gamma": p.gamma, "train_eps": None if p.train_eps == -1 else p.train_eps, "time_shift": p.time_shift,
            "logit_normal_mean": p.logit_normal_mean, "logit_normal_std": p.logit_normal_std,
            "input_perturbation": p.input_perturbation, "num_threads": p.num_threads,
            "mixture": _name_of(_MIXTURES, p.mixture),
        }

    @property
    def training_interval(self) -> tuple[float, float]:
        t0, t1 = ctypes.c_double(), ctypes.c_double()
        check(lib.mixflow_transport_training_interval(self._ptr, ctypes.byref(t0), ctypes.byref(t1)))
        return t0.value, t1.value





    # ---- training maths -------------------------------------------------------------------------------
    def prepare(self, x1: ArrayLike, seed: int = 0, step: int = 0, first_sample: int = 0, out: Batch | None = None) -> Batch:
        """Builds a MixFlow batch from data ``x1`` [B, ...] (float32; other dtypes are converted with a copy).
        ``first_sample`` is the global index of row 0 when a batch is split across workers. Pass a previous
        ``Batch`` of the same shape as ``out`` to reuse its arrays (no allocation, no page faults)."""
        x1 = as_float32(x1, "x1")
        batch, dim = x1.shape[0], int(np.prod(x1.shape[1:], dtype=np.int64)) if x1.ndim > 1 else 1
        if out is None:
            x_in, noise, target = np.empty_like(x1), np.empty_like(x1), np.empty_like(x1)
            t, m = np.empty(batch, np.float32), np.empty(batch, np.float32)
        else:
            for name in ("x_in", "noise", "target"):
                output(getattr(out, name), f"out.{name}", x1.shape)
            for name in ("t", "m"):
                output(getattr(out, name), f"out.{name}", (batch,))
            x_in, noise, target, t, m = out.x_in, out.noise, out.target, out.t, out.m
        seed, step = integer(seed, "seed", c_uint64), integer(step, "step", c_uint64)
        first_sample = integer(first_sample, "first_sample", c_uint64)
        check(lib.mixflow_transport_prepare(self._ptr, fptr(x1), batch, dim, seed, step, first_sample,
                                            fptr(x_in), fptr(t), fptr(m), fptr(noise), fptr(target)))
        return Batch(x_in=x_in, t=t, m=m, noise=noise, target=target)

    def loss(self, pred: ArrayLike, batch: Batch,
             grad_out: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
        """Returns ``(mean_loss, per_sample_losses [B], grad [same shape as pred])`` where grad is the
        gradient of the mean loss with respect to ``pred``. ``grad_out`` may be given (it may be ``pred``)."""
        pred = as_float32(pred, "pred")
        target = as_float32(batch.target, "target")
        if pred.shape != target.shape:
            raise ValueError(f"pred has shape {pred.shape}, target has shape {target.shape}")
        b = pred.shape[0]
        dim = int(np.prod(pred.shape[1:], dtype=np.int64)) if pred.ndim > 1 else 1
        per_sample = np.empty(b, np.float32)
        mean = ctypes.c_float()
        grad = np.empty_like(pred) if grad_out is None else output(grad_out, "grad_out", pred.shape)
        t = as_float32(batch.t, "t")
        m = as_float32(batch.m, "m")
        if t.shape != (b,) or m.shape != (b,):
            raise ValueError(f"batch.t and batch.m must have shape ({b},)")
        check(lib.mixflow_transport_loss(self._ptr, fptr(pred), fptr(target), fptr(t), fptr(m), b, dim,
                                         fptr(per_sample), ctypes.byref(mean), fptr(grad)))
        return float(mean.value), per_sample, grad
