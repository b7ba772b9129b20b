"""Samplers, Slow Flow and the ADM .npz writer through ctypes, against numpy references written from docs/exactness.md §4."""
import numpy as np
import pytest

import mixflow
from mixflow import CallbackError, InvalidArgument, Unsupported


def gaussian_velocity(mu, s):
    """Exact SiT-convention velocity of N(mu, s²) data on the Linear path (see SamplerTestSupport.swift)."""
    def v(x, t):
        t = t.reshape((-1,) + (1,) * (x.ndim - 1)).astype(np.float64)
        var = t * t * s * s + (1 - t) ** 2
        return mu + (t * s * s - (1 - t)) / var * (x - t * mu)
    return v


def test_heun_reaches_the_exact_gaussian_sample():
    mu, s = 1.0, 0.5
    v = gaussian_velocity(mu, s)
    z = np.random.default_rng(0).standard_normal((16, 2, 3, 3)).astype(np.float32)
    x = mixflow.sample(lambda x, t, y: v(x, t), z, method="heun", steps=100)  # heun2 error ~ h²: 7e-5 here
    assert x.shape == z.shape and x.dtype == np.float32
    np.testing.assert_allclose(x, mu + s * z, atol=2e-4)


def test_rae_convention_receives_its_own_time_and_ends_at_the_shifted_grid():
    mu, s = -0.5, 0.8
    v = gaussian_velocity(mu, s)
    seen = []

    def model(x, t, y):
        seen.append(t.copy())
        return -v(x, 1 - t)  # RAE velocity at τ is minus the SiT velocity at 1 − τ
    z = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
    r = mixflow.sample(model, z, method="euler", steps=50, convention="rae", time_shift=np.sqrt(48), trajectory=True)
    assert r.nfe == 49 and len(seen) == 49 and seen[0][0] == 1.0
    np.testing.assert_allclose(r.t[[0, 1, 2, -3, -2, -1]], [1.0, 0.997005, 0.993902, 0.231979, 0.131505, 0.006887], atol=1.5e-6)
    assert r.trajectory.shape == (50, 8, 4)
    np.testing.assert_array_equal(r.trajectory[0], z)


def numpy_fixed_grid(f, x, grid, method):
    """torchdiffeq fixed-grid steps (docs/exactness.md §4.2) in float64."""
    x = x.astype(np.float64)
    for t0, t1 in zip(grid[:-1], grid[1:]):
        h = t1 - t0
        if method == "euler":
            x = x + h * f(x, t0)
        elif method == "heun":
            k1 = f(x, t0)
            x = x + h * (k1 + f(x + h * k1, t1)) / 2
        elif method == "rk4":  # torchdiffeq rk4_alt_step_func (3/8 rule)
            k1 = f(x, t0)
            k2 = f(x + h * k1 / 3, t0 + h / 3)
            k3 = f(x + h * (k2 - k1 / 3), t0 + 2 * h / 3)
            k4 = f(x + h * (k1 - k2 + k3), t1)
            x = x + h * (k1 + 3 * (k2 + k3) + k4) / 8
    return x


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_fixed_grid_steps_match_numpy(method):
    f = lambda x, t: np.sin(x) * t + 0.5  # noqa: E731
    z = np.array([[0.3, -1.2, 2.0], [0.7, -0.1, 1.1]], np.float32)
    x = mixflow.sample(lambda x, t, y: f(x, t[:, None]), z, method=method, steps=6)
    np.testing.assert_allclose(x, numpy_fixed_grid(f, z, np.linspace(0, 1, 6), method), atol=3e-6)


def test_repa_heun_skips_the_last_corrector():
    f = lambda x, t: np.cos(x) - t  # noqa: E731
    z = np.array([[0.4, -0.9]], np.float32)
    r = mixflow.sample(lambda x, t, y: f(x, t[:, None]), z, method="heun", steps=4, convention="repa", return_nfe=True)
    g = np.linspace(1, 0, 5)
    x = z.astype(np.float64)
    for i in range(4):
        h, d = g[i + 1] - g[i], f(x, g[i])
        x = x + h * (d + f(x + h * d, g[i + 1])) / 2 if i < 3 else x + h * d
    assert r.nfe == 7
    np.testing.assert_allclose(r.x, x, atol=3e-6)


def test_sit_cfg_guides_the_first_three_channels_only():
    def model(x, t, y):
        out = np.zeros_like(x)
        out[y == 1000] = -1.0                      # unconditional
        out[y != 1000] = np.arange(4)[None, :, None, None]   # conditional: channel index
        return out
    z = np.zeros((2, 4, 2, 2), np.float32)
    x = mixflow.sample(model, z, method="euler", steps=2, y=[3, 4], cfg_scale=1.5, guided_channels=3)
    expected = np.array([-1 + 1.5 * (c + 1) for c in range(3)] + [3.0])   # one Euler step of size 1
    np.testing.assert_allclose(x, np.broadcast_to(expected[None, :, None, None], x.shape), atol=1e-6)
    with pytest.raises(InvalidArgument, match="y must not be NULL with MIXFLOW_GUIDANCE_CFG"):
        mixflow.sample(model, z, cfg_scale=1.5)


