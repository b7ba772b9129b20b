"""REPA's SiT end to end: a REPA training checkpoint {model, ema, opt, args} (torch.save layout, written without
torch, and by torch.save itself when torch is installed) converts with its projectors, loads as a model with
features, post-trains with features through the Trainer and the CLI (projectors updated; without features the
denoising loss alone, said once), a Trainer step with features gives REPA's official loss and gradients on the
transport's batch (torch reference), and the exported ONNX keeps the projectors and runs in onnxruntime. The maths
of the model alone (forward, projectors, alignment loss and every gradient) is checked against REPA's official
code in Tests/MixflowModelsTests/REPAFixtureTests.swift."""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixflow
from mixflow import convert
from test_convert_ditdh import torch_pt

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "Tests", "Fixtures", "repa", "tiny_one_encoder")


def fixture():
    lines = [l.split() for l in open(FIXTURE + ".txt") if not l.startswith(("#", "config"))]
    raw, out, off = open(FIXTURE + ".bin", "rb").read(), {}, 0
    for name, dtype, n, *shape in lines:
        n = int(n)
        out[name] = np.frombuffer(raw[off:off + 4 * n], "<f4" if dtype == "f32" else "<i4").reshape([int(s) for s in shape])
        off += 4 * n
    return out


@pytest.fixture
def repa_onnx(tmp_path, monkeypatch):
    # The fixture's trunk (depth 2, hidden 16, heads 2, patch 4) under the name REPA-SiT-B/4.
    monkeypatch.setitem(convert._SIT_SIZES, "B", (2, 16, 2))
    fx = fixture()
    state = {k[6:]: v for k, v in fx.items() if k.startswith("param:")}
    src = torch_pt(tmp_path / "last.pt", {"model": state, "ema": state, "opt": {}, "args": {"encoder_depth": 2}})
    dst = tmp_path / "repa.onnx"
    assert convert.main([str(src), str(dst), "--arch", "REPA-SiT-B/4"]) == 0
    return dst, fx, state


def test_repa_checkpoint_converts_with_projectors(repa_onnx):
    dst, fx, state = repa_onnx
    m = mixflow.Model.from_onnx(dst, num_threads=1)
    got = m.state_dict()
    assert sorted(got) == sorted(state) and any(k.startswith("projectors.") for k in got)
    for k, v in state.items():
        assert got[k].tobytes() == v.tobytes(), k
    assert m.onnx_metadata["model.arch"] == "REPA-SiT"
    assert m.onnx_metadata["model.encoder_depth"] == "2"
    assert m.feature_size == 4 * 6   # 4 tokens · z_dim 6


def test_posttrains_with_features_and_exports_the_projectors(repa_onnx, tmp_path):
    dst, fx, state = repa_onnx
    x1, y, z = fx["x"], fx["y"], fx["z0"]
    runs = {}
    for with_features in (True, False):
        m = mixflow.Model.from_onnx(dst, num_threads=1)
        tr = mixflow.Trainer(m, mixflow.Transport.preset("repa"), preset="repa", seed=3, num_threads=1)
        assert tr.params["proj_coeff"] == 0.5 and tr.params["max_grad_norm"] == 1.0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            losses = [tr.step(x1, y, features=z if with_features else None) for _ in range(2)]
        said = [w for w in caught if "denoising loss alone" in str(w.message)]
        assert len(said) == (0 if with_features else 1)
        runs[with_features] = (losses, tr.model.state_dict(), tr)
    (lf, wf, trf), (ln, wn, _) = runs[True], runs[False]
    # Same transport draws: the first losses differ by exactly λ·proj, here proj ≈ −cos ∈ [−1, 1].
    assert lf[0] != ln[0] and abs(lf[0] - ln[0]) <= 0.5 + 1e-6
    for k in state:
        if k.startswith("projectors."):
            assert not np.array_equal(wf[k], state[k]), k + " must train with features"
            assert np.array_equal(wn[k], state[k]), k + " must not move without features"
    out = tmp_path / "post.onnx"
    trf.save_onnx(out)
    back = mixflow.Model.from_onnx(out, num_threads=1)
    assert back.feature_size == 24 and "projectors.0.4.weight" in back.state_dict()


