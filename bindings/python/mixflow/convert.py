"""Converts checkpoints between PyTorch (.pt/.pth, read safely without torch), .safetensors, .npz and ONNX tensor
files (named float tensors + metadata, the format libmixflow's mixflow_tensor_file_load reads).

    python -m mixflow.convert SiT-XL-2-256x256.pt sit.onnx --arch SiT-XL/2   # + model.* keys: Model.from_onnx
    python -m mixflow.convert last.pt repa.onnx --use ema          # a training checkpoint {model, ema, opt, args}
    python -m mixflow.convert sit.onnx sit.safetensors              # and back, to .npz or .safetensors
    python -m mixflow.convert stage2_model.pt dh.onnx --arch DiTDH-XL --latent 768x16x16   # RAE stage 2

Training checkpoints: the "ema" weights are taken by default (SiT's find_model and REPA do the same), "model"
with --use model; `module.` (DDP) and `_orig_mod.` (torch.compile) prefixes are stripped; `args` (an argparse
Namespace) goes into the metadata as JSON. Floating tensors are written as float32; integer and bool tensors
keep their type. ONNX is encoded by a small built-in protobuf writer (pip `onnx` is not needed; it is used for
reading ONNX when installed); tensors of at least --external-threshold bytes go to `<DST>.data` next to the model.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import struct
import sys

import numpy as np

from . import torchfile
from .torchfile import CheckpointFormatError, UnsafeCheckpointError, _atomic

__all__ = ["load_state_dict", "read_onnx", "write_onnx", "write_npz", "ditdh_shapes", "ditdh_metadata", "convert", "main"]

PREFIXES = ("module.", "_orig_mod.")
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


# ---- reading ---------------------------------------------------------------------------------------------
def load_state_dict(src, use=None, allow_opaque=False):
    """(OrderedDict name -> array, metadata dict) from any supported source file."""
    src = os.fspath(src)
    if src.endswith(".onnx"):
        return read_onnx(src)
    if src.endswith((".safetensors", ".npz")):
        tensors, meta = torchfile.read_tensors(src)
        return _clean(tensors, src), dict(meta)
    if not src.endswith(TORCH_SUFFIXES):
        raise CheckpointFormatError("%s: unknown source format (expected %s, .safetensors, .npz or .onnx)"
                                    % (src, ", ".join(TORCH_SUFFIXES)))
    obj = torchfile.load(src, allow_opaque=allow_opaque)
    return _pick(obj, use, src)


def _pick(obj, use, src):
    meta = collections.OrderedDict()
    if not isinstance(obj, dict):
        raise CheckpointFormatError("%s holds a %s, not a state dict or checkpoint dict" % (src, type(obj).__name__))
    if use is not None or "ema" in obj or "model" in obj:
        key = use or ("ema" if "ema" in obj else "model")
        if key not in obj or not isinstance(obj[key], dict):
            raise CheckpointFormatError("%s has no %r state dict; its keys are %s" % (src, key, sorted(map(str, obj))))
        meta["mixflow.source_key"] = key
        if "args" in obj:
            meta["mixflow.train_args"] = json.dumps(_jsonable(obj["args"]), sort_keys=True)
        for k in ("steps", "step", "train_steps", "epoch"):
            if isinstance(obj.get(k), int):
                meta["mixflow.step" if k != "epoch" else "mixflow.epoch"] = str(obj[k])
        state = obj[key]
    elif "state_dict" in obj and isinstance(obj["state_dict"], dict):
        state = obj["state_dict"]
    else:
        state = obj
    return _clean(state, src), meta


def _clean(state, src):
    """Strips wrapper prefixes, keeps arrays, refuses anything else (a nested dict is not a state dict)."""
    out = collections.OrderedDict()
    for name, value in state.items():
        if not isinstance(name, str):
            raise CheckpointFormatError("%s: state-dict key %r is not a string" % (src, name))
        if not isinstance(value, np.ndarray):
            raise CheckpointFormatError("%s: %r is a %s, not a tensor; pass --use to pick the state dict"
                                        % (src, name, type(value).__name__))
        stripped = name
        while stripped.startswith(PREFIXES):
            stripped = stripped[len(next(p for p in PREFIXES if stripped.startswith(p))):]
        if stripped in out:
            raise CheckpointFormatError("%s: %r and another key both become %r after stripping prefixes"
                                        % (src, name, stripped))
        out[stripped] = value
    if not out:
        raise CheckpointFormatError("%s holds no tensors" % src)
    return out


def _jsonable(v, depth=0):
    if depth > 20:
        return "..."
    if isinstance(v, dict):
        return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x, depth + 1) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 16 else "<array %s %s>" % (v.dtype, list(v.shape))
    return repr(v)


def _float32(tensors):
    return collections.OrderedDict((k, v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in tensors.items())


# ---- ONNX ------------------------------------------------------------------------------------------------
def read_onnx(path):
    """(OrderedDict name -> array, metadata) of an ONNX model's initializers, external data included."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # the built-in reader covers what write_onnx and common exporters produce
        return _read_onnx_minimal(path)
    model = onnx.load(os.fspath(path), load_external_data=False)
    base = os.path.dirname(os.path.abspath(path))
    out = collections.OrderedDict()
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            _check_location(base, {e.key: e.value for e in t.external_data}.get("location", ""), path, t.name)
        out[t.name] = np.asarray(numpy_helper.to_array(t, base_dir=base))
    return out, {p.key: p.value for p in model.metadata_props}