def test_python_exceptions_are_reraised_after_the_call():
    class Boom(RuntimeError):
        pass
    calls = []

    def model(x, t, y):
        calls.append(1)
        if len(calls) == 3:
            raise Boom("model failed")
        return np.zeros_like(x)
    z = np.zeros((2, 3), np.float32)
    with pytest.raises(Boom, match="model failed") as info:
        mixflow.sample(model, z, method="euler", steps=10)
    assert isinstance(info.value.__cause__, CallbackError)
    assert "model returned 1 at step 2" in info.value.__cause__.message
    with pytest.raises(ValueError, match=r"model_fn returned shape \(2, 2\), expected \(2, 3\)"):
        mixflow.sample(lambda x, t, y: np.zeros((2, 2)), z, method="euler", steps=3)
    with pytest.raises(CallbackError, match="non-finite value at step 0"):
        mixflow.sample(lambda x, t, y: np.full_like(x, np.nan), z, method="euler", steps=3)


def test_bad_options_raise_clear_errors():
    z = np.zeros((1, 2), np.float32)
    with pytest.raises(ValueError, match="method must be one of"):
        mixflow.sample(lambda x, t, y: x, z, method="ddim")
    with pytest.raises(InvalidArgument, match="num_steps must be in"):
        mixflow.sample(lambda x, t, y: x, z, steps=1)
    with pytest.raises(Unsupported, match="RAE's SDE sampler"):
        mixflow.sample(lambda x, t, y: x, z, method="sde_euler", convention="rae")


def test_sde_marginal_and_determinism():
    mu, s = 1.0, 0.5
    v = gaussian_velocity(mu, s)
    z = np.random.default_rng(2).standard_normal((8, 1024)).astype(np.float32)
    a = mixflow.sample(lambda x, t, y: v(x, t), z, method="sde_euler", steps=100, seed=4)
    b = mixflow.sample(lambda x, t, y: v(x, t), z, method="sde_euler", steps=100, seed=4)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - mu) < 0.03 and abs(a.std() - s) < 0.03


def test_step_wise_loop_reproduces_sample():
    v = gaussian_velocity(0.2, 0.7)
    z = np.random.default_rng(3).standard_normal((3, 5)).astype(np.float32)
    whole = mixflow.sample(lambda x, t, y: v(x, t), z, method="sde_euler", steps=6, seed=1)
    with mixflow.Sampler("sde_euler", 6, seed=1) as sampler:
        times = sampler.timesteps
        x = z
        for i in range(len(times) - 1):
            x = sampler.step(v(x, np.full(3, times[i], np.float32)).astype(np.float32), i, x)
    np.testing.assert_array_equal(x, whole)


def test_slow_flow_recovers_a_known_slowdown_and_gamma(tmp_path):
    rng = np.random.default_rng(5)
    b, d, c = 6, 32, 0.7
    x0 = rng.standard_normal((b, d)).astype(np.float32)
    x1 = (2 * rng.standard_normal((b, d)) + 0.5).astype(np.float32)
    model = lambda x, t, y: c * (x1 - x0)  # noqa: E731 - trajectory x0 + c·t·(x1 − x0) = x_{c t}
    decoys = (3 * rng.standard_normal((30, d)) - 4).astype(np.float32)
    sf = mixflow.slow_flow(model, x0, steps=11, reference="nearest_data", data=np.concatenate([x1, decoys]))
    np.testing.assert_allclose(sf.m, np.broadcast_to(c * sf.t[None, :], sf.m.shape), atol=1e-5)
    assert abs(mixflow.suggest_gamma(sf) - (1 - c)) < 1e-5
    assert sf.stats["frac_m_le_t"][1:].min() == 1.0   # at t = 0, round-off can put m a hair above 0
    end = mixflow.slow_flow(model, x0, steps=11, reference="endpoint")
    assert mixflow.suggest_gamma(end) < 1e-5   # against its own end point the flow runs on time
    sf.to_csv(tmp_path / "sf.csv")
    sf.to_json(tmp_path / "sf.json")
    assert (tmp_path / "sf.csv").read_text().startswith("t,mean_m,")
    import json
    assert json.loads((tmp_path / "sf.json").read_text())["reference"] == "nearest_data"
    pytest.importorskip("matplotlib")
    sf.plot(tmp_path / "sf.png")
    assert (tmp_path / "sf.png").stat().st_size > 1000


