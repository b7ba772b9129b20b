"""REPA's SiT end to end: a REPA training checkpoint {model, ema, opt, args} (torch.save layout, written without
torch) converts with its projectors, loads as a model with features, post-trains with features through the
Trainer (projectors updated; without features the denoising loss alone, said once), and the exported ONNX keeps
the projectors. The maths (forward, projectors, alignment loss and every gradient) is checked against REPA's
official code in Tests/MixflowModelsTests/REPAFixtureTests.swift."""
import os
import warnings

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
