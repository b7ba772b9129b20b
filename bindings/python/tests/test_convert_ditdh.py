"""python -m mixflow.convert --arch DiTDH-XL / DiTDH-S: the shape table against the published counts (docs/exactness.md §6.1, §6.5), the
one-message mismatch list, and a tiny synthetic RAE training checkpoint (.pt written here byte by byte in
torch's zip layout, "ema" key) and .safetensors state dict converted and loaded by the library."""
import math
import pickle
import zipfile

import numpy as np
import pytest

import mixflow
from mixflow import convert


def test_official_tables_match_the_spec_counts():
    # docs/exactness.md §6.1, §6.5: DiT^DH-XL 838,675,796 parameters and DiT^DH-S 196,455,764, each plus the four RoPE
    # buffers (2 x 256 x head_dim per half: 72 / 64 for the encoder, 128 for the head); XL has 382 entries.
    xl = convert.ditdh_shapes(28, 1152, 16, 2, 2048, 16, 768, 16)
    s = convert.ditdh_shapes(12, 384, 6, 2, 2048, 16, 768, 16)
    assert len(xl) == 382 and len(s) == 22 + 12 * 14  # 22 fixed + 12 per block, 14 blocks
    assert sum(math.prod(v) for v in xl.values()) == 838_675_796 + 2 * 256 * (72 + 128)
    assert sum(math.prod(v) for v in s.values()) == 196_455_764 + 2 * 256 * (64 + 128)
    assert xl["blocks.29.mlp.w12.weight"] == (2 * 5461, 2048) and xl["blocks.27.mlp.w3.weight"] == (1152, 3072)
    assert list(xl)[:3] == ["pos_embed", "x_embedder.proj.weight", "x_embedder.proj.bias"]


def zero_state(shapes):
    """Shape-only tensors that cost no memory (a zero stride view of one float)."""
    return {k: np.broadcast_to(np.float32(0), v) for k, v in shapes.items()}


@pytest.mark.parametrize("arch,latent,depth,hidden,heads", [("DiTDH-XL", "768x16x16", 28, 1152, 16),
                                                             ("ditdh-s", "768x32x32", 12, 384, 6)])
def test_official_state_dict_gives_the_swift_metadata(arch, latent, depth, hidden, heads):
    c, s = (int(v) for v in latent.split("x")[:2])
    state = zero_state(convert.ditdh_shapes(depth, hidden, heads, 2, 2048, 16, c, s))
    for lat in (latent, None):
        meta = convert.ditdh_metadata(arch, state, lat)
        assert list(meta.items()) == [
            ("model.arch", "DiTDH"), ("model.depth", str(depth)), ("model.hidden", str(hidden)), ("model.heads", str(heads)),
            ("model.head_depth", "2"), ("model.head_hidden", "2048"), ("model.head_heads", "16"),
            ("model.input_size", str(s)), ("model.in_channels", str(c)), ("model.num_classes", "1000"),
            ("model.class_dropout", "0.1")]


def test_mismatches_are_listed_in_one_error():
    state = zero_state(convert.ditdh_shapes(28, 1152, 16, 2, 2048, 16, 768, 16))
    del state["dec_feat_rope.freqs_sin"], state["blocks.3.norm2.weight"]
    state["blocks.30.norm1.weight"] = np.zeros(2048, np.float32)
    state["t_embedder.W"] = np.zeros(128, np.float32)
    with pytest.raises(ValueError) as e:
        convert.ditdh_metadata("DiTDH-XL", state, "768x16x16")
    assert str(e.value) == (
        "--arch DiTDH-XL (latent 768x16x16, 1000 classes): the state dict does not fit: "
        "missing (2): dec_feat_rope.freqs_sin, blocks.3.norm2.weight; unexpected (1): blocks.30.norm1.weight; "
        "mis-shaped (1): t_embedder.W is [128], needs [256]")
    # The 512-px latent against a 256-px checkpoint: every token-sized tensor is named.
    with pytest.raises(ValueError, match=r"pos_embed is \[1, 256, 1152\], needs \[1, 1024, 1152\]"):
        convert.ditdh_metadata("DiTDH-XL", zero_state(convert.ditdh_shapes(28, 1152, 16, 2, 2048, 16, 768, 16)),
                               "768x32x32")
    for bad in ("768x16", "768x16x8", "0x16x16", "big"):
        with pytest.raises(ValueError, match="--latent must be CxSxS"):
            convert.ditdh_metadata("DiTDH-XL", state, bad)
    with pytest.raises(ValueError, match="must be DiTDH-XL or DiTDH-S, got 'DiTDH-B'"):
        convert.ditdh_metadata("DiTDH-B", state)


# ---- a tiny model through the whole converter -------------------------------------------------------------
# The named sizes are hundreds of MB, so the size table is shrunk for these tests; every other step
# (shape check, metadata, ema pick, writing, the library's strict load by name) is the real one.
TINY = {"XL": (2, 16, 2), "S": (1, 8, 2)}
TINY_HEAD = (1, 24, 2)


@pytest.fixture
def tiny_sizes(monkeypatch):
    monkeypatch.setattr(convert, "_DITDH_SIZES", TINY)
    monkeypatch.setattr(convert, "_DITDH_HEAD", TINY_HEAD)


