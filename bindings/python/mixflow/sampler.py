"""Sampling with any Python model: SiT / RAE / REPA grids and integrators, guidance, exposure-bias baselines.

The model is a Python callable ``model_fn(x, t, y) -> array like x`` called synchronously from the library on
the calling thread (``x`` [B, ...] and ``t`` [B] float32 in the model's own convention, ``y`` int32 [B] or None).
``x`` is a read-only view of the library's buffer, valid only during the call: copy it if you keep it.
An exception raised by ``model_fn`` stops sampling and is re-raised by ``sample`` after the C call returns.
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from numpy.typing import ArrayLike

from ._handle import HandleOwner
from . import _lib
from . import _types as T
from ._args import int32_array, integer
from ._lib import check, fptr, lib
from .errors import CallbackError
from .transport import _CONVENTIONS, _PATHS, _PREDICTIONS, _choice, as_float32

if TYPE_CHECKING:
    from .model import Model

# model_fn(x [B, ...] float32, t [B] float32, y [B] int32 or None) -> an array shaped like x.
ModelFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], ArrayLike]

_METHODS = {"euler": T.SamplerMethod.EULER, "heun": T.SamplerMethod.HEUN, "midpoint": T.SamplerMethod.MIDPOINT,
            "rk4": T.SamplerMethod.RK4, "dopri5": T.SamplerMethod.DOPRI5, "sde_euler": T.SamplerMethod.SDE_EULER,
            "sde_heun": T.SamplerMethod.SDE_HEUN}
_DIFFUSION = {"sigma": T.DiffusionForm.SIGMA, "linear": T.DiffusionForm.LINEAR, "sbdm": T.DiffusionForm.SBDM,
              "decreasing": T.DiffusionForm.DECREASING, "increasing_decreasing": T.DiffusionForm.INCREASING_DECREASING}
_LAST = {"none": T.LastStep.NONE, "mean": T.LastStep.MEAN, "euler": T.LastStep.EULER,
         "tweedie": T.LastStep.TWEEDIE}
_GUIDANCE = {"none": T.Guidance.NONE, "cfg": T.Guidance.CFG, "auto": T.Guidance.AUTO}


@dataclass
class SampleResult:
    """``x``: the samples; ``t``: [K] trajectory times (model convention); ``trajectory``: [K, B, ...] or None;
    ``nfe``: drift evaluations."""
    x: np.ndarray
    t: np.ndarray
    trajectory: np.ndarray | None
    nfe: int


class Sampler(HandleOwner):
    """A configured sampler (see ``mixflow_sampler_params`` in mixflow_types.h for every option)."""

    def __init__(self, method=None, steps=None, convention=None, path=None, prediction=None, *,
                 seed=None, sample_eps=None, time_shift=None, atol=None, rtol=None, diffusion_form=None,
                 diffusion_norm=None, last_step=None, last_step_size=None, guidance=None, cfg_scale=None,
                 null_class=None, channels=None, guided_channels=None, guidance_interval=None, eps_scale=None,
                 query_shift=None):
        # Every argument defaults to None: the C library's default (mixflow_sampler_default_params) applies —
        # heun, 50 grid points, SiT convention, linear velocity, sample_eps by the official rule, SDE last step
        # "mean" of size 0.04, no guidance, null class 1000, ...
        p = T.SamplerParams()
        check(lib.mixflow_sampler_default_params(ctypes.byref(p), ctypes.sizeof(p)))
        choices = dict(method=(_METHODS, method), convention=(_CONVENTIONS, convention), path=(_PATHS, path),
                       prediction=(_PREDICTIONS, prediction), diffusion_form=(_DIFFUSION, diffusion_form),
                       last_step=(_LAST, last_step), guidance=(_GUIDANCE, guidance))
        for field, (table, value) in choices.items():
            if value is not None:
                setattr(p, field, _choice(table, value, field))
        pairs = dict(guidance_interval=(("guidance_t_min", "guidance_t_max"), guidance_interval),
                     eps_scale=(("eps_scale_base", "eps_scale_slope"), eps_scale),
                     query_shift=(("query_shift_constant", "query_shift_proportional"), query_shift))
        for fields, value in pairs.values():
            if value is not None:
                for field, v in zip(fields, value):
                    setattr(p, field, v)
        numbers = dict(num_steps=steps, seed=seed, sample_eps=sample_eps, time_shift=time_shift, atol=atol, rtol=rtol,
                       diffusion_norm=diffusion_norm, last_step_size=last_step_size, guidance_scale=cfg_scale,
                       null_class=null_class, channels=channels, guided_channels=guided_channels)
        for field, value in numbers.items():
            if value is not None:
                setattr(p, field, int(value) if field in ("num_steps", "seed") else value)
        handle = _lib.SA()
        check(lib.mixflow_sampler_create(ctypes.byref(p), ctypes.byref(handle)))
        self._own(handle, lib.mixflow_sampler_free)





    @property
    def timesteps(self) -> np.ndarray:
        """[K] model-convention times of the trajectory points (point 0 is the noise)."""
        count = ctypes.c_int64()
        check(lib.mixflow_sampler_timesteps(self._ptr, None, 0, ctypes.byref(count)))
        out = np.empty(count.value, np.float64)
        check(lib.mixflow_sampler_timesteps(self._ptr, out.ctypes.data_as(_lib.DP), count.value, ctypes.byref(count)))
        return out

    def sample(self, model_fn: ModelFn, noise: ArrayLike, y: ArrayLike | None = None, *, guide_fn: ModelFn | None = None,
               trajectory: bool = False, first_sample: int = 0) -> SampleResult:
        noise = as_float32(noise, "noise")
        batch = noise.shape[0]
        dim = int(np.prod(noise.shape[1:], dtype=np.int64)) if noise.ndim > 1 else 1
        labels = None if y is None else int32_array(y, "y", (batch,))
        first_sample = integer(first_sample, "first_sample", ctypes.c_uint64)
        times = self.timesteps
        out = np.empty_like(noise)
        traj = np.empty((len(times),) + noise.shape, np.float32) if trajectory else None
        errors: list[BaseException] = []
        cb = _callback(model_fn, noise.shape[1:], errors, "model_fn")
        gcb = _callback(guide_fn, noise.shape[1:], errors, "guide_fn") if guide_fn is not None else T.MODEL_FN()
        nfe = ctypes.c_int64()
        status = lib.mixflow_sample(self._ptr, cb, None, gcb, None, fptr(noise), batch, dim,
                                    None if labels is None else labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                                    first_sample, fptr(out), fptr(traj), ctypes.byref(nfe))
        if errors:
            # The Python exception is the real cause; the library's message (step, time) is attached as context.
            message = lib.mixflow_last_error().decode("utf-8", "replace")
            raise errors[0] from CallbackError(message, status)
        check(status)
        return SampleResult(x=out, t=times, trajectory=traj, nfe=nfe.value)

    def sample_model(self, model: Model, noise: ArrayLike, y: ArrayLike | None = None, *, guide_model: Model | None = None,
                     trajectory: bool = False, first_sample: int = 0) -> SampleResult:
        """Samples with a native ``mixflow.Model`` (no Python callback); ``y=None`` is unconditional."""
        noise = as_float32(noise, "noise")
        batch = noise.shape[0]
        dim = int(np.prod(noise.shape[1:], dtype=np.int64)) if noise.ndim > 1 else 1
        labels = None if y is None else int32_array(y, "y", (batch,))
        first_sample = integer(first_sample, "first_sample", ctypes.c_uint64)
        times = self.timesteps
        out = np.empty_like(noise)
        traj = np.empty((len(times),) + noise.shape, np.float32) if trajectory else None
        nfe = ctypes.c_int64()
        check(lib.mixflow_sample_model(self._ptr, model._ptr, None if guide_model is None else guide_model._ptr,
                                       fptr(noise), batch, dim,
                                       None if labels is None else labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                                       first_sample, fptr(out), fptr(traj), ctypes.byref(nfe)))
        return SampleResult(x=out, t=times, trajectory=traj, nfe=nfe.value)

    def step(self, model_output: ArrayLike, index: int, x: ArrayLike, first_sample: int = 0) -> np.ndarray:
        """One step for callers that keep the model loop (euler and sde_euler only)."""
        x = as_float32(x, "x")
        model_output = as_float32(model_output, "model_output")
        if model_output.shape != x.shape:
            raise ValueError(f"model_output has shape {model_output.shape}, x has shape {x.shape}")
        out = np.empty_like(x)
        dim = int(np.prod(x.shape[1:], dtype=np.int64)) if x.ndim > 1 else 1
        index, first_sample = integer(index, "index"), integer(first_sample, "first_sample", ctypes.c_uint64)
        check(lib.mixflow_sampler_step(self._ptr, fptr(model_output), index, fptr(x), x.shape[0], dim, first_sample,
                                       fptr(out)))
        return out


def _callback(fn, tail: tuple, errors: list, name: str):
    """A CFUNCTYPE that calls ``fn`` with numpy views; any exception is stored and turned into status 1."""
    def trampoline(_user, batch, dim, x, t, y, out):
        try:
            # Copies, not views: x, t and y live in the sampler's scratch memory, freed when sampling returns,
            # and fn may keep what it is given (e.g. to record a trajectory).
            xs = np.ctypeslib.as_array(x, shape=(batch, dim)).reshape((batch,) + tuple(tail)).copy()
            ts = np.ctypeslib.as_array(t, shape=(batch,)).copy()
            ys = np.ctypeslib.as_array(y, shape=(batch,)).copy() if y else None
            result = np.asarray(fn(xs, ts, ys), dtype=np.float32)
            if result.shape != xs.shape:
                raise ValueError(f"{name} returned shape {result.shape}, expected {xs.shape}")
            np.ctypeslib.as_array(out, shape=(batch, dim))[:] = result.reshape(batch, dim)
            return 0
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller after the C call returns
            errors.append(e)
            return 1
    return T.MODEL_FN(trampoline)


def sample(model_fn: ModelFn, noise: ArrayLike, method: str | None = None, steps: int | None = None,
           convention: str | None = None, path: str | None = None, prediction: str | None = None,
           y: ArrayLike | None = None, cfg_scale: float | None = None, seed: int | None = None,
           trajectory: bool = False, *, guide_fn: ModelFn | None = None, guidance: str | None = None,
           guided_channels: int | None = None, return_nfe: bool = False, first_sample: int = 0,
           **options: Any) -> np.ndarray | SampleResult:
    """Samples from ``noise`` [B, ...] with ``model_fn``. Returns the samples, or a ``SampleResult`` when
    ``trajectory`` or ``return_nfe`` is set. Guidance: CFG when ``cfg_scale != 1`` (needs ``y``; the null class
    is ``null_class=1000``), autoguidance when ``guide_fn`` is given; ``guided_channels=3`` is SiT's rule.
    Other keyword options are those of ``Sampler``."""
    noise = as_float32(noise, "noise")
    if guidance is None:
        guidance = "auto" if guide_fn is not None else ("cfg" if cfg_scale not in (None, 1.0) else "none")
    channels = options.pop("channels", noise.shape[1] if noise.ndim >= 3 else 0)
    sampler = Sampler(method, steps, convention, path, prediction, seed=seed, guidance=guidance, cfg_scale=cfg_scale,
                      guided_channels=guided_channels, channels=channels if guided_channels else None, **options)
    with sampler:
        result = sampler.sample(model_fn, noise, y, guide_fn=guide_fn, trajectory=trajectory, first_sample=first_sample)
    return result if (trajectory or return_nfe) else result.x


def to_uint8(x: ArrayLike, convention: str = "sit") -> np.ndarray:
    """Decoded images [B, C, H, W] float → [B, H, W, C] uint8 with the codebase's rule (SiT clamp(127.5x+128);
    RAE clamp(x,0,1)·255; REPA clamp(255(x+1)/2); truncation)."""
    x = as_float32(x, "x")
    if x.ndim != 4:
        raise ValueError(f"x must be [B, C, H, W], got shape {x.shape}")
    b, c, h, w = x.shape
    out = np.empty((b, h, w, c), np.uint8)
    check(lib.mixflow_samples_to_uint8(_choice(_CONVENTIONS, convention, "convention"), fptr(x), b, c, h, w,
                                       out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))))
    return out


def _uint8_nhwc(images, convention) -> np.ndarray:
    """uint8 NHWC images as they are, or float NCHW converted with ``to_uint8``; C-contiguous."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = to_uint8(images, convention)
    images = np.ascontiguousarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C] uint8, got shape {images.shape}")
    return images


