"""MixFlow transport against the independent numpy reference (reference.py, written from docs/exactness.md §1–§3)."""
import itertools

import numpy as np
import pytest
from scipy import stats

import mixflow
import reference as ref

PATHS = ["linear", "gvp", "vp"]
PREDICTIONS = ["velocity", "noise", "score"]
WEIGHTS = ["none", "velocity", "likelihood"]
CONVENTIONS = ["sit", "rae", "repa"]
TARGETS = ["t", "m"]


def data(shape=(6, 3, 5, 7), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("path,prediction,weight,convention,target",
                         list(itertools.product(PATHS, PREDICTIONS, WEIGHTS, CONVENTIONS, TARGETS)))
def test_prepare_and_loss_match_reference(path, prediction, weight, convention, target):
    tr = mixflow.Transport(path=path, prediction=prediction, loss_weight=weight, convention=convention,
                           target=target, gamma=0.6, time_dist="uniform")
    x1 = data()
    b = tr.prepare(x1, seed=11, step=3)
    # Draws lie in the training interval and the mixture interval.
    t0, t1 = ref.training_interval(path, prediction, convention)
    assert tr.training_interval == pytest.approx((t0, t1), abs=1e-12)
    assert np.all(b.t >= np.float32(t0)) and np.all(b.t <= np.float32(t1))
    n_t, n_m = (1 - b.t, 1 - b.m) if convention == "sit" else (b.t, b.m)   # noise levels
    assert np.all(n_m >= n_t - 1e-7) and np.all(n_m <= n_t + 0.6 * (1 - n_t) + 1e-6)

    x_in, tgt, scale = ref.expected_batch(x1, b.t, b.m, b.noise, path=path, prediction=prediction,
                                          convention=convention, target=target, loss_weight=weight)
    B = x1.shape[0]
    # float32 kernels on float32-rounded coefficients: a few ulp of |alpha x1| + |sigma x0|.
    scale_in = np.abs(x1.reshape(B, -1)) + np.abs(b.noise.reshape(B, -1)) + 1
    assert np.all(np.abs(b.x_in.reshape(B, -1) - x_in) <= 2e-6 * scale_in)
    tscale = np.abs(tgt) + 1
    assert np.all(np.abs(b.target.reshape(B, -1) - tgt) <= 1e-5 * tscale)

    pred = data(seed=5)
    mean, per, grad = tr.loss(pred, b)
    # Reference loss on the library's own target (the target itself was checked above).
    e_mean, e_per, e_grad = ref.expected_loss(pred, b.target.reshape(B, -1).astype(np.float64), scale)
    np.testing.assert_allclose(per, e_per, rtol=2e-5)
    assert mean == pytest.approx(e_mean, rel=2e-5)
    np.testing.assert_allclose(grad.reshape(B, -1), e_grad, rtol=2e-5, atol=1e-9 * np.abs(e_grad).max())


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_gradient_matches_finite_differences(convention):
    tr = mixflow.Transport(convention=convention, prediction="score", path="gvp", loss_weight="likelihood")
    x1 = data((3, 2, 4, 4))
    b = tr.prepare(x1, seed=2, step=9)
    pred = data((3, 2, 4, 4), seed=8)
    _, _, grad = tr.loss(pred, b)
    rng = np.random.default_rng(0)
    for _ in range(12):
        idx = tuple(rng.integers(0, s) for s in pred.shape)
        h = 1e-2 * max(1.0, abs(float(pred[idx])))
        plus, minus = pred.copy(), pred.copy()
        plus[idx] += h
        minus[idx] -= h
        fd = (tr.loss(plus, b)[0] - tr.loss(minus, b)[0]) / (2 * h)
        # The loss is quadratic in pred, so central differences are exact up to float32 rounding of the mean.
        assert fd == pytest.approx(float(grad[idx]), rel=2e-2, abs=2e-6 * max(1.0, abs(tr.loss(pred, b)[0])))


def test_gamma_zero_is_standard_flow_matching_exactly():
    x1 = data((64, 4, 8, 8))
    tr = mixflow.Transport(gamma=0.0, time_dist="uniform")
    b = tr.prepare(x1, seed=4, step=1)
    assert np.array_equal(b.t, b.m)
    t = b.t[:, None, None, None]
    np.testing.assert_allclose(b.x_in, t * x1 + (1 - t) * b.noise, rtol=0, atol=3e-6)
    np.testing.assert_allclose(b.target, x1 - b.noise, rtol=0, atol=3e-6)


def test_beta21_times_follow_beta_2_1_in_sit_convention():
    tr = mixflow.Transport(time_dist="beta21", gamma=0.8)
    b = tr.prepare(np.zeros((20000, 1), np.float32), seed=1)
    assert stats.kstest(b.t, stats.beta(2, 1).cdf).pvalue > 1e-3
    # m / t is uniform on [1 - gamma, 1].
    assert stats.kstest(b.m / b.t, stats.uniform(0.2, 0.8).cdf).pvalue > 1e-3


@pytest.mark.parametrize("convention,end", [("rae", 0.999), ("repa", 1.0)])
def test_beta21_in_noise_at_one_conventions(convention, end):
    tr = mixflow.Transport(time_dist="beta21", gamma=0.4, convention=convention)
    b = tr.prepare(np.zeros((20000, 1), np.float32), seed=2)
    # tau = 1 - sqrt(u), u ~ U[0, end): P(1 - tau <= x) = x^2 / end.
    assert stats.kstest(1 - b.t.astype(np.float64), lambda x: np.clip(x ** 2 / end, 0, 1)).pvalue > 1e-3
    # m_tau = tau + u gamma (1 - tau): (m - tau) / (gamma (1 - tau)) ~ U[0, 1].
    u = (b.m.astype(np.float64) - b.t) / (0.4 * (1 - b.t.astype(np.float64)))
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_rae_preset_shifts_after_the_beta_draw():
    tr = mixflow.Transport.preset("rae", latent_shape=(768, 16, 16))
    p = tr.params
    assert p["time_shift"] == pytest.approx(6.928203230, rel=1e-6) and p["gamma"] == pytest.approx(0.4)
    b = tr.prepare(np.zeros((20000, 1), np.float32), seed=3)
    unshifted = ref.rae_unshift(b.t.astype(np.float64), p["time_shift"])
    assert stats.kstest(1 - unshifted, lambda x: np.clip(x ** 2 / 0.999, 0, 1)).pvalue > 1e-3
    # The mixture is applied after the shift, on the shifted tau.
    u = (b.m.astype(np.float64) - b.t) / (0.4 * (1 - b.t.astype(np.float64)))
    assert u.min() >= -1e-5 and u.max() <= 1 + 1e-5
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_uniform_and_logit_normal_time_distributions():
    tr = mixflow.Transport(time_dist="uniform", prediction="noise")   # interval [1e-3, 1 - 1e-3]
    t = tr.prepare(np.zeros((20000, 1), np.float32), seed=4).t
    assert stats.kstest(t, stats.uniform(1e-3, 1 - 2e-3).cdf).pvalue > 1e-3
    tr = mixflow.Transport(time_dist="logit_normal", logit_normal_mean=0.3, logit_normal_std=0.8, convention="repa")
    t = tr.prepare(np.zeros((20000, 1), np.float32), seed=5).t.astype(np.float64)
    logit = np.log(t) - np.log1p(-t)
    assert stats.kstest(logit, stats.norm(0.3, 0.8).cdf).pvalue > 1e-3


def test_noise_is_standard_normal():
    b = mixflow.Transport().prepare(np.zeros((8, 4099), np.float32), seed=6)
    assert stats.kstest(b.noise.ravel(), "norm").pvalue > 1e-3


def test_results_do_not_depend_on_threads_or_batch_split():
    x1 = data((24, 4, 33, 33))   # dim 4356: not a multiple of the 32-element chunk
    full = mixflow.Transport(num_threads=1).prepare(x1, seed=7, step=5)
    for threads in (0, 2, 3):
        other = mixflow.Transport(num_threads=threads).prepare(x1, seed=7, step=5)
        for name in ("x_in", "t", "m", "noise", "target"):
            assert np.array_equal(getattr(full, name), getattr(other, name)), (threads, name)
    tr = mixflow.Transport(num_threads=2)
    part = tr.prepare(x1[10:17], seed=7, step=5, first_sample=10)
    for name in ("x_in", "t", "m", "noise", "target"):
        assert np.array_equal(getattr(full, name)[10:17], getattr(part, name)), name
    pred = data((24, 4, 33, 33), seed=1)
    a = mixflow.Transport(num_threads=1).loss(pred, full)
    c = mixflow.Transport(num_threads=2).loss(pred, full)
    assert a[0] == c[0] and np.array_equal(a[1], c[1]) and np.array_equal(a[2], c[2])


def test_seed_and_step_change_the_draws():
    x1 = data((4, 16))
    tr = mixflow.Transport()
    a, b, c = tr.prepare(x1, seed=1, step=0), tr.prepare(x1, seed=2, step=0), tr.prepare(x1, seed=1, step=1)
    assert not np.array_equal(a.noise, b.noise) and not np.array_equal(a.noise, c.noise)
    assert np.array_equal(a.noise, tr.prepare(x1, seed=1, step=0).noise)


def test_input_perturbation_perturbs_the_input_not_the_target():
    x1 = data((16, 2048))
    lam = 0.1
    tr = mixflow.Transport(gamma=0.0, input_perturbation=lam, time_dist="uniform")
    b = tr.prepare(x1, seed=3)
    t = b.t[:, None].astype(np.float64)
    xi = (b.x_in - t * x1 - (1 - t) * b.noise) / ((1 - t) * lam)
    keep = (1 - b.t) > 0.05     # rows with a usable noise coefficient
    assert stats.kstest(xi[keep].ravel(), "norm").pvalue > 1e-3
    np.testing.assert_allclose(b.target, x1 - b.noise, atol=3e-6)
    # Independent of x0.
    assert abs(np.corrcoef(xi[keep].ravel(), b.noise[keep].ravel())[0, 1]) < 0.02


def test_time_shift_on_sit_convention_acts_on_noise_level():
    tr = mixflow.Transport(time_dist="uniform", gamma=0.0, time_shift=3.0)
    t = tr.prepare(np.zeros((20000, 1), np.float32), seed=8).t.astype(np.float64)
    n = ref.rae_unshift(1 - t, 3.0)
    assert stats.kstest(n, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_uniform_mixture_draws_m_on_the_whole_interval_independent_of_t(convention):
    # The paper's ablation "m ~ U[0, 1]": m is uniform on the training interval whatever t is, so also
    # at lower noise than t; gamma plays no part.
    tr = mixflow.Transport(time_dist="beta21", gamma=0.3, convention=convention, mixture="uniform")
    assert tr.params["mixture"] == "uniform"
    t0, t1 = tr.training_interval
    b = tr.prepare(np.zeros((20000, 1), np.float32), seed=4)
    m = b.m.astype(np.float64)
    assert stats.kstest(m, stats.uniform(t0, t1 - t0).cdf).pvalue > 1e-3
    assert abs(stats.spearmanr(m, b.t).statistic) < 0.03
    n_t, n_m = (1 - b.t, 1 - m) if convention == "sit" else (b.t, m)
    assert np.mean(n_m < n_t) > 0.2                     # lower noise than t happens
    # The input is still built at m, with the label t: checked against the reference formula.
    x1 = data()
    b = tr.prepare(x1, seed=5, step=1)
    x_in, _, _ = ref.expected_batch(x1, b.t, b.m, b.noise, path="linear", prediction="velocity",
                                    convention=convention, target="t", loss_weight="none")
    B = x1.shape[0]
    assert np.all(np.abs(b.x_in.reshape(B, -1) - x_in) <= 2e-6 * (np.abs(x1.reshape(B, -1)) + 1 + np.abs(b.noise.reshape(B, -1))))


def test_uniform_mixture_is_shifted_like_t_and_leaves_t_unchanged():
    slowed = mixflow.Transport.preset("rae", latent_shape=(768, 16, 16))
    uniform = mixflow.Transport.preset("rae", latent_shape=(768, 16, 16), mixture="uniform")
    a, b = (tr.prepare(np.zeros((20000, 1), np.float32), seed=6) for tr in (slowed, uniform))
    np.testing.assert_array_equal(a.t, b.t)                 # same t draw; only m changes
    s = uniform.params["time_shift"]
    unshifted = ref.rae_unshift(b.m.astype(np.float64), s)
    assert stats.kstest(unshifted, stats.uniform(0, 0.999).cdf).pvalue > 1e-3
