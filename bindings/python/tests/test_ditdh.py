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


def random_weights(m, seed):
    """Non-zero values in every trainable tensor (the official init zeroes adaLN and the final layer, hiding
    their paths); the fixed pos_embed, t_embedder.W and RoPE tables keep the model's own values."""
    rng = np.random.default_rng(seed)
    fixed = {n for n, _, trainable in m.tensor_info() if not trainable}
    m.load_state_dict({k: (rng.standard_normal(v.shape) * (0.3 if v.ndim == 1 else 1 / np.sqrt(np.prod(v.shape[1:]))))
                       .astype(np.float32) for k, v in m.state_dict().items() if k not in fixed}, strict=False)
    return m


def run_graph(path, x, t, y):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["out"], {"x": x, "t": t, "y": np.asarray(y, np.int64)})[0]


@pytest.mark.parametrize("kw", [
    dict(),                                                                          # s_projector 16 -> 24, 1 head block
    dict(depth=2, hidden=32, heads=4, head_depth=2, head_hidden=32, head_heads=2,    # equal widths: s_projector Identity
         input_size=3, in_channels=5, num_classes=7),
    dict(depth=1, hidden=16, heads=1, head_depth=3, head_hidden=48, head_heads=4,    # wide head, 3 per-token blocks
         input_size=5, in_channels=2, num_classes=1),
])
def test_onnxruntime_runs_the_exported_graph_like_the_native_forward(tmp_path, kw):
    onnx = pytest.importorskip("onnx")
    m = random_weights(tiny(**kw), seed=3)
    path = tmp_path / "dh.onnx"
    m.save_onnx(path, graph=True, external_threshold=2048)
    onnx.checker.check_model(str(path))  # valid ONNX (IR 8, opset 17)
    assert mixflow.Model.from_onnx(path).onnx_metadata["mixflow.format"] == "ditdh-forward"
    rng = np.random.default_rng(5)
    for batch in (1, 2, 5):  # B is symbolic: one file, several batch sizes
        x = rng.standard_normal((batch, m.in_channels, m.input_size, m.input_size)).astype(np.float32)
        t = rng.uniform(0, 1, batch).astype(np.float32)
        y = np.arange(batch) % (m.num_classes + 1)  # the null class included from batch 2 on
        t[0] = 1.0  # the noise end of the RAE convention
        ref = m.forward(x, t, y)
        out = run_graph(path, x, t, y)
        assert out.shape == ref.shape == x.shape
        # float32 on both sides; sums, sin/cos and exp run in different orders and libms: 1e-4 relative to the
        # output's scale.
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max(), batch


@pytest.mark.parametrize("name", ["tiny", "tiny_identity"])
def test_exported_graph_matches_the_torch_reference(tmp_path, name):
    cfg, ts = load_fixture(name)
    m = mixflow.Model.create("DiTDH", depth=cfg["depth"], hidden=cfg["hidden"], heads=cfg["heads"],
                             head_depth=cfg["head_depth"], head_hidden=cfg["head_hidden"], head_heads=cfg["head_heads"],
                             input_size=cfg["input"], in_channels=cfg["channels"], num_classes=cfg["classes"])
    m.load_state_dict({k[6:]: v for k, v in ts.items() if k.startswith("param:")})
    m.save_onnx(tmp_path / "dh.onnx")  # graph=True is the default
    out = run_graph(tmp_path / "dh.onnx", ts["x"], ts["t"], ts["y"])
    # the fixture is float64 torch on float32-rounded weights; the graph is float32 onnxruntime
    assert np.abs(out - ts["out"]).max() <= 1e-4 * np.abs(ts["out"]).max()


def test_graph_export_keeps_the_checkpoint_import_bit_identical(tmp_path):
    m = random_weights(tiny(seed=4), seed=8)
    path = tmp_path / "dh.onnx"
    m.save_onnx(path, graph=True, external_threshold=-1, step=9)
    back = mixflow.Model.from_onnx(path)
    assert back.ignored_tensors == []
    a, b = m.state_dict(), back.state_dict()
    assert list(a) == list(b) and all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert back.onnx_metadata["mixflow.step"] == "9"
    # exported again from the imported model, the graph file is byte-identical
    back.save_onnx(tmp_path / "again.onnx", graph=True, external_threshold=-1, step=9)
    assert (tmp_path / "again.onnx").read_bytes() == path.read_bytes()
