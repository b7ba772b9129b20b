"""The native models (SiT, RAE's DiT^DH): forward, gradients and official state-dict names, through libmixflow."""
from __future__ import annotations

import ctypes
import os
import re

import numpy as np
from numpy.typing import ArrayLike

from ._handle import HandleOwner
from . import _lib
from . import _types as T
from ._args import int32_array
from ._lib import check, fptr, lib
from .transport import Transport, as_float32

_ARCH = re.compile(r"^SiT-(S|B|L|XL)/(2|4|8)$", re.I)
_DITDH = re.compile(r"^DiTDH(-XL|-S)?$", re.I)


def _labels(y, batch: int, num_classes: int) -> np.ndarray:
    """int32 labels; None means the null (unconditional) class for every sample."""
    if y is None:
        return np.full(batch, num_classes, np.int32)
    return int32_array(y, "y", (batch,))


class Model(HandleOwner):
    """A native SiT or DiT^DH. Build one with ``Model.create("SiT-S/2", input_size=32, ...)`` or
    ``Model.create("DiTDH-S")`` (official from-scratch initialisation; DiT^DH defaults to the 768×16×16
    RAE latent), a custom SiT with ``arch=None, depth=..., hidden=..., heads=..., patch=...`` or a custom
    DiT^DH with ``arch="DiTDH", depth=..., hidden=..., heads=..., head_depth=..., head_hidden=..., head_heads=...``;
    then ``load_state_dict`` official weights (numpy arrays under the PyTorch names)."""

    def __init__(self, params: T.ModelParams | None, _handle=None):
        if _handle is None:
            handle = _lib.MD()
            check(lib.mixflow_model_create(ctypes.byref(params), ctypes.byref(handle)))
        else:
            handle = _handle
        self._own(handle, lib.mixflow_model_free)
        p = T.ModelParams()
        check(lib.mixflow_model_get_params(handle, ctypes.byref(p), ctypes.sizeof(p)))
        self.input_size, self.in_channels, self.num_classes = p.input_size, p.in_channels, p.num_classes
        self.learn_sigma = bool(p.learn_sigma)
        self.arch = p.arch.decode()
        self.depth, self.hidden, self.heads, self.patch = p.depth, p.hidden, p.heads, p.patch
        self.head_depth, self.head_hidden, self.head_heads = p.head_depth, p.head_hidden, p.head_heads

    @classmethod
    def _from_handle(cls, handle) -> "Model":
        return cls(None, _handle=handle)

    @classmethod
    def create(cls, arch: str | None = "SiT-XL/2", *, input_size: int | None = None, in_channels: int | None = None,
               num_classes: int | None = None, learn_sigma: bool | None = None, seed: int | None = None,
               class_dropout: float | None = None, depth: int | None = None, hidden: int | None = None,
               heads: int | None = None, patch: int | None = None, num_threads: int | None = None,
               head_depth: int | None = None, head_hidden: int | None = None, head_heads: int | None = None) -> "Model":
        """Every argument left at None takes the C library's default (``mixflow_model_default_params``: 1000
        classes, learn_sigma, class dropout 0.1, seed 0, 32x32x4 inputs), except that a DiT^DH's
        ``input_size``/``in_channels`` default to its published 16/768 (DINOv2-B RAE latent at 256 px);
        ``learn_sigma`` only applies to SiT."""
        ditdh = bool(arch) and _DITDH.match(arch) is not None
        p = T.ModelParams()
        check(lib.mixflow_model_default_params(ctypes.byref(p), ctypes.sizeof(p)))
        name = (arch or "").encode()
        if len(name) >= T.MODEL_ARCH_SIZE:
            raise ValueError(f"arch must be shorter than {T.MODEL_ARCH_SIZE} bytes, got {arch!r}")
        p.arch = name
        if ditdh:
            input_size = 16 if input_size is None else input_size
            in_channels = 768 if in_channels is None else in_channels
            learn_sigma = False
        given = dict(depth=depth, hidden=hidden, heads=heads, patch=patch, input_size=input_size,
                     in_channels=in_channels, num_classes=num_classes, seed=seed, class_dropout=class_dropout,
                     num_threads=num_threads, head_depth=head_depth, head_hidden=head_hidden, head_heads=head_heads,
                     learn_sigma=None if learn_sigma is None else int(bool(learn_sigma)))
        for field, value in given.items():
            if value is not None:
                setattr(p, field, value)
        return cls(p)

    @classmethod
    def from_onnx(cls, path: str | os.PathLike, heads: int | None = None, num_threads: int | None = None) -> "Model":
        """Loads a SiT or a DiT^DH from an ONNX file (ours, a converted checkpoint, or torch.onnx.export of the
        official SiT module). The architecture comes from the file's model.* metadata, else from the tensor
        shapes; ``heads`` is needed only for a SiT when neither the metadata nor the official widths
        (384/768/1024/1152) give it (a DiT^DH's heads come from its RoPE tables). A DiT^DH file must hold every
        official tensor under its exact name; without metadata, equal encoder and head widths are refused.
        ``model.ignored_tensors`` lists skipped initializers (REPA projectors, graph constants) and
        ``model.onnx_metadata`` the file's metadata."""
        p = T.ModelLoadParams()
        check(lib.mixflow_model_load_default_params(ctypes.byref(p), ctypes.sizeof(p)))
        if heads is not None:
            p.heads = int(heads)
        if num_threads is not None:
            p.num_threads = num_threads
        handle = _lib.MD()
        check(lib.mixflow_model_load_onnx(os.fsencode(path), ctypes.byref(p), ctypes.byref(handle)))
        return cls._from_handle(handle)

    def save_onnx(self, path: str | os.PathLike, graph: bool | None = None, external_threshold: int | None = None,
                  metadata: dict | None = None, transport: Transport | None = None, step: int | None = None) -> None:
        """Writes the model as ONNX (atomically): official-name initializers + model.* metadata, and with
        ``graph`` (default) the runnable forward graph (inputs x [B,C,H,W] float32, t [B] float32, y [B] int64; output
        ``out``: a SiT's first C channels, a DiT^DH's velocity) for onnxruntime. Tensors of at least
        ``external_threshold`` bytes (default 1 MiB) go to ``<path>.data`` (-1 = all inline). ``transport`` (a Transport) adds its transport.* settings, ``step`` mixflow.step,
        ``metadata`` any other str -> str pairs."""
        p = T.ModelSaveParams()
        check(lib.mixflow_model_save_default_params(ctypes.byref(p), ctypes.sizeof(p)))
        if graph is not None:
            p.graph = int(bool(graph))
        if external_threshold is not None:
            p.external_threshold = external_threshold
        if step is not None:
            p.step = int(step)
        if transport is not None:
            p.transport = ctypes.cast(transport._ptr, _lib.TR)
        items = list((metadata or {}).items())
        keys = (ctypes.c_char_p * max(1, len(items)))(*[str(k).encode() for k, _ in items])
        values = (ctypes.c_char_p * max(1, len(items)))(*[str(v).encode() for _, v in items])
        p.metadata_keys, p.metadata_values, p.num_metadata = keys, values, len(items)
        check(lib.mixflow_model_save_onnx(self._ptr, os.fsencode(path), ctypes.byref(p)))

    def _text(self, fn) -> str:
        n = ctypes.c_size_t()
        check(fn(self._ptr, None, 0, ctypes.byref(n)))
        buf = ctypes.create_string_buffer(n.value + 1)
        check(fn(self._ptr, buf, len(buf), ctypes.byref(n)))
        return buf.raw[:n.value].decode("utf-8", "replace")

    @property
    def onnx_metadata(self) -> dict[str, str]:
        """The metadata of the file this model was loaded from (its model.* keys for a created model)."""
        lines = self._text(lib.mixflow_model_metadata).splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    @property
    def ignored_tensors(self) -> list[str]:
        """Initializers ``from_onnx`` skipped (REPA ``projectors.*``, a graph's constants)."""
        return self._text(lib.mixflow_model_ignored_tensors).splitlines()

    # ---- handle -----------------------------------------------------------------------------------------




    # ---- parameters ---------------------------------------------------------------------------------------
    @property
    def num_params(self) -> int:
        return int(lib.mixflow_model_num_params(self._ptr))

    @property
    def feature_size(self) -> int:
        """Floats of REPA target features per sample (tokens · Σ z_dims) for a model with projectors, else 0."""
        return int(lib.mixflow_model_feature_size(self._ptr))

    def tensor_info(self) -> list[tuple[str, tuple[int, ...], bool]]:
        """(official name, shape, trainable) of every tensor, in PyTorch state-dict order."""
        out = []
        for i in range(lib.mixflow_model_num_tensors(self._ptr)):
            name = ctypes.c_char_p()
            shape = (ctypes.c_int64 * T.MODEL_MAX_NDIM)()
            ndim, trainable = ctypes.c_int32(), ctypes.c_int32()
            check(lib.mixflow_model_tensor_info(self._ptr, i, ctypes.byref(name), shape, ctypes.byref(ndim),
                                                ctypes.byref(trainable)))
            out.append((name.value.decode(), tuple(shape[:ndim.value]), bool(trainable.value)))
        return out

    def _copy_out(self, fn, name: str, shape) -> np.ndarray:
        arr = np.empty(shape, np.float32)
        dims = (ctypes.c_int64 * len(shape))(*shape)
        check(fn(self._ptr, name.encode(), dims, len(shape), fptr(arr)))
        return arr

    def state_dict(self) -> dict[str, np.ndarray]:
        """Official name -> float32 array (copies)."""
        return {name: self._copy_out(lib.mixflow_model_get_tensor, name, shape) for name, shape, _ in self.tensor_info()}

    def load_state_dict(self, state: dict, strict: bool = True) -> dict:
        """Copies arrays in by official name. Returns {"missing": [...], "unexpected": [...]}; with
        ``strict`` either list being non-empty raises. Shapes must match exactly. A REPA checkpoint's
        ``projectors.*`` entries are reported as unexpected (use strict=False)."""
        info = {name: shape for name, shape, _ in self.tensor_info()}
        state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
        missing = [k for k in info if k not in state]
        unexpected = [k for k in state if k not in info]
        if strict and (missing or unexpected):
            raise KeyError(f"state dict mismatch: missing {missing[:10]}{'...' if len(missing) > 10 else ''}, "
                           f"unexpected {unexpected[:10]}{'...' if len(unexpected) > 10 else ''}")
        for name in info:
            if name not in state:
                continue
            arr = as_float32(state[name], name)
            dims = (ctypes.c_int64 * arr.ndim)(*arr.shape)
            check(lib.mixflow_model_set_tensor(self._ptr, name.encode(), fptr(arr), dims, arr.ndim))
        return {"missing": missing, "unexpected": unexpected}

    # ---- compute ---------------------------------------------------------------------------------------
    def _inputs(self, x, t, y):
        x = as_float32(x, "x")
        shape = (self.in_channels, self.input_size, self.input_size)
        if x.ndim != 4 or x.shape[1:] != shape:
            raise ValueError(f"x must have shape [B, {shape[0]}, {shape[1]}, {shape[2]}], got {x.shape}")
        b = x.shape[0]
        t = np.ascontiguousarray(np.broadcast_to(np.asarray(t, np.float32), (b,)))
        return x, t, _labels(y, b, self.num_classes), b

    def forward(self, x: ArrayLike, t: ArrayLike | float, y: ArrayLike | None = None) -> np.ndarray:
        """Velocity (or whatever the model predicts) for x [B, C, H, W] at times t [B] (or a scalar) with
        labels y [B] (None = null class). Output [B, C, H, W] (learn_sigma half dropped, as upstream)."""
        x, t, y, b = self._inputs(x, t, y)
        out = np.empty_like(x)
        check(lib.mixflow_model_forward(self._ptr, fptr(x), fptr(t), y.ctypes.data_as(_lib.IP), b, fptr(out)))
        return out

    __call__ = forward

    def gradients(self, x: ArrayLike, t: ArrayLike | float, y: ArrayLike | None, target: ArrayLike,
                  with_input_grad: bool = False) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], np.ndarray, float]:
        """Gradients of the mean squared error mean((forward(x, t, y) - target)^2) with respect to every
        trainable parameter: {official name: array}. With ``with_input_grad`` also returns dL/dx and the loss."""
        x, t, y, b = self._inputs(x, t, y)
        target = as_float32(target, "target")
        if target.shape != x.shape:
            raise ValueError(f"target must have shape {x.shape}, got {target.shape}")
        loss = ctypes.c_float()
        dx = np.empty_like(x) if with_input_grad else None
        check(lib.mixflow_model_gradients(self._ptr, fptr(x), fptr(t), y.ctypes.data_as(_lib.IP), fptr(target), b,
                                          ctypes.byref(loss), fptr(dx)))
        grads = {name: self._copy_out(lib.mixflow_model_get_grad, name, shape)
                 for name, shape, trainable in self.tensor_info() if trainable}
        return (grads, dx, float(loss.value)) if with_input_grad else grads