def test_slow_flow_lag_matches_numpy_and_sees_a_known_slowdown():
    rng = np.random.default_rng(11)
    t = np.linspace(0, 1, 9)
    m = np.clip(t[None, :] * rng.uniform(0.7, 1.2, (5, 9)), 0, 1)
    m[:, -1] = 1.0                                                    # the endpoint definition's last point
    for exclude in (True, False):
        cols = [g for g in range(len(t) - (1 if exclude else 0)) if t[g] > 0]
        ratio, slowed = m[:, cols] / t[cols], m[:, cols] < t[cols] - 1e-3
        got = mixflow.slow_flow_lag(mixflow.SlowFlow(t=t, m=m, reference="endpoint"), exclude_final=exclude)
        np.testing.assert_allclose(got[:2], (slowed.mean(), np.median(ratio)), rtol=1e-12)
        assert got.lags == (slowed.mean() > 0.5 and np.median(ratio) < 1)
    b, d, c = 4, 16, 0.8                                              # a flow at 0.8 of the true speed
    x0 = rng.standard_normal((b, d)).astype(np.float32)
    x1 = rng.standard_normal((b, d)).astype(np.float32)
    sf = mixflow.slow_flow(lambda x, tt, y: c * (x1 - x0), x0, steps=11, reference="nearest_data", data=x1)
    slowed, median, lags = mixflow.slow_flow_lag(sf)
    assert slowed == 1.0 and abs(median - c) < 1e-5 and lags
    assert not mixflow.slow_flow_lag(mixflow.slow_flow(lambda x, tt, y: x1 - x0, x0, steps=11, reference="endpoint")).lags
    with pytest.raises(mixflow.InvalidArgument):
        mixflow.slow_flow_lag(mixflow.SlowFlow(t=np.array([0.0, 1.0]), m=np.zeros((2, 2)), reference="endpoint"))


def test_slow_flow_outlook_is_the_documented_rule():
    """docs/slow-flow.md: a lagging endpoint path means MixFlow is expected to help; no lag and a nearest-data
    suggest_gamma below 0.3 that it is expected to hurt; no lag and a nearest-data gamma of 0.3 or more (or none
    measured) is undecided."""
    from mixflow.slowflow import Lag
    lagging, on_time = Lag(0.9, 0.97, True), Lag(0.2, 1.02, False)
    assert mixflow.slow_flow_outlook(lagging) is True and mixflow.slow_flow_outlook(lagging, 0.05) is True
    assert mixflow.slow_flow_outlook(on_time) is None
    assert mixflow.slow_flow_outlook(on_time, 0.29) is False and mixflow.slow_flow_outlook(on_time, 0.11) is False
    assert mixflow.slow_flow_outlook(on_time, 0.3) is None and mixflow.slow_flow_outlook(on_time, 0.72) is None
    assert mixflow.slow_flow_outlook(lagging, 0.72) is True
    with pytest.raises(mixflow.InvalidArgument):
        mixflow.slow_flow_outlook(on_time, float("nan"))
    with pytest.raises(mixflow.InvalidArgument):
        mixflow.slow_flow_outlook(on_time, 1.5)


def test_slow_flow_outlook_rule_reports_the_constants_the_rule_applies():
    """docs/slow-flow.md: "expected to help" refers to gamma 0.4-0.8; samples count as far from the data from a
    nearest-data gamma of 0.3. The reported threshold is the one outlook() switches at."""
    from mixflow.slowflow import Lag
    rule = mixflow.slow_flow_outlook_rule()
    assert rule.helpful_gamma == (0.4, 0.8) and rule.far_from_data == 0.3
    on_time = Lag(0.2, 1.02, False)
    below = float(np.nextafter(rule.far_from_data, 0))
    assert mixflow.slow_flow_outlook(on_time, below) is False
    assert mixflow.slow_flow_outlook(on_time, rule.far_from_data) is None


def test_npz_is_readable_by_numpy_with_each_uint8_rule(tmp_path):
    x = np.random.default_rng(6).uniform(-1.2, 1.2, (3, 3, 4, 5)).astype(np.float32)
    rules = {"sit": np.clip(127.5 * x + 128, 0, 255), "rae": np.clip(x, 0, 1) * 255,
             "repa": np.clip(255 * (x + 1) / 2, 0, 255)}
    for convention, ref in rules.items():
        u8 = mixflow.to_uint8(x, convention)
        np.testing.assert_array_equal(u8, ref.astype(np.uint8).transpose(0, 2, 3, 1))
    path = tmp_path / "samples.npz"
    mixflow.save_npz(path, x, "sit")
    with np.load(path) as f:
        assert list(f.keys()) == ["arr_0"]
        np.testing.assert_array_equal(f["arr_0"], mixflow.to_uint8(x, "sit"))


