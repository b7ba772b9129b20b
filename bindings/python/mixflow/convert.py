"""Converts checkpoints between PyTorch (.pt/.pth, read safely without torch), .safetensors, .npz and ONNX tensor
files (named float tensors + metadata, the format libmixflow's mixflow_tensor_file_load reads).

    python -m mixflow.convert SiT-XL-2-256x256.pt sit.onnx --arch SiT-XL/2   # + model.* keys: Model.from_onnx
    python -m mixflow.convert last.pt repa.onnx --use ema          # a training checkpoint {model, ema, opt, args}
    python -m mixflow.convert sit.onnx sit.safetensors              # and back, to .npz or .safetensors
    python -m mixflow.convert stage2_model.pt dh.onnx --arch DiTDH-XL --latent 768x16x16   # RAE stage 2
    python -m mixflow.convert last.pt repa.onnx --arch REPA-SiT-XL/2   # REPA {model, ema, opt, args}, projectors kept

Training checkpoints: the "ema" weights are taken by default (SiT's find_model and REPA do the same), "model"
with --use model; `module.` (DDP) and `_orig_mod.` (torch.compile) prefixes are stripped; `args` (an argparse
Namespace) goes into the metadata as JSON. Floating tensors are written as float32; integer and bool tensors
keep their type. ONNX is read and written by libmixflow (pip `onnx` is not needed); tensors of at least
--external-threshold bytes go to an external data file next to the model (`<DST>.data`, or `<DST>.<save id>.data`
while an earlier save's data file is still in use).
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import sys

import numpy as np

from . import torchfile
from .errors import MixflowError
from .tensorfile import TensorFile, write_tensor_file
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
# Through libmixflow's validated reader and atomic writer (the C API's tensor files): one ONNX codec for the
# library and the converter.
def read_onnx(path):
    """(OrderedDict name -> array, metadata) of an ONNX model's initializers in their stored dtypes,
    external data included (hostile files are refused by the library)."""
    f = TensorFile(path)
    return collections.OrderedDict((name, f.read_stored(name)) for name in f.names()), f.metadata()


def write_onnx(path, tensors, metadata=None, external_threshold=1 << 20):
    """Writes tensors as ONNX initializers (IR 8, opset 17, no nodes) in their own dtypes; tensors of at
    least `external_threshold` bytes go to an external data file next to it (64-byte aligned; -1 = none).
    The model and its data file form one save: a kill mid-write leaves the previous pair loadable."""
    write_tensor_file(path, tensors, metadata, external_threshold, exact=True)


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


def repa_metadata(arch, tensors, train_args=None):
    """The model.* metadata of REPA's SiT ("REPA-SiT-XL/2", -L, -B; REPA's models/sit.py): SiT's keys (no
    learn_sigma half) plus encoder_depth (from the checkpoint's args when present, else REPA's default 8),
    projector_dim and z_dims from the `projectors.<k>.{0,4}.weight` shapes. A state dict without projectors (an
    EMA-only export) gets plain SiT metadata: it loads and post-trains as a SiT."""
    m = re.fullmatch(r"REPA-(SiT-(?:B|L|XL)[/-](?:2|4|8))", arch, re.I)
    if not m:
        raise ValueError("--arch for REPA must be one of REPA-SiT-{B,L,XL}/{2,4,8}, got %r" % arch)
    meta = sit_metadata(m.group(1), tensors)
    if meta["model.learn_sigma"] != "0":
        raise ValueError("--arch %s: final_layer.linear.weight has the learn_sigma rows; REPA's SiT has none" % arch)
    z_dims, k = [], 0
    while "projectors.%d.0.weight" % k in tensors:
        w0 = tuple(tensors["projectors.%d.0.weight" % k].shape)
        name = "projectors.%d.4.weight" % k
        if name not in tensors or len(w0) != 2 or len(tensors[name].shape) != 2:
            raise ValueError("--arch %s: projector %d is not Linear, SiLU, Linear, SiLU, Linear (%s)" % (arch, k, name))
        z_dims.append(int(tensors[name].shape[0]))
        projector_dim = w0[0]
        k += 1
    if not z_dims:
        return meta
    encoder_depth = 8
    if train_args:
        encoder_depth = int(json.loads(train_args).get("encoder_depth", 8))
    meta["model.arch"] = "REPA-SiT"
    meta["model.encoder_depth"] = str(encoder_depth)
    meta["model.projector_dim"] = str(projector_dim)
    meta["model.z_dims"] = ",".join(map(str, z_dims))
    return meta


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
        if arch.upper().startswith("DITDH"):
            meta.update(ditdh_metadata(arch, tensors, latent))
        elif arch.upper().startswith("REPA-"):
            meta.update(repa_metadata(arch, tensors, meta.get("mixflow.train_args")))
        else:
            meta.update(sit_metadata(arch, tensors))
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
    p.add_argument("--arch", help='official architecture, SiT-XL/2 (any SiT-{S,B,L,XL}/{2,4,8}), REPA-SiT-XL/2 (REPA-SiT-{B,L,XL}/{2,4,8}, '
                   'projectors kept) or DiTDH-XL / DiTDH-S: '
                   'checked against the tensors and stored as model.* metadata (what Model.from_onnx reads) and "mixflow.arch"')
    p.add_argument("--latent", help="DiT^DH latent CxSxS the tensors are checked against, e.g. 768x16x16 (256 px) or "
                   "768x32x32 (512 px); default: read from s_embedder.proj.weight and pos_embed")
    p.add_argument("--external-threshold", type=int, default=1 << 20,
                   help="ONNX: tensors of at least this many bytes go to an external data file (-1: none; default 1 MiB)")
    p.add_argument("--allow-opaque", action="store_true",
                   help="turn unknown pickle globals into inert placeholders instead of refusing the file")
    a = p.parse_args(argv)
    try:
        n, meta = convert(a.src, a.dst, a.use, a.arch, a.external_threshold, a.allow_opaque, a.latent)
    except (UnsafeCheckpointError, CheckpointFormatError, MixflowError, ValueError, OSError) as e:
        # One line whatever the file put in the message (names inside a hostile archive may hold newlines).
        print("mixflow.convert: error: %s" % " ".join(str(e).splitlines()), file=sys.stderr)
        return 2
    print("wrote %d tensors to %s%s" % (n, a.dst, " (%s)" % ", ".join(meta) if meta else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
