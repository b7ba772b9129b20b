"""MixFlow post-training of a native model through libmixflow."""
from __future__ import annotations

import ctypes
import os
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from ._handle import HandleOwner
from . import _lib
from . import _types as T
from ._args import int32_array, integer
from ._lib import check, fptr, lib
from .model import Model
from .transport import Transport, as_float32


class Trainer(HandleOwner):
    """Post-trains a native ``Model`` with a ``Transport`` objective (AdamW + EMA, official recipes).

    >>> trainer = Trainer(model, Transport.preset("sit", gamma=0.8), lr=1e-4, ema=0.9999)
    >>> loss = trainer.step(x1, y)
    >>> loss = trainer.step(x1, y, features=z)   # REPA's SiT: z [B, tokens, z_dim] from the target encoder
    >>> trainer.save("ckpt.mixflow"); trainer = Trainer.resume("ckpt.mixflow")

    ``gradient_hook(grads: np.ndarray, step: int)`` (optional) sees — and may modify in place, e.g. to
    all-reduce across processes — the flat gradient before clipping and the update.
    """

    def __init__(self, model: Model, transport: Transport, *, preset: str = "sit", lr: float | None = None,
                 final_lr: float | None = None, decay_steps: tuple[int, int] | None = None, warmup: int | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None, weight_decay: float | None = None,
                 ema: float | None = None, max_grad_norm: float | None = None, proj_coeff: float | None = None,
                 seed: int | None = None, num_threads: int | None = None, _handle=None):
        # Every hyper-parameter defaults to None: the preset's value (the C library's) applies.
        self._hook = None
        self._hook_error = None
        if _handle is not None:
            handle = _handle
        else:
            p = T.TrainerParams()
            start, end = decay_steps if decay_steps is not None else (40, 800)
            check(lib.mixflow_trainer_preset_params(preset.encode(), start, end, ctypes.byref(p), ctypes.sizeof(p)))
            if lr is not None:
                p.lr = lr
                if decay_steps is None and p.decay_end == 0:
                    p.final_lr = lr
            if final_lr is not None:
                p.final_lr = final_lr
            if decay_steps is not None:
                p.decay_start, p.decay_end = decay_steps
            if warmup is not None:
                p.warmup = warmup
            if betas is not None:
                p.beta1, p.beta2 = betas
            if eps is not None:
                p.eps = eps
            if weight_decay is not None:
                p.weight_decay = weight_decay
            if ema is not None:
                p.ema_decay = ema
            if max_grad_norm is not None:
                p.max_grad_norm = max_grad_norm
            if proj_coeff is not None:
                p.proj_coeff = proj_coeff
            if seed is not None:
                p.seed = seed
            if num_threads is not None:
                p.num_threads = num_threads
            handle = _lib.TN()
            check(lib.mixflow_trainer_create(model._ptr, transport._ptr, ctypes.byref(p), ctypes.byref(handle)))
        self._own(handle, lib.mixflow_trainer_free)
        self.model = self._model(ema=False)
        self._said_no_features = False

    @classmethod
    def resume(cls, path: str | os.PathLike, num_threads: int = 0) -> "Trainer":
        handle = _lib.TN()
        check(lib.mixflow_trainer_resume(os.fsencode(path), num_threads, ctypes.byref(handle)))
        return cls(None, None, _handle=handle)

    def _model(self, ema: bool) -> Model:
        mh = _lib.MD()
        check(lib.mixflow_trainer_get_model(self._ptr, int(ema), ctypes.byref(mh)))
        return Model._from_handle(mh)

    def ema_model(self) -> Model:
        """An independent model holding a copy of the current EMA weights (what to sample from)."""
        return self._model(ema=True)

    def save_onnx(self, path: str | os.PathLike, ema: bool = True, transport: Transport | None = None, **kw) -> None:
        """Writes the EMA weights (or, with ``ema=False``, the live ones) as ONNX with ``mixflow.step`` = the
        step count; ``transport`` adds its transport.* settings; other keywords as ``Model.save_onnx``."""
        model = self.ema_model() if ema else self.model
        try:
            model.save_onnx(path, transport=transport, step=self.step_count, **kw)
        finally:
            if ema:
                model.close()



    @property
    def step_count(self) -> int:
        return int(lib.mixflow_trainer_step_count(self._ptr))

    def step(self, x1: ArrayLike, y: ArrayLike | None = None, first_sample: int = 0,
             features: ArrayLike | None = None) -> float:
        """One MixFlow step on data x1 [B, C, H, W] with labels y [B] (None = unconditional). Returns the loss.

        ``features``: for a model with REPA projectors, the target encoder's features of x1, [B, tokens, z_dim]
        (several encoders: [B, tokens·z_0 + tokens·z_1 + …] or any shape with ``Model.feature_size`` floats a
        sample); the loss is then denoise + proj_coeff·proj. Without them such a model trains the denoising
        loss alone, and the first such step says so once (a ``UserWarning``)."""
        x1 = as_float32(x1, "x1")
        m = self.model
        if x1.ndim != 4 or x1.shape[1:] != (m.in_channels, m.input_size, m.input_size):
            raise ValueError(f"x1 must have shape [B, {m.in_channels}, {m.input_size}, {m.input_size}], got {x1.shape}")
        ys = None if y is None else int32_array(y, "y", (x1.shape[0],))
        first_sample = integer(first_sample, "first_sample", ctypes.c_uint64)
        size = m.feature_size
        z = None
        if features is not None:
            if size == 0:
                raise ValueError("features are for models with REPA projectors; this model has none")
            z = as_float32(features, "features")
            if z.ndim < 1 or z.shape[0] != x1.shape[0] or z.size != x1.shape[0] * size:
                raise ValueError(f"features must have {size} floats per sample for {x1.shape[0]} samples "
                                 f"(e.g. shape [{x1.shape[0]}, tokens, z_dim]), got shape {z.shape}")
            z = np.ascontiguousarray(z)
        loss = ctypes.c_float()
        self._hook_error = None
        status = lib.mixflow_trainer_step_features(self._ptr, fptr(x1), None if ys is None else ys.ctypes.data_as(_lib.IP),
                                                   None if z is None else fptr(z), 0 if z is None else size,
                                                   x1.shape[0], first_sample, ctypes.byref(loss))
        if self._hook_error is not None:
            error, self._hook_error = self._hook_error, None
            raise error
        check(status)
        if z is None and size > 0 and not self._said_no_features:
            self._said_no_features = True
            import warnings
            warnings.warn("this model has REPA projectors but no features were given: training the denoising "
                          "loss alone (pass features=z for denoise + proj_coeff·proj)", UserWarning, stacklevel=2)
        return float(loss.value)

    _PARAM_FIELDS = ("lr", "final_lr", "decay_start", "decay_end", "warmup", "beta1", "beta2", "eps", "weight_decay",
                     "ema_decay", "max_grad_norm", "seed", "num_threads", "proj_coeff")

    @property
    def params(self) -> dict:
        """The current hyper-parameters (``mixflow_trainer_params`` fields; decay_end 0 = constant lr)."""
        p = T.TrainerParams()
        check(lib.mixflow_trainer_get_params(self._ptr, ctypes.byref(p), ctypes.sizeof(p)))
        return {k: getattr(p, k) for k in self._PARAM_FIELDS}

    def set_params(self, **changes) -> None:
        """Changes hyper-parameters and keeps the state (weights, moments, EMA, step), e.g. a learning-rate
        cool-down after a resume: ``set_params(final_lr=0.0, decay_start=20000, decay_end=30000)``. A schedule
        set before its decay starts gives exactly the run that had it from step 0."""
        p = T.TrainerParams()
        check(lib.mixflow_trainer_get_params(self._ptr, ctypes.byref(p), ctypes.sizeof(p)))
        for key, value in changes.items():
            if key not in self._PARAM_FIELDS:
                raise TypeError(f"unknown trainer parameter {key!r}; known: {', '.join(self._PARAM_FIELDS)}")
            setattr(p, key, value)
        check(lib.mixflow_trainer_set_params(self._ptr, ctypes.byref(p)))

    def set_gradient_hook(self, fn: Callable[[np.ndarray, int], None] | None) -> None:
        """``fn(grads, step)`` with ``grads`` a float32 numpy view of the flat gradient (modify in place)."""
        if fn is None:
            self._hook = None
            check(lib.mixflow_trainer_set_gradient_hook(self._ptr, T.GradientFn(), None))
            return

        def trampoline(_user, grads, count, step):
            try:
                # A view (fn may modify the gradient in place) that keeps the trainer's memory alive as long as
                # fn keeps it, even past close().
                fn(self._view(grads, count), int(step))
                return 0
            except BaseException as e:  # noqa: BLE001 — re-raised after the C call returns
                self._hook_error = e
                return 1
        self._hook = T.GradientFn(trampoline)   # kept alive while installed
        check(lib.mixflow_trainer_set_gradient_hook(self._ptr, self._hook, None))

    def save(self, path: str | os.PathLike) -> None:
        """Atomic: a crash mid-save never corrupts the previous checkpoint."""
        check(lib.mixflow_trainer_save(self._ptr, os.fsencode(path)))
