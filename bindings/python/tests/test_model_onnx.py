"""SiT <-> ONNX through Python: onnxruntime runs the exported graph (an independent implementation of every op),
the torch.onnx.export fixture imports and matches torch's own output, round trips are bit-identical, the
architecture is inferred from shapes, and bad files / arguments fail with clear errors."""
import os
from pathlib import Path

import numpy as np
import pytest

import mixflow
from mixflow import convert

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

TORCH_FIX = Path(__file__).resolve().parents[3] / "Tests" / "Fixtures" / "sit_torch_onnx"


def tiny(seed=0, **kw):
    args = dict(arch=None, depth=2, hidden=32, heads=4, patch=2, input_size=8, in_channels=3, num_classes=5,
                learn_sigma=True, seed=1)
    args.update(kw)
    m = mixflow.Model.create(**args)
    rng = np.random.default_rng(seed)
    # Non-zero weights everywhere (the official init zeroes adaLN and the final layer, hiding their paths).
    m.load_state_dict({k: (v if k == "pos_embed" else (rng.standard_normal(v.shape) * 0.2).astype(np.float32))
                       for k, v in m.state_dict().items()})
    return m


def inputs(m, batch=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, m.in_channels, m.input_size, m.input_size)).astype(np.float32)
    t = np.linspace(0.05, 0.95, batch).astype(np.float32)
    y = np.arange(batch) % (m.num_classes + 1)  # includes the null class
    return x, t, y


def bits(sd):
    """name -> the raw bytes (bit-identity, NaN payloads and signed zeros included)."""
    return {k: v.tobytes() for k, v in sd.items()}


@pytest.mark.parametrize("kw", [dict(), dict(learn_sigma=False, patch=4, heads=2, depth=1),
                                dict(in_channels=4, num_classes=10, depth=3)])
def test_onnxruntime_runs_the_exported_graph_like_the_native_forward(tmp_path, kw):
    ort = pytest.importorskip("onnxruntime")
    m = tiny(**kw)
    path = tmp_path / "sit.onnx"
    m.save_onnx(path, graph=True, external_threshold=4096)
    onnx.checker.check_model(str(path))  # the graph is valid ONNX (IR 8, opset 17)
    x, t, y = inputs(m)
    ref = m.forward(x, t, y)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(["out"], {"x": x, "t": t, "y": y.astype(np.int64)})[0]
    assert out.shape == ref.shape
    # float32 throughout on both sides; the sums run in different orders: 1e-4 relative to the output scale.
    assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
    # a different batch size through the same graph (B is symbolic)
    out1 = sess.run(["out"], {"x": x[:1], "t": t[:1], "y": y[:1].astype(np.int64)})[0]
    assert np.abs(out1 - ref[:1]).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("graph,threshold", [(True, -1), (False, 0), (True, 1024)])
def test_round_trip_is_bit_identical(tmp_path, graph, threshold):
    m = tiny()
    path = tmp_path / "m.onnx"
    m.save_onnx(path, graph=graph, external_threshold=threshold, step=12, metadata={"run": "a"})
    back = mixflow.Model.from_onnx(path)
    assert bits(back.state_dict()) == bits(m.state_dict())
    assert back.ignored_tensors == []
    meta = back.onnx_metadata
    assert meta["model.heads"] == "4" and meta["mixflow.step"] == "12" and meta["run"] == "a"
    assert meta["mixflow.format"] == ("sit-forward" if graph else "sit-checkpoint")
    # the initializers are the official names and shapes, as pip onnx reads them (an independent reader)
    g = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t, base_dir=str(tmp_path)) for t in g.initializer}
    assert {k: v.shape for k, v in arrays.items()} == {k: v.shape for k, v in m.state_dict().items()}
    assert all(np.array_equal(arrays[k], v) for k, v in m.state_dict().items())
    assert (len(g.node) > 0) == graph


def test_transport_metadata_is_written(tmp_path):
    m = tiny()
    tr = mixflow.Transport(gamma=0.5)
    path = tmp_path / "m.onnx"
    m.save_onnx(path, graph=False, transport=tr)
    meta = mixflow.Model.from_onnx(path).onnx_metadata
    assert meta["transport.gamma"] == "0.5" and meta["transport.path"] == "linear"


