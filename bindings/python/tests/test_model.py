"""The native SiT through Python: state dict, forward, gradients (finite differences), bad input."""
import numpy as np
import pytest

import mixflow


def tiny(**kw):
    args = dict(arch=None, depth=2, hidden=32, heads=4, patch=2, input_size=8, in_channels=3, num_classes=5,
                learn_sigma=True, seed=1)
    args.update(kw)
    return mixflow.Model.create(**args)


def randomize(m, seed=0, scale=0.05):
    """Non-zero weights everywhere (the official init zeroes adaLN and the final layer)."""
    rng = np.random.default_rng(seed)
    sd = {k: (v if k == "pos_embed" else (rng.standard_normal(v.shape) * scale).astype(np.float32))
          for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    return sd


def test_state_dict_names_shapes_and_round_trip():
    m = tiny()
    info = m.tensor_info()
    assert info[0] == ("pos_embed", (1, 16, 32), False)
    assert info[1][0] == "x_embedder.proj.weight" and info[1][1] == (32, 3, 2, 2)
    assert info[-1][0] == "final_layer.adaLN_modulation.1.bias"
    assert sum(int(np.prod(s)) for _, s, _ in info) == m.num_params
    sd = randomize(m)
    back = m.state_dict()
    assert all(np.array_equal(back[k], sd[k]) for k in sd)
    with pytest.raises(KeyError, match="missing"):
        m.load_state_dict({k: v for k, v in sd.items() if k != "pos_embed"})
    r = m.load_state_dict({**sd, "projectors.0.0.weight": np.zeros((2, 2), np.float32)}, strict=False)
    assert r["unexpected"] == ["projectors.0.0.weight"] and r["missing"] == []


def test_gradients_match_finite_differences():
    m = tiny()
    randomize(m, seed=3, scale=0.2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    t = np.array([0.2, 0.8], np.float32)
    y = np.array([1, 5], np.int32)                 # 5 = the null class
    target = rng.standard_normal(x.shape).astype(np.float32)
    grads, dx, loss = m.gradients(x, t, y, target, with_input_grad=True)
    assert loss == pytest.approx(float(((m.forward(x, t, y) - target) ** 2).mean()), rel=1e-5)
    sd = m.state_dict()

    def loss_with(name, idx, delta):
        p = sd[name].copy()
        p[idx] += delta
        m.load_state_dict({**sd, name: p})
        value = float(((m.forward(x, t, y).astype(np.float64) - target) ** 2).mean())
        m.load_state_dict(sd)
        return value
    for name in ["blocks.1.attn.qkv.weight", "blocks.0.adaLN_modulation.1.bias", "final_layer.linear.weight",
                 "t_embedder.mlp.0.weight", "y_embedder.embedding_table.weight"]:
        g = grads[name]
        idx = np.unravel_index(np.argmax(np.abs(g)), g.shape)
        h = 1e-2
        fd = (loss_with(name, idx, h) - loss_with(name, idx, -h)) / (2 * h)
        assert fd == pytest.approx(float(g[idx]), rel=3e-2, abs=1e-5), name
    # Input gradient.
    idx = np.unravel_index(np.argmax(np.abs(dx)), dx.shape)
    xp, xm = x.copy(), x.copy()
    xp[idx] += 1e-2
    xm[idx] -= 1e-2
    fd = (((m.forward(xp, t, y).astype(np.float64) - target) ** 2).mean()
          - ((m.forward(xm, t, y).astype(np.float64) - target) ** 2).mean()) / 2e-2
    assert fd == pytest.approx(float(dx[idx]), rel=3e-2, abs=1e-5)


def test_bad_inputs_raise_clear_errors():
    m = tiny()
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match="x must have shape"):
        m.forward(np.zeros((2, 3, 4, 4), np.float32), 0.5)
    with pytest.raises(mixflow.InvalidArgument, match=r"y\[1\] must be in \[0, 5\]"):
        m.forward(x, 0.5, [0, 6])
    bad = x.copy()
    bad[1, 2, 3, 4] = np.nan
    with pytest.raises(mixflow.InvalidArgument, match="x"):
        m.forward(bad, 0.5)
    with pytest.raises(mixflow.InvalidArgument):
        mixflow.Model.create("SiT-XXL/2")
    with pytest.raises(mixflow.InvalidArgument):
        tiny(hidden=30)


def test_python_signatures_leave_the_defaults_to_the_c_library():
    """One source of truth for defaults: every tunable of the configuring entry points defaults to None, so what
    applies is what the C library's *_default_params / *_preset_params fill in, and objects built without
    arguments carry exactly those values."""
    import inspect
    import ctypes
    from mixflow import _types as T
    from mixflow._lib import lib
    structural = {"self", "model", "transport", "model_fn", "noise", "arch", "preset", "trajectory", "return_nfe",
                  "first_sample", "guide_fn", "y", "options", "_params", "_handle", "path"}
    for fn in (mixflow.Model.create, mixflow.Model.from_onnx, mixflow.Model.save_onnx, mixflow.Transport.__init__,
               mixflow.Trainer.__init__, mixflow.Sampler.__init__, mixflow.sample):
        for name, p in inspect.signature(fn).parameters.items():
            if name in structural or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.default is p.empty:
                continue
            assert p.default is None, f"{fn.__qualname__}({name}={p.default!r}) duplicates a C default"
    ref = T.ModelParams()
    assert lib.mixflow_model_default_params(ctypes.byref(ref), ctypes.sizeof(ref)) == 0
    made = mixflow.Model.create(None, depth=1, hidden=16, heads=2, patch=4, input_size=8)
    assert (made.num_classes, made.learn_sigma, made.in_channels) == (ref.num_classes, bool(ref.learn_sigma), ref.in_channels)