def _check_location(base, location, path, name):
    """External locations must stay inside the model's folder (the C reader's rule)."""
    real = os.path.realpath(os.path.join(base, location))
    parts = location.replace("\\", "/").split("/")
    if not location or os.path.isabs(location) or ".." in parts or not real.startswith(os.path.realpath(base) + os.sep):
        raise CheckpointFormatError("%s: tensor %r has external location %r outside the model's folder"
                                    % (path, name, location))
    return real


def write_onnx(path, tensors, metadata=None, external_threshold=1 << 20):
    """Writes tensors as ONNX initializers (IR 8, opset 17, no nodes); tensors of at least `external_threshold`
    bytes go to `<path>.data` (64-byte aligned; -1 = none). Both files are written atomically, data first.
    The protobuf is encoded here (the subset of onnx.proto we need), so pip `onnx` is not required; the
    tests check the result with pip onnx."""
    path = os.fspath(path)
    data_name = os.path.basename(path) + ".data"
    graph = [_field(2, b"mixflow")]
    blobs, offset = [], 0
    for name, a in tensors.items():
        a = np.require(a, requirements="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        if a.dtype not in _ONNX_TYPES:
            raise ValueError("tensor %r has dtype %s, which ONNX cannot store" % (name, a.dtype))
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        t = b"".join(_int_field(1, d) for d in a.shape) + _int_field(2, _ONNX_TYPES[a.dtype]) + _field(8, name.encode())
        if 0 <= external_threshold <= len(raw):
            pad = -offset % 64
            blobs.append(b"\0" * pad + raw)
            offset += pad
            for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(len(raw)))):
                t += _field(13, _field(1, k.encode()) + _field(2, v.encode()))
            t += _int_field(14, 1)  # data_location = EXTERNAL
            offset += len(raw)
        else:
            t += _field(9, raw)
        graph.append(_field(5, t))
    model = _int_field(1, 8) + _field(2, b"mixflow.convert") + _field(8, _field(1, b"") + _int_field(2, 17))
    model += _field(7, b"".join(graph))
    for k, v in (metadata or {}).items():
        model += _field(14, _field(1, str(k).encode()) + _field(2, str(v).encode()))
    if len(model) >= 1 << 31:
        raise ValueError("the inline part is %d bytes; protobuf allows < 2 GiB: lower --external-threshold" % len(model))
    if blobs:
        with _atomic(os.path.join(os.path.dirname(os.path.abspath(path)), data_name)) as f:
            for b in blobs:
                f.write(b)
    with _atomic(path) as f:
        f.write(model)