def test_torch_onnx_export_fixture_imports_and_matches_torch(tmp_path):
    exp = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(TORCH_FIX / "expected.onnx")).graph.initializer}
    with pytest.raises(mixflow.InvalidArgument, match="pass heads"):
        mixflow.Model.from_onnx(TORCH_FIX / "sit_torch.onnx")  # hidden 32: heads are not in any shape
    m = mixflow.Model.from_onnx(TORCH_FIX / "sit_torch.onnx", heads=4)
    assert (m.depth, m.hidden, m.heads, m.patch, m.input_size, m.in_channels, m.num_classes, m.learn_sigma) == \
        (2, 32, 4, 2, 8, 4, 10, True)
    assert m.ignored_tensors and not any(n.startswith("net.") for n in m.ignored_tensors)  # graph constants only
    out = m.forward(exp["x"], exp["t"], exp["y"].astype(np.int32))
    assert np.abs(out - exp["out"]).max() <= 1e-4 * np.abs(exp["out"]).max()
    # and our own graph of the imported weights, run by onnxruntime, matches torch too
    ort = pytest.importorskip("onnxruntime")
    m.save_onnx(tmp_path / "re.onnx")
    sess = ort.InferenceSession(str(tmp_path / "re.onnx"), providers=["CPUExecutionProvider"])
    o2 = sess.run(["out"], {"x": exp["x"], "t": exp["t"], "y": exp["y"].astype(np.int64)})[0]
    assert np.abs(o2 - exp["out"]).max() <= 1e-4 * np.abs(exp["out"]).max()


def write(path, tensors, meta=None):
    g = helper.make_graph([], "g", [], [], initializer=[numpy_helper.from_array(v, k) for k, v in tensors.items()])
    model = helper.make_model(g)
    model.ir_version = 8
    if meta:
        helper.set_model_props(model, meta)
    onnx.save(model, str(path))


def test_architecture_is_inferred_from_shapes_and_prefixes_stripped(tmp_path):
    m = tiny(learn_sigma=False, depth=3)
    sd = m.state_dict()
    write(tmp_path / "plain.onnx", {"module." + k: v for k, v in sd.items()})
    back = mixflow.Model.from_onnx(tmp_path / "plain.onnx", heads=4)
    assert (back.depth, back.hidden, back.patch, back.input_size, back.in_channels, back.num_classes,
            back.learn_sigma) == (3, 32, 2, 8, 3, 5, False)
    assert bits(back.state_dict()) == bits(sd)


def test_repa_projectors_are_ignored_and_reported(tmp_path):
    sd = tiny().state_dict()
    sd["projectors.0.0.weight"] = np.ones((8, 32), np.float32)
    sd["projectors.0.0.bias"] = np.ones(8, np.float32)
    write(tmp_path / "repa.onnx", sd)
    m = mixflow.Model.from_onnx(tmp_path / "repa.onnx", heads=4)
    assert sorted(m.ignored_tensors) == ["projectors.0.0.bias", "projectors.0.0.weight"]


def test_missing_unexpected_and_misshaped_tensors_are_listed(tmp_path):
    sd = tiny().state_dict()
    del sd["blocks.1.mlp.fc2.bias"]
    sd["blocks.0.attn.proj.weight"] = np.zeros((32, 31), np.float32)
    sd["extra.thing"] = np.zeros(3, np.float32)
    write(tmp_path / "bad.onnx", sd)
    with pytest.raises(mixflow.FormatError) as e:
        mixflow.Model.from_onnx(tmp_path / "bad.onnx", heads=4)
    msg = str(e.value)
    assert "bad.onnx" in msg and "missing (1): blocks.1.mlp.fc2.bias" in msg and "unexpected (1): extra.thing" in msg
    assert "blocks.0.attn.proj.weight is [32, 31], SiT needs [32, 32]" in msg


