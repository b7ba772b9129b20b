"""RAE's DiT^DH through Python: creation by name, the torch fixture by tensor name, MixFlow-RAE training."""
import pathlib

import numpy as np
import pytest

import mixflow

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "Tests" / "Fixtures" / "ditdh"


def load_fixture(name):
    """The committed fixture files (see Tests/Fixtures/make_ditdh_fixtures.py): manifest + raw little-endian data."""
    lines = (FIXTURES / f"{name}.txt").read_text().splitlines()
    data = (FIXTURES / f"{name}.bin").read_bytes()
    config, tensors, offset = {}, {}, 0
    for line in lines:
        if line.startswith("#"):
            continue
        f = line.split()
        if f[0] == "config":
            config = {k: int(v) for k, v in (kv.split("=") for kv in f[1:])}
            continue
        n, shape = int(f[2]), tuple(int(v) for v in f[3:])
        dtype = "<f4" if f[1] == "f32" else "<i4"
        tensors[f[0]] = np.frombuffer(data, dtype, n, offset).reshape(shape)
        offset += 4 * n
    return config, tensors


def tiny(**kw):
    args = dict(depth=1, hidden=16, heads=2, head_depth=1, head_hidden=24, head_heads=2, input_size=4,
                in_channels=4, num_classes=3, seed=1)
    args.update(kw)
    return mixflow.Model.create("DiTDH", **args)


def test_named_and_custom_shapes():
    m = tiny()
    assert (m.arch, m.in_channels, m.input_size, m.head_hidden) == ("DiTDH", 4, 4, 24)
    names = [n for n, _, _ in m.tensor_info()]
    assert names[:3] == ["pos_embed", "x_embedder.proj.weight", "x_embedder.proj.bias"]
    assert "s_projector.weight" in names and "dec_feat_rope.freqs_sin" in names
    fixed = [n for n, _, trainable in m.tensor_info() if not trainable]
    assert fixed == ["pos_embed", "t_embedder.W", "enc_feat_rope.freqs_cos", "enc_feat_rope.freqs_sin",
                     "dec_feat_rope.freqs_cos", "dec_feat_rope.freqs_sin"]
    with pytest.raises(mixflow.InvalidArgument, match="head_hidden / head_heads must be a multiple of 4"):
        tiny(head_heads=4)
    with pytest.raises(mixflow.InvalidArgument, match="arch must be DiTDH-XL or DiTDH-S"):
        mixflow.Model.create("DiTDH-B")


@pytest.mark.parametrize("name", ["tiny", "tiny_identity"])
def test_matches_the_torch_reference(name):
    cfg, ts = load_fixture(name)
    m = mixflow.Model.create("DiTDH", depth=cfg["depth"], hidden=cfg["hidden"], heads=cfg["heads"],
                             head_depth=cfg["head_depth"], head_hidden=cfg["head_hidden"], head_heads=cfg["head_heads"],
                             input_size=cfg["input"], in_channels=cfg["channels"], num_classes=cfg["classes"])
    m.load_state_dict({k[6:]: v for k, v in ts.items() if k.startswith("param:")})
    out = m.forward(ts["x"], ts["t"], ts["y"])
    rel = lambda a, b: np.abs(a - b).max() / np.abs(b).max()  # noqa: E731  (relative to the tensor's scale)
    assert rel(out, ts["out"]) <= 1e-4
    grads, dx, loss = m.gradients(ts["x"], ts["t"], ts["y"], ts["target"], with_input_grad=True)
    assert abs(loss - ts["loss"][0]) <= 1e-5 * ts["loss"][0]
    assert rel(dx, ts["grad:x"]) <= 1e-4
    assert set(grads) == {k[5:] for k in ts if k.startswith("grad:") and k != "grad:x"}
    for k, g in grads.items():
        assert rel(g, ts["grad:" + k]) <= 1e-4, k


def test_mixflow_rae_training_and_resume(tmp_path):
    m = tiny()
    shape = (m.in_channels, m.input_size, m.input_size)
    tr = mixflow.Trainer(m, mixflow.Transport.preset("rae", latent_shape=shape), preset="rae",
                         lr=3e-3, decay_steps=(20, 200), seed=3)
    rng = np.random.default_rng(0)
    protos = rng.uniform(-1, 1, (3,) + shape).astype(np.float32)
    y = np.arange(12) % 3
    x = protos[y]
    losses = [tr.step(x, y) for _ in range(40)]
    assert np.mean(losses[-8:]) < np.mean(losses[:8])
    tr.save(tmp_path / "ditdh.mixflow")
    b = mixflow.Trainer.resume(tmp_path / "ditdh.mixflow")
    assert b.model.arch == "DiTDH" and b.model.head_hidden == 24
    for _ in range(2):
        assert tr.step(x, y) == b.step(x, y)
    sa, sb = tr.model.state_dict(), b.model.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_onnx_checkpoint_round_trip_is_bit_identical(tmp_path):
    m = tiny(seed=9)
    rng = np.random.default_rng(0)
    # Non-zero values in the tensors the official init sets to 0/1, so a dropped tensor cannot go unnoticed.
    m.load_state_dict({k: rng.uniform(-0.3, 0.3, v.shape).astype(np.float32) for k, v in m.state_dict().items()
                       if not np.any(v)}, strict=False)
    path = tmp_path / "dh.onnx"
    with pytest.raises(mixflow.errors.Unsupported, match=r"params->graph = 0"):
        m.save_onnx(path)
    assert not path.exists()
    m.save_onnx(path, graph=False, external_threshold=128, metadata={"run.name": "tiny"}, step=5)
    back = mixflow.Model.from_onnx(path, num_threads=1)
    assert back.arch == "DiTDH" and back.head_hidden == 24 and back.input_size == 4
    a, b = m.state_dict(), back.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    meta = back.onnx_metadata
    assert meta["model.arch"] == "DiTDH" and meta["mixflow.format"] == "ditdh-checkpoint"
    assert meta["mixflow.step"] == "5" and meta["run.name"] == "tiny"
    x = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
    t, y = np.array([0.3, 0.8], np.float32), np.array([0, 2])
    np.testing.assert_array_equal(m.forward(x, t, y), back.forward(x, t, y))