def save_npz(path: str | os.PathLike, images: ArrayLike, convention: str = "sit") -> None:
    """Writes an ADM-suite ``.npz`` (``arr_0`` uint8 [N, H, W, C]) atomically. ``images`` is either uint8 NHWC
    or float NCHW (converted with ``to_uint8`` and the convention's rule)."""
    images = _uint8_nhwc(images, convention)
    n, h, w, c = images.shape
    check(lib.mixflow_samples_write_npz(str(path).encode(), images.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), n, h, w, c))


def save_png(path: str | os.PathLike, images: ArrayLike, columns: int = 10, convention: str = "sit") -> None:
    """Writes a PNG grid of ``columns`` images per row (2-pixel white border; grey for 1 channel, RGB for 3)
    atomically. ``images`` is either uint8 NHWC or float NCHW (converted with ``to_uint8`` and the convention's
    rule)."""
    images = _uint8_nhwc(images, convention)
    n, h, w, c = images.shape
    check(lib.mixflow_samples_write_png(str(path).encode(), images.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
                                        n, h, w, c, int(columns)))


def pixel_unshuffle(x: ArrayLike, factor: int) -> np.ndarray:
    """PyTorch's ``pixel_unshuffle`` (space-to-depth) in numpy: [B, C, H·r, W·r] → [B, C·r², H, W] with
    out[:, c·r² + i·r + j, h, w] = x[:, c, h·r + i, w·r + j]. Invertible: ``pixel_shuffle`` undoes it."""
    x = np.asarray(x)
    r = int(factor)
    b, c, hh, ww = x.shape
    if r < 1 or hh % r or ww % r:
        raise ValueError(f"pixel_unshuffle: factor {r} must divide the height {hh} and width {ww}")
    return np.ascontiguousarray(x.reshape(b, c, hh // r, r, ww // r, r).transpose(0, 1, 3, 5, 2, 4)
                                .reshape(b, c * r * r, hh // r, ww // r))


def pixel_shuffle(x: ArrayLike, factor: int) -> np.ndarray:
    """PyTorch's ``pixel_shuffle`` (depth-to-space), the inverse of ``pixel_unshuffle``: [B, C·r², H, W] →
    [B, C, H·r, W·r]."""
    x = np.asarray(x)
    r = int(factor)
    b, cr, h, w = x.shape
    if r < 1 or cr % (r * r):
        raise ValueError(f"pixel_shuffle: channels {cr} must be a multiple of factor^2 = {r * r}")
    c = cr // (r * r)
    return np.ascontiguousarray(x.reshape(b, c, r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(b, c, h * r, w * r))


def equal_labels(n: int, num_classes: int = 1000, seed: int = 0) -> np.ndarray:
    """RAE's "equal" label sampling (``--label-sampling equal``): ``n`` int32 labels with n // num_classes of
    every class, the remaining n % num_classes drawn uniformly, all shuffled with a seeded Fisher-Yates
    permutation (libmixflow's Philox streams: the same seed gives the same labels everywhere). For FID-50K,
    ``equal_labels(50000)`` holds each of the 1000 classes exactly 50 times. Raises InvalidArgument for n outside
    [1, 2^31 - 1] or num_classes outside [1, 2^24]."""
    n, seed = integer(n, "equal_labels: n"), integer(seed, "equal_labels: seed", ctypes.c_uint64)
    num_classes = integer(num_classes, "equal_labels: num_classes", ctypes.c_int32)
    if not 1 <= n < 1 << 31:  # checked here too so that np.empty never sees a hostile size
        from .errors import InvalidArgument
        raise InvalidArgument(f"equal_labels: n must be in [1, 2147483647], got {n}")
    out = np.empty(int(n), np.int32)
    check(lib.mixflow_equal_labels(int(n), int(num_classes), int(seed), out.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))))
    return out