def test_bad_files_and_arguments(tmp_path):
    with pytest.raises(mixflow.IOFailure, match="nope.onnx"):
        mixflow.Model.from_onnx(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x96\x01not onnx at all" * 3)
    with pytest.raises(mixflow.FormatError):
        mixflow.Model.from_onnx(tmp_path / "junk.onnx")
    m = tiny()
    m.save_onnx(tmp_path / "ok.onnx", graph=False, external_threshold=-1)
    data = (tmp_path / "ok.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(mixflow.FormatError):
        mixflow.Model.from_onnx(tmp_path / "cut.onnx")
    with pytest.raises(mixflow.InvalidArgument, match="reserved"):
        m.save_onnx(tmp_path / "x.onnx", metadata={"model.depth": "3"})
    with pytest.raises(mixflow.InvalidArgument, match="external_threshold"):
        m.save_onnx(tmp_path / "x.onnx", external_threshold=-2)
    with pytest.raises(mixflow.InvalidArgument, match="heads"):
        mixflow.Model.from_onnx(tmp_path / "ok.onnx", heads=-1)
    assert not (tmp_path / "x.onnx").exists()
    sd = m.state_dict()
    sd["blocks.0.mlp.fc1.bias"][3] = np.nan
    write(tmp_path / "nan.onnx", sd)
    with pytest.raises(mixflow.FormatError, match="blocks.0.mlp.fc1.bias\" element 3 is nan"):
        mixflow.Model.from_onnx(tmp_path / "nan.onnx", heads=4)


def test_convert_arch_writes_model_metadata(tmp_path):
    m = tiny()
    sd = m.state_dict()
    np.savez(tmp_path / "sd.npz", **sd)
    # SiT-S/2 has 12 blocks of width 384: the tiny state dict does not fit, and convert says so
    assert convert.main([str(tmp_path / "sd.npz"), str(tmp_path / "bad.onnx"), "--arch", "SiT-S/2"]) == 2
    meta = convert.sit_metadata("SiT-XL/2", {"x_embedder.proj.weight": np.zeros((1152, 4, 2, 2)),
                                             "pos_embed": np.zeros((1, 256, 1152)),
                                             "final_layer.linear.weight": np.zeros((32, 1152)),
                                             "y_embedder.embedding_table.weight": np.zeros((1001, 1152)),
                                             **{f"blocks.{i}.attn.qkv.bias": np.zeros(1) for i in range(28)}})
    assert meta["model.heads"] == "16" and meta["model.input_size"] == "32" and meta["model.learn_sigma"] == "1"
    assert meta["model.num_classes"] == "1000" and meta["model.depth"] == "28"
    # a converted tiny checkpoint with model.* metadata loads without heads
    tensors, _ = convert.load_state_dict(str(tmp_path / "sd.npz"))
    md = {"model.arch": "SiT", "model.depth": "2", "model.hidden": "32", "model.heads": "4", "model.patch": "2",
          "model.input_size": "8", "model.in_channels": "3", "model.num_classes": "5", "model.learn_sigma": "1"}
    convert.write_onnx(str(tmp_path / "c.onnx"), convert._float32(tensors), md, 0)
    back = mixflow.Model.from_onnx(tmp_path / "c.onnx")
    assert back.heads == 4 and bits(back.state_dict()) == bits(sd)


def test_trainer_exports_its_ema_weights(tmp_path):
    m = tiny()
    tr = mixflow.Transport(gamma=0.8)
    trainer = mixflow.Trainer(m, tr, lr=1e-3, ema=0.5)
    rng = np.random.default_rng(0)
    for _ in range(2):
        trainer.step(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), np.array([1, 2]))
    trainer.save_onnx(tmp_path / "ema.onnx", transport=tr, graph=False)
    back = mixflow.Model.from_onnx(tmp_path / "ema.onnx")
    ema = trainer.ema_model().state_dict()
    assert bits(back.state_dict()) == bits(ema) and bits(ema) != bits(m.state_dict())
    assert back.onnx_metadata["mixflow.step"] == "2" and "transport.gamma" in back.onnx_metadata