def test_features_are_validated(repa_onnx):
    dst, fx, _ = repa_onnx
    tr = mixflow.Trainer(mixflow.Model.from_onnx(dst, num_threads=1), mixflow.Transport.preset("repa"), preset="repa")
    with pytest.raises(ValueError):
        tr.step(fx["x"], fx["y"], features=fx["z0"][:, :3])
    bad = fx["z0"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(mixflow.MixflowError):
        tr.step(fx["x"], fx["y"], features=bad)


def test_a_state_dict_without_projectors_still_converts_as_a_sit(tmp_path, monkeypatch):
    monkeypatch.setitem(convert._SIT_SIZES, "B", (2, 16, 2))
    state = {k[6:]: v for k, v in fixture().items() if k.startswith("param:") and "projectors." not in k}
    src = torch_pt(tmp_path / "ema.pt", state)
    dst = tmp_path / "sit.onnx"
    assert convert.main([str(src), str(dst), "--arch", "REPA-SiT-B/4"]) == 0
    m = mixflow.Model.from_onnx(dst, num_threads=1)
    assert m.onnx_metadata["model.arch"] == "SiT" and m.feature_size == 0


def test_a_file_without_metadata_loads_as_repa_from_its_shapes(tmp_path):
    state = {k[6:]: v for k, v in fixture().items() if k.startswith("param:")}
    convert.write_onnx(tmp_path / "bare.onnx", state)
    m = mixflow.Model.from_onnx(tmp_path / "bare.onnx", heads=2, num_threads=1)
    assert m.feature_size == 24 and "projectors.0.2.weight" in m.state_dict()


FIXTURES = Path(__file__).resolve().parents[3] / "Tests" / "Fixtures"


def fixture_config():
    """The fixture's config line as a dict (ints, the z_dims list, proj_coeff)."""
    line = next(l for l in open(FIXTURE + ".txt") if l.startswith("config "))
    c = dict(kv.split("=") for kv in line.split()[1:])
    return {k: ([int(x) for x in v.split(",")] if k == "z_dims" else float(v) if "." in v else int(v))
            for k, v in c.items()}


def official_reference():
    """REPA's models/sit.py forward and loss.py projection term, re-implemented in float64 torch by
    Tests/Fixtures/make_repa_fixtures.py (the fixture generator); skips without torch."""
    torch = pytest.importorskip("torch", reason="the REPA reference is PyTorch (pip install 'torch<2.14')")
    sys.path.insert(0, str(FIXTURES))
    import make_repa_fixtures
    torch.set_default_dtype(torch.float64)
    return torch, make_repa_fixtures


def test_a_step_with_features_is_repas_official_loss_and_gradient(repa_onnx):
    """Trainer.step(x1, y, features=z) against REPA's official loss on the very batch the transport prepares:
    loss = mean((v(x_t, t) - target)^2) + 0.5 * proj(z, projector(tokens after block encoder_depth)), and the
    gradient the step applies (before clipping) = its autograd gradient, for every trainable tensor."""
    torch, ref = official_reference()
    dst, fx, state = repa_onnx
    c = fixture_config()
    x1, z = fx["x"], fx["z0"]
    y = np.full(x1.shape[0], c["classes"], np.int32)   # null labels: class dropout leaves them as they are
    transport = mixflow.Transport.preset("repa")
    tr = mixflow.Trainer(mixflow.Model.from_onnx(dst, num_threads=1), transport, preset="repa", seed=11, num_threads=1)
    seen = {}
    tr.set_gradient_hook(lambda g, step: seen.setdefault("g", g.copy()))
    loss = tr.step(x1, y, features=z)
    batch = transport.prepare(x1, seed=11, step=0, first_sample=0)
    P = {k: torch.tensor(v.astype(np.float64), requires_grad=(k != "pos_embed")) for k, v in state.items()}
    out, zt = ref.repa_forward(P, c, torch.tensor(batch.x_in.astype(np.float64)), torch.tensor(batch.t.astype(np.float64)),
                               torch.tensor(y.astype(np.int64)))
    denoise = ((out - torch.tensor(batch.target.astype(np.float64))) ** 2).mean()
    proj = ref.proj_loss([torch.tensor(z.astype(np.float64))], zt)
    total = denoise + 0.5 * proj
    total.backward()
    assert abs(proj.item()) > 1e-3                        # the term is really there
    assert abs(loss - total.item()) <= 1e-5 * abs(total.item()), (loss, total.item())
    flat, offset = seen["g"], 0
    for name, v in tr.model.state_dict().items():
        g = flat[offset:offset + v.size].reshape(v.shape)
        offset += v.size
        if name == "pos_embed":
            assert not g.any()
            continue
        want = P[name].grad.numpy()
        assert np.abs(g - want).max() <= 1e-4 * np.abs(want).max(), name
    assert offset == flat.size


def test_the_exported_graph_runs_in_onnxruntime_as_repas_official_forward(repa_onnx, tmp_path):
    """The post-training export keeps every projector tensor (read back with pip onnx) and its forward graph,
    run by onnxruntime, gives the official model's output and projector output z~ on the fixture's inputs (and
    the native forward's output)."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper
    dst, fx, state = repa_onnx
    m = mixflow.Model.from_onnx(dst, num_threads=1)
    path = tmp_path / "repa-forward.onnx"
    m.save_onnx(path, graph=True, external_threshold=-1)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for k, v in state.items():
        if k.startswith("projectors."):
            assert inits[k].tobytes() == v.tobytes(), k
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["out", "z_tilde_0"]
    out, zt = sess.run(["out", "z_tilde_0"], {"x": fx["x"], "t": fx["t"], "y": fx["y"].astype(np.int64)})
    # REPA's models/sit.py in float64 (the fixture): 1e-4 relative to each output's scale, float32 throughout.
    for got, official in ((out, fx["out"]), (zt, fx["ztilde0"])):
        assert got.shape == official.shape
        assert np.abs(got - official).max() <= 1e-4 * np.abs(official).max()
    native = m.forward(fx["x"], fx["t"], fx["y"])
    assert np.abs(out - native).max() <= 1e-4 * np.abs(native).max()


CLI = Path(__file__).resolve().parents[3] / ".build" / "release" / "mixflow-cli"


def repa_state(rng, depth=2, hidden=16, patch=4, size=28, channels=1, classes=10, projector=12, z_dim=5):
    """A REPA SiT state dict under the official names (models/sit.py; out_channels = in_channels), every tensor
    non-zero (pos_embed included: any values load)."""
    d, tokens = hidden, (size // patch) ** 2
    shapes = [("pos_embed", (1, tokens, d)), ("x_embedder.proj.weight", (d, channels, patch, patch)),
              ("x_embedder.proj.bias", (d,)), ("t_embedder.mlp.0.weight", (d, 256)), ("t_embedder.mlp.0.bias", (d,)),
              ("t_embedder.mlp.2.weight", (d, d)), ("t_embedder.mlp.2.bias", (d,)),
              ("y_embedder.embedding_table.weight", (classes + 1, d))]
    for i in range(depth):
        b = f"blocks.{i}."
        shapes += [(b + "attn.qkv.weight", (3 * d, d)), (b + "attn.qkv.bias", (3 * d,)), (b + "attn.proj.weight", (d, d)),
                   (b + "attn.proj.bias", (d,)), (b + "mlp.fc1.weight", (4 * d, d)), (b + "mlp.fc1.bias", (4 * d,)),
                   (b + "mlp.fc2.weight", (d, 4 * d)), (b + "mlp.fc2.bias", (d,)),
                   (b + "adaLN_modulation.1.weight", (6 * d, d)), (b + "adaLN_modulation.1.bias", (6 * d,))]
    shapes += [("projectors.0.0.weight", (projector, d)), ("projectors.0.0.bias", (projector,)),
               ("projectors.0.2.weight", (projector, projector)), ("projectors.0.2.bias", (projector,)),
               ("projectors.0.4.weight", (z_dim, projector)), ("projectors.0.4.bias", (z_dim,)),
               ("final_layer.linear.weight", (patch * patch * channels, d)),
               ("final_layer.linear.bias", (patch * patch * channels,)),
               ("final_layer.adaLN_modulation.1.weight", (2 * d, d)), ("final_layer.adaLN_modulation.1.bias", (2 * d,))]
    scale = lambda s: 0.3 if len(s) == 1 else 1 / np.sqrt(np.prod(s[1:]))  # noqa: E731
    return {n: (rng.standard_normal(s) * scale(s)).astype(np.float32) for n, s in shapes}, tokens, z_dim


def posttrain_losses(r):
    """{run name: the loss of its last step} from the CLI's progress lines on stderr."""
    losses = {}
    for line in r.stderr.replace("\r", "\n").splitlines():
        for name in ("standard", "mixflow"):
            if line.strip().startswith(name) and "loss " in line:
                losses[name] = float(line.split("loss ")[1].split()[0])
    return losses


@pytest.mark.skipif(not CLI.exists(), reason="build with `swift build -c release` first")
@pytest.mark.parametrize("writer", ["torch.save", "torch-free"])
def test_the_cli_posttrains_a_converted_repa_checkpoint_with_features(tmp_path, monkeypatch, writer):
    """torch.save({model, ema, opt, args}) -> `mixflow-convert --arch REPA-SiT-B/4` -> `mixflow posttrain --features
    f.npy`: one step's loss is denoise + 0.5·proj — it moves with the features by at most 0.5, by opposite amounts
    for z and -z (proj is odd in z) and not at all when z is rescaled (cos is blind to scale) —, the projectors
    train only with features, and without them the CLI says it trains the denoising loss alone."""
    from test_cli import write_idx
    monkeypatch.setitem(convert._SIT_SIZES, "B", (2, 16, 2))
    rng = np.random.default_rng(5)
    state, tokens, z_dim = repa_state(rng)
    ckpt = {"model": state, "ema": state, "opt": {}, "args": {"encoder_depth": 2}}
    src = tmp_path / "last.pt"
    if writer == "torch.save":
        torch = pytest.importorskip("torch", reason="the torch.save variant needs PyTorch (pip install 'torch<2.14')")
        torch.save({k: ({n: torch.from_numpy(v) for n, v in d.items()} if k in ("model", "ema") else d)
                    for k, d in ckpt.items()}, src)
    else:
        torch_pt(src, ckpt)
    base = tmp_path / "repa.onnx"
    assert convert.main([str(src), str(base), "--arch", "REPA-SiT-B/4"]) == 0
    assert mixflow.Model.from_onnx(base).feature_size == tokens * z_dim
    data = tmp_path / "data"
    data.mkdir()
    n = 32
    write_idx(data / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
    write_idx(data / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    z = rng.standard_normal((n, tokens, z_dim)).astype(np.float32)
    runs = {}
    for label, feats in (("z", z), ("-z", -z), ("3z", 3 * z), ("none", None)):
        out = tmp_path / ("out" + label)
        args = [CLI, "posttrain", "--base", base, "--data", data, "--featnet", FIXTURES.parent.parent / "share" / "featnet",
                "--out", out, "--batch", "4", "--steps", "1", "--gamma", "0.5", "--eval-samples", "4", "--eval-steps", "2",
                "--eval-methods", "euler", "--threads", "1"]
        if feats is not None:
            np.save(tmp_path / f"f{label}.npy", feats)
            args += ["--features", tmp_path / f"f{label}.npy"]
        r = subprocess.run(args, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        said = "no --features: training the denoising loss alone" in r.stdout
        assert said == (feats is None), r.stdout
        assert ("denoise + λ·proj" in r.stdout) == (feats is not None)
        trained = mixflow.Trainer.resume(out / "mixflow.mixflow").model.state_dict()
        runs[label] = (posttrain_losses(r), trained)
    for run in ("standard", "mixflow"):
        lz, lm, l3, l0 = (runs[k][0][run] for k in ("z", "-z", "3z", "none"))
        assert lz != l0 and abs(lz - l0) <= 0.5 + 1e-4, (run, lz, l0)
        assert abs((lz - l0) + (lm - l0)) <= 2e-4, (run, lz, lm, l0)   # losses printed to 4 decimals
        assert abs(l3 - lz) <= 1e-4, (run, l3, lz)
    for k, v in state.items():
        if k.startswith("projectors."):
            assert not np.array_equal(runs["z"][1][k], v), k + " must train with features"
            assert np.array_equal(runs["none"][1][k], v), k + " must not move without features"