def tiny_state(size_key, seed, channels=3, side=4, classes=5):
    depth, hidden, heads = TINY[size_key]
    rng = np.random.default_rng(seed)
    shapes = convert.ditdh_shapes(depth, hidden, heads, *TINY_HEAD, channels, side, classes)
    return {k: rng.standard_normal(v).astype(np.float32) for k, v in shapes.items()}


def _pickle_str(s):
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def torch_pt(path, obj):
    """Writes `obj` (nested dicts of str -> float32 array / int) in torch.save's zip layout: a protocol-2
    pickle whose tensors are torch._utils._rebuild_tensor_v2 over persistent FloatStorage records."""
    storages = {}

    def enc(v):
        if isinstance(v, dict):
            return b"}(" + b"".join(_pickle_str(k) + enc(x) for k, x in v.items()) + b"u"
        if isinstance(v, int):
            return pickle.dumps(v, 2)[2:-1]
        a = np.ascontiguousarray(v, "<f4")
        key = str(len(storages))
        storages[key] = a.tobytes()
        stride = tuple(int(np.prod(a.shape[i + 1:])) for i in range(a.ndim))
        out = b"ctorch._utils\n_rebuild_tensor_v2\n((" + _pickle_str("storage") + b"ctorch\nFloatStorage\n"
        out += _pickle_str(key) + _pickle_str("cpu") + pickle.dumps(a.size, 2)[2:-1] + b"tQ"
        out += pickle.dumps(0, 2)[2:-1] + pickle.dumps(tuple(a.shape), 2)[2:-1] + pickle.dumps(stride, 2)[2:-1]
        return out + b"\x89}tR"

    data = b"\x80\x02" + enc(obj) + b"."
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            z.writestr("archive/data/" + key, raw)
    return path


def assert_model_holds(model, state):
    got = model.state_dict()
    assert sorted(got) == sorted(state)
    for k, v in state.items():
        assert got[k].tobytes() == v.tobytes(), k


def test_training_checkpoint_ema_converts_and_loads(tmp_path, tiny_sizes):
    ema, raw = tiny_state("XL", 1), tiny_state("XL", 2)
    src = torch_pt(tmp_path / "ep-0000014.pt", {"model": raw, "ema": ema, "step": 14})
    dst = tmp_path / "dh.onnx"
    assert convert.main([str(src), str(dst), "--arch", "DiTDH-XL", "--latent", "3x4x4", "--external-threshold", "256"]) == 0
    m = mixflow.Model.from_onnx(dst, num_threads=1)
    assert_model_holds(m, ema)
    meta = m.onnx_metadata
    assert meta["mixflow.source_key"] == "ema" and meta["mixflow.step"] == "14" and meta["mixflow.arch"] == "DiTDH-XL"
    assert (meta["model.arch"], meta["model.depth"], meta["model.head_hidden"], meta["model.num_classes"]) == \
        ("DiTDH", "2", "24", "5")
    assert (m.arch, m.input_size, m.in_channels) == ("DiTDH", 4, 3)
    # --use model picks the raw weights instead.
    assert convert.main([str(src), str(dst), "--arch", "DiTDH-XL", "--use", "model"]) == 0
    assert_model_holds(mixflow.Model.from_onnx(dst), raw)


def test_released_state_dict_from_safetensors_and_pt(tmp_path, tiny_sizes):
    state = tiny_state("S", 3, channels=2, side=3, classes=4)
    for src in (tmp_path / "stage2_model.safetensors", tmp_path / "stage2_model.pt"):
        if src.suffix == ".pt":
            torch_pt(src, state)
        else:
            convert.torchfile.write_safetensors(src, state)
        dst = tmp_path / (src.stem + src.suffix[1:] + ".onnx")
        n, meta = convert.convert(src, dst, arch="DiTDH-S", external_threshold=-1)
        assert n == len(state) and meta["model.depth"] == "1" and meta["model.input_size"] == "3"
        assert_model_holds(mixflow.Model.from_onnx(dst), state)


def test_converter_refuses_a_wrong_arch_or_latent(tmp_path, tiny_sizes, capsys):
    src = tmp_path / "s.safetensors"
    convert.torchfile.write_safetensors(src, tiny_state("XL", 4))
    dst = tmp_path / "x.onnx"
    assert convert.main([str(src), str(dst), "--arch", "DiTDH-S"]) == 2
    err = capsys.readouterr().err
    assert "--arch DiTDH-S (latent 3x4x4, 5 classes): the state dict does not fit: unexpected (12): blocks.2." in err
    assert "mis-shaped" in err and not dst.exists()
    assert convert.main([str(src), str(dst), "--arch", "DiTDH-XL", "--latent", "3x8x8"]) == 2
    assert "pos_embed is [1, 16, 16], needs [1, 64, 16]" in capsys.readouterr().err
    assert convert.main([str(src), str(dst), "--latent", "3x4x4"]) == 2
    assert "--latent is only used with --arch DiTDH-XL/DiTDH-S" in capsys.readouterr().err
    assert not dst.exists()