# Protobuf wire format (field numbers from onnx.proto: ModelProto, GraphProto, TensorProto, StringStringEntryProto).
def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1  # int64 fields are two's complement on the wire
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, payload):
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _int_field(num, value):
    return _varint(num << 3) + _varint(value)


_ONNX_TYPES = {np.dtype("float32"): 1, np.dtype("uint8"): 2, np.dtype("int8"): 3, np.dtype("uint16"): 4,
               np.dtype("int16"): 5, np.dtype("int32"): 6, np.dtype("int64"): 7, np.dtype("bool"): 9,
               np.dtype("float16"): 10, np.dtype("float64"): 11, np.dtype("uint32"): 12, np.dtype("uint64"): 13}
_NUMPY_TYPES = {v: k for k, v in _ONNX_TYPES.items()}


def _read_varint(buf, i):
    n = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise CheckpointFormatError("truncated or overlong varint at byte %d" % i)
        b = buf[i]
        n |= (b & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not b & 0x80:
            return n, i


def _fields(buf):
    """(field number, wire type, value) of one message; length-delimited values are memoryview slices."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
        elif wire == 2:
            n, i = _read_varint(buf, i)
            if n > len(buf) - i:
                raise CheckpointFormatError("field %d claims %d bytes at byte %d, past the end" % (num, n, i))
            v, i = buf[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            if i + n > len(buf):
                raise CheckpointFormatError("truncated fixed field at byte %d" % i)
            v, i = bytes(buf[i:i + n]), i + n
        else:
            raise CheckpointFormatError("unsupported wire type %d at byte %d" % (wire, i))
        yield num, wire, v


def _read_onnx_minimal(path):
    """Initializers (raw_data, float_data, external) and metadata without pip onnx."""
    with open(path, "rb") as f:
        buf = memoryview(f.read())
    base = os.path.dirname(os.path.abspath(path))
    tensors, meta = collections.OrderedDict(), {}
    for num, _w, v in _fields(buf):
        if num == 14:
            kv = {n: bytes(x).decode() for n, _, x in _fields(v)}
            meta[kv.get(1, "")] = kv.get(2, "")
        elif num == 7:
            for gnum, _, tv in _fields(v):
                if gnum == 5:
                    name, arr = _tensor(tv, base, path)
                    tensors[name] = arr
    return tensors, meta


def _tensor(buf, base, path):
    dims, dtype, name, raw, floats, ext, external = [], 1, "", None, [], {}, False
    for num, wire, v in _fields(buf):
        if num == 1:
            dims += [v] if wire == 0 else _packed_varints(v)
        elif num == 2:
            dtype = v
        elif num == 8:
            name = bytes(v).decode()
        elif num == 9:
            raw = bytes(v)
        elif num == 4:
            floats += list(np.frombuffer(bytes(v), "<f4")) if wire == 2 else [struct.unpack("<f", v)[0]]
        elif num == 13:
            kv = {n: bytes(x).decode() for n, _, x in _fields(v)}
            ext[kv.get(1, "")] = kv.get(2, "")
        elif num == 14:
            external = v == 1
    if dtype not in _NUMPY_TYPES:
        raise CheckpointFormatError("%s: tensor %r has ONNX data type %d, not supported without pip onnx" % (path, name, dtype))
    dims = [d - (1 << 64) if d >= 1 << 63 else d for d in dims]
    if any(d < 0 for d in dims):
        raise CheckpointFormatError("%s: tensor %r has negative dims %r" % (path, name, dims))
    np_dtype = _NUMPY_TYPES[dtype].newbyteorder("<")
    need = int(np.prod(dims, dtype=object)) * np_dtype.itemsize
    if external:
        real = _check_location(base, ext.get("location", ""), path, name)
        off = int(ext.get("offset", "0"))
        with open(real, "rb") as f:
            f.seek(off)
            raw = f.read(need)
    elif raw is None and floats and dtype == 1:
        raw = np.asarray(floats, "<f4").tobytes()
    if raw is None or len(raw) != need:
        raise CheckpointFormatError("%s: tensor %r has %d data bytes, dims %r need %d"
                                    % (path, name, 0 if raw is None else len(raw), dims, need))
    return name, np.frombuffer(raw, np_dtype).reshape(dims).astype(np_dtype.newbyteorder("="))


def _packed_varints(buf):
    out, i = [], 0
    while i < len(buf):
        v, i = _read_varint(buf, i)
        out.append(v)
    return out


# ---- npz / dispatch / CLI --------------------------------------------------------------------------------
def write_npz(path, tensors):
    with _atomic(path) as f:
        np.savez(f, **tensors)  # a file object: numpy does not append ".npz" to the name


# depth, hidden, heads of the official SiT sizes (docs/exactness.md §5.1)
_SIT_SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def sit_metadata(arch, tensors):
    """The model.* metadata libmixflow reads (Model.from_onnx) for an official SiT name such as "SiT-XL/2",
    checked against the state dict: heads come from the name (no tensor shape holds them), input size,
    channels, classes and learn_sigma from the tensors. Raises ValueError when the tensors do not fit."""
    m = re.fullmatch(r"SiT-(S|B|L|XL)[/-](2|4|8)", arch, re.I)
    if not m:
        raise ValueError("--arch must be one of SiT-{S,B,L,XL}/{2,4,8}, got %r" % arch)
    depth, hidden, heads = _SIT_SIZES[m.group(1).upper()]
    patch = int(m.group(2))

    def shape(name):
        if name not in tensors:
            raise ValueError("--arch %s: the state dict has no %r, so it is not a SiT checkpoint" % (arch, name))
        return tuple(tensors[name].shape)

    w = shape("x_embedder.proj.weight")
    if len(w) != 4 or w[0] != hidden or w[2:] != (patch, patch):
        raise ValueError("--arch %s needs x_embedder.proj.weight [%d, C, %d, %d], got %s" % (arch, hidden, patch, patch, list(w)))
    channels = w[1]
    tokens = shape("pos_embed")[1]
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise ValueError("--arch %s: pos_embed has %d tokens, not a square grid" % (arch, tokens))
    rows = shape("final_layer.linear.weight")[0]
    if rows not in (patch * patch * 2 * channels, patch * patch * channels):
        raise ValueError("--arch %s: final_layer.linear.weight has %d rows, expected %d (learn_sigma) or %d"
                         % (arch, rows, patch * patch * 2 * channels, patch * patch * channels))
    blocks = {k.split(".")[1] for k in tensors if k.startswith("blocks.")}
    if len(blocks) != depth:
        raise ValueError("--arch %s has %d blocks, the state dict %d" % (arch, depth, len(blocks)))
    return collections.OrderedDict([
        ("model.arch", "SiT"), ("model.depth", str(depth)), ("model.hidden", str(hidden)), ("model.heads", str(heads)),
        ("model.patch", str(patch)), ("model.input_size", str(grid * patch)), ("model.in_channels", str(channels)),
        ("model.num_classes", str(shape("y_embedder.embedding_table.weight")[0] - 1)),
        ("model.learn_sigma", "1" if rows == patch * patch * 2 * channels else "0"),
        ("model.class_dropout", "0.1"), ("model.mlp_ratio", "4")])


# encoder depth, hidden, heads of the official DiT^DH sizes; both heads are 2 blocks of 2048 with 16 heads (docs/exactness.md §6.1)
_DITDH_SIZES = {"XL": (28, 1152, 16), "S": (12, 384, 6)}
_DITDH_HEAD = (2, 2048, 16)


def ditdh_shapes(depth, hidden, heads, head_depth, head_hidden, head_heads, channels, size, num_classes=1000):
    """The DiT^DH state dict (docs/exactness.md §6.5) as an OrderedDict name -> shape in PyTorch order, from the formulas:
    SwiGLU width int(2/3 * 4D), RoPE tables [tokens, head_dim], s_projector only when the widths differ."""
    de, dh, tokens = hidden, head_hidden, size * size
    out = collections.OrderedDict()
    out["pos_embed"] = (1, tokens, de)
    out["x_embedder.proj.weight"], out["x_embedder.proj.bias"] = (dh, channels, 1, 1), (dh,)
    out["s_embedder.proj.weight"], out["s_embedder.proj.bias"] = (de, channels, 1, 1), (de,)
    if de != dh:
        out["s_projector.weight"], out["s_projector.bias"] = (dh, de), (dh,)
    out["t_embedder.W"] = (256,)
    out["t_embedder.mlp.0.weight"], out["t_embedder.mlp.0.bias"] = (de, 512), (de,)
    out["t_embedder.mlp.2.weight"], out["t_embedder.mlp.2.bias"] = (de, de), (de,)
    out["y_embedder.embedding_table.weight"] = (num_classes + 1, de)
    out["final_layer.norm_final.weight"] = (dh,)
    out["final_layer.linear.weight"], out["final_layer.linear.bias"] = (channels, dh), (channels,)
    out["final_layer.adaLN_modulation.1.weight"], out["final_layer.adaLN_modulation.1.bias"] = (2 * dh, dh), (2 * dh,)
    for rope, d, h in (("enc_feat_rope", de, heads), ("dec_feat_rope", dh, head_heads)):
        out[rope + ".freqs_cos"] = out[rope + ".freqs_sin"] = (tokens, d // h)
    for i in range(depth + head_depth):
        d = de if i < depth else dh
        hs = (2 * (4 * d)) // 3
        p = "blocks.%d." % i
        for name, shape in (("norm1.weight", (d,)), ("norm2.weight", (d,)), ("attn.qkv.weight", (3 * d, d)),
                            ("attn.qkv.bias", (3 * d,)), ("attn.proj.weight", (d, d)), ("attn.proj.bias", (d,)),
                            ("mlp.w12.weight", (2 * hs, d)), ("mlp.w12.bias", (2 * hs,)), ("mlp.w3.weight", (d, hs)),
                            ("mlp.w3.bias", (d,)), ("adaLN_modulation.1.weight", (6 * d, d)),
                            ("adaLN_modulation.1.bias", (6 * d,))):
            out[p + name] = shape
    return out


def _parse_latent(latent):
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", str(latent))
    if not m or int(m.group(2)) != int(m.group(3)) or min(int(g) for g in m.groups()) <= 0:
        raise ValueError("--latent must be CxSxS with positive C and S (square latent), e.g. 768x16x16; got %r" % (latent,))
    return int(m.group(1)), int(m.group(2))


def ditdh_metadata(arch, tensors, latent=None):
    """The model.* metadata libmixflow reads for "DiTDH-XL" or "DiTDH-S" (the same keys as the Swift
    DiTDHModel.architectureMetadata), after checking every tensor against the DiT^DH table for the latent
    `latent` ("CxSxS", e.g. "768x16x16"; default: channels from s_embedder.proj.weight, S from pos_embed) and
    the number of classes in y_embedder. Raises ValueError listing missing, unexpected and mis-shaped tensors."""
    m = re.fullmatch(r"DiTDH-(XL|S)", arch, re.I)
    if not m:
        raise ValueError("--arch for a DiT^DH must be DiTDH-XL or DiTDH-S, got %r" % arch)
    depth, hidden, heads = _DITDH_SIZES[m.group(1).upper()]
    head_depth, head_hidden, head_heads = _DITDH_HEAD
    if latent is not None:
        channels, size = _parse_latent(latent)
    else:
        w, pos = tensors.get("s_embedder.proj.weight"), tensors.get("pos_embed")
        if w is None or pos is None or w.ndim != 4 or pos.ndim != 3 or math.isqrt(pos.shape[1]) ** 2 != pos.shape[1]:
            raise ValueError("--arch %s: cannot read the latent shape from s_embedder.proj.weight and pos_embed; "
                             "pass --latent CxSxS (e.g. 768x16x16)" % arch)
        channels, size = int(w.shape[1]), math.isqrt(pos.shape[1])
    table = tensors.get("y_embedder.embedding_table.weight")
    num_classes = int(table.shape[0]) - 1 if table is not None and table.ndim == 2 and table.shape[0] >= 2 else 1000
    want = ditdh_shapes(depth, hidden, heads, head_depth, head_hidden, head_heads, channels, size, num_classes)
    missing = [k for k in want if k not in tensors]
    unexpected = [k for k in tensors if k not in want]
    misshaped = ["%s is %s, needs %s" % (k, list(tensors[k].shape), list(want[k]))
                 for k in want if k in tensors and tuple(tensors[k].shape) != want[k]]
    if missing or unexpected or misshaped:
        parts = ["%s (%d): %s%s" % (title, len(items), ", ".join(items[:12]), ", ..." if len(items) > 12 else "")
                 for title, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if items]
        raise ValueError("--arch %s (latent %dx%dx%d, %d classes): the state dict does not fit: %s"
                         % (arch, channels, size, size, num_classes, "; ".join(parts)))
    return collections.OrderedDict([
        ("model.arch", "DiTDH"), ("model.depth", str(depth)), ("model.hidden", str(hidden)), ("model.heads", str(heads)),
        ("model.head_depth", str(head_depth)), ("model.head_hidden", str(head_hidden)),
        ("model.head_heads", str(head_heads)), ("model.input_size", str(size)), ("model.in_channels", str(channels)),
        ("model.num_classes", str(num_classes)), ("model.class_dropout", "0.1")])


def convert(src, dst, use=None, arch=None, external_threshold=1 << 20, allow_opaque=False, latent=None):
    """Converts `src` to `dst` (format from the extension); returns (number of tensors, metadata written)."""
    tensors, meta = load_state_dict(src, use=use, allow_opaque=allow_opaque)
    tensors = _float32(tensors)
    meta = collections.OrderedDict(meta)
    if arch:
        meta["mixflow.arch"] = arch
        meta.update(ditdh_metadata(arch, tensors, latent) if arch.upper().startswith("DITDH") else sit_metadata(arch, tensors))
    elif latent is not None:
        raise ValueError("--latent is only used with --arch DiTDH-XL/DiTDH-S")
    dst = os.fspath(dst)
    if dst.endswith(".onnx"):
        write_onnx(dst, tensors, meta, external_threshold)
    elif dst.endswith(".safetensors"):
        torchfile.write_safetensors(dst, tensors, meta)
    elif dst.endswith(".npz"):
        write_npz(dst, tensors)
    else:
        raise ValueError("%s: unknown destination format (expected .onnx, .safetensors or .npz)" % dst)
    return len(tensors), meta


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mixflow.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--use", choices=["ema", "model"], help="which weights of a training checkpoint (default: ema)")
    p.add_argument("--arch", help='official architecture, SiT-XL/2 (any SiT-{S,B,L,XL}/{2,4,8}) or DiTDH-XL / DiTDH-S: '
                   'checked against the tensors and stored as model.* metadata (what Model.from_onnx reads) and "mixflow.arch"')
    p.add_argument("--latent", help="DiT^DH latent CxSxS the tensors are checked against, e.g. 768x16x16 (256 px) or "
                   "768x32x32 (512 px); default: read from s_embedder.proj.weight and pos_embed")
    p.add_argument("--external-threshold", type=int, default=1 << 20,
                   help="ONNX: tensors of at least this many bytes go to DST.data (-1: none; default 1 MiB)")
    p.add_argument("--allow-opaque", action="store_true",
                   help="turn unknown pickle globals into inert placeholders instead of refusing the file")
    a = p.parse_args(argv)
    try:
        n, meta = convert(a.src, a.dst, a.use, a.arch, a.external_threshold, a.allow_opaque, a.latent)
    except (UnsafeCheckpointError, CheckpointFormatError, ValueError, OSError) as e:
        print("mixflow.convert: error: %s" % e, file=sys.stderr)
        return 2
    print("wrote %d tensors to %s%s" % (n, a.dst, " (%s)" % ", ".join(meta) if meta else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