def test_native_model_sampling_equals_the_python_callback_route():
    from test_model import randomize, tiny
    m = tiny()
    randomize(m, seed=3)
    z = np.random.default_rng(7).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = np.array([1, 4], np.int32)
    with mixflow.Sampler("heun", 5, guidance="cfg", cfg_scale=2.0, null_class=5) as s:
        native = s.sample_model(m, z, y)
        via_python = s.sample(lambda x, t, yy: m.forward(x, t, yy), z, y)
    np.testing.assert_array_equal(native.x, via_python.x)
    assert native.nfe == via_python.nfe == 8


def test_equal_labels_counts_and_determinism():
    labels = mixflow.equal_labels(50_000)
    assert labels.dtype == np.int32 and labels.shape == (50_000,)
    assert np.array_equal(np.bincount(labels, minlength=1000), np.full(1000, 50))
    assert np.array_equal(labels, mixflow.equal_labels(50_000, 1000, 0))
    other = mixflow.equal_labels(50_000, seed=1)
    assert not np.array_equal(labels, other) and np.array_equal(np.sort(labels), np.sort(other))
    # Remainder: 1003 = 1 x 1000 + 3 random labels; every class at least once, three extra somewhere.
    c = np.bincount(mixflow.equal_labels(1003, seed=5), minlength=1000)
    assert c.sum() == 1003 and c.min() == 1 and c.max() <= 4
    # The shuffle is real: far from the unshuffled i % K order.
    assert np.mean(labels == np.arange(50_000) % 1000) < 0.01
    assert np.array_equal(mixflow.equal_labels(7, num_classes=1, seed=3), np.zeros(7, np.int32))


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(n=0), mixflow.InvalidArgument, r"n must be in \[1, 2147483647\], got 0"),
    (dict(n=1 << 40), mixflow.InvalidArgument, "n must be in"),
    (dict(n=5, num_classes=0), mixflow.InvalidArgument, r"mixflow_equal_labels: num_classes must be in \[1, 16777216\], got 0"),
    (dict(n=5, num_classes=1 << 40), mixflow.InvalidArgument, "num_classes must be in"),
    (dict(n=5, seed=-1), ValueError, "seed must be in"),
    (dict(n=5.0), TypeError, "n must be an int"),
])
def test_equal_labels_rejects_bad_input(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        mixflow.equal_labels(**kw)


def test_pixel_unshuffle_is_pytorchs_and_pixel_shuffle_inverts_it():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 12)).astype(np.float32)
    r = 4
    z = mixflow.pixel_unshuffle(x, r)
    assert z.shape == (2, 48, 2, 3)
    # torch.nn.functional.pixel_unshuffle, written out: out[:, c·r² + i·r + j, h, w] = x[:, c, h·r + i, w·r + j].
    for c in range(3):
        for i in range(r):
            for j in range(r):
                assert np.array_equal(z[:, c * r * r + i * r + j], x[:, c, i::r, j::r])
    assert np.array_equal(mixflow.pixel_shuffle(z, r), x)
    with pytest.raises(ValueError, match="must divide"):
        mixflow.pixel_unshuffle(x, 5)
    with pytest.raises(ValueError, match="multiple of factor"):
        mixflow.pixel_shuffle(z, 3)


def test_save_png_writes_the_uint8_grid(tmp_path):
    from test_cli import read_png
    x = np.linspace(-1, 1, 5 * 1 * 4 * 3, dtype=np.float32).reshape(5, 1, 4, 3)
    mixflow.save_png(tmp_path / "g.png", x, columns=2)
    grid = read_png(tmp_path / "g.png")
    images = mixflow.to_uint8(x)
    assert grid.shape == (2 + 3 * 6, 2 + 2 * 5)
    for k in range(5):
        r, c = divmod(k, 2)
        assert np.array_equal(grid[2 + 6 * r:6 + 6 * r, 2 + 5 * c:5 + 5 * c], images[k, :, :, 0])
    assert (grid[:2] == 255).all() and (grid[14:, 7:] == 255).all()     # border and the empty sixth cell
    with pytest.raises(InvalidArgument, match=r"mixflow_samples_write_png: channels must be 1 or 3, got 2"):
        mixflow.save_png(tmp_path / "bad.png", np.zeros((1, 2, 2, 2), np.uint8))
    with pytest.raises(InvalidArgument, match=r"columns must be > 0, got 0"):
        mixflow.save_png(tmp_path / "bad.png", images, columns=0)
    with pytest.raises(mixflow.IOFailure):
        mixflow.save_png(tmp_path / "missing-dir" / "g.png", images)
