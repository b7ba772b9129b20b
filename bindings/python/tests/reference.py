"""Independent numpy reference of the MixFlow transport, written from docs/exactness.md §1–§3
(not from the library's code). Everything in float64.

Paths are stated in the SiT convention (t = 0 noise, 1 data); the noise-at-1 conventions (RAE, REPA) use
the exact time reversal s = 1 − t, so d/dt flips sign.
"""
import numpy as np

BETA_MIN, BETA_MAX = 0.1, 20.0


def path_coefficients(path: str, s):
    """(alpha, d_alpha, sigma, d_sigma) at SiT time s (docs/exactness.md §2.1)."""
    s = np.asarray(s, np.float64)
    if path == "linear":
        return s, np.ones_like(s), 1 - s, -np.ones_like(s)
    if path == "gvp":
        h = np.pi / 2
        return np.sin(h * s), h * np.cos(h * s), np.cos(h * s), -h * np.sin(h * s)
    if path == "vp":
        L = -0.25 * (1 - s) ** 2 * (BETA_MAX - BETA_MIN) - 0.5 * (1 - s) * BETA_MIN
        dL = 0.5 * (1 - s) * (BETA_MAX - BETA_MIN) + 0.5 * BETA_MIN
        alpha = np.exp(L)
        sigma = np.sqrt(1 - np.exp(2 * L))
        return alpha, alpha * dL, sigma, -np.exp(2 * L) * dL / sigma
    raise ValueError(path)


def drift_var(path: str, s):
    """docs/exactness.md §2.2: (d_alpha/alpha) sigma^2 - sigma d_sigma; closed forms: Linear (1-s)/s, GVP (pi/2)cot(pi s/2),
    VP beta(s)/2."""
    s = np.asarray(s, np.float64)
    if path == "linear":
        return (1 - s) / s
    if path == "gvp":
        return (np.pi / 2) / np.tan(np.pi * s / 2)
    if path == "vp":
        return 0.5 * (BETA_MIN + (1 - s) * (BETA_MAX - BETA_MIN))
    raise ValueError(path)


def sit_time(convention: str, t):
    t = np.asarray(t, np.float64)
    return t if convention == "sit" else 1 - t


def velocity_sign(convention: str) -> float:
    return 1.0 if convention == "sit" else -1.0


def train_eps(path: str, prediction: str) -> float:
    """SiT create_transport (docs/exactness.md §3.1)."""
    if path == "vp":
        return 1e-5
    return 0.0 if prediction == "velocity" else 1e-3


def training_interval(path: str, prediction: str, convention: str):
    """check_interval(train_eps, sample_eps) for training; RAE starts from t1 = 1 - 1/1000 (docs/exactness.md §3.1)."""
    eps = train_eps(path, prediction)
    end = 0.999 if convention == "rae" else 1.0
    if path == "vp":
        return 0.0, 1 - eps
    if prediction == "velocity":
        return 0.0, end
    return eps, 1 - eps


def weight(path: str, loss_weight: str, s):
    if loss_weight in (None, "none"):
        return np.ones_like(np.asarray(s, np.float64))
    sigma = path_coefficients(path, s)[2]
    dv = drift_var(path, s)
    if loss_weight == "velocity":
        return (dv / sigma) ** 2
    if loss_weight == "likelihood":
        return dv / sigma ** 2
    raise ValueError(loss_weight)


def expected_batch(x1, t, m, noise, *, path, prediction, convention, target="t", loss_weight=None):
    """x_in and target for given draws: x_in = alpha(m) x1 + sigma(m) x0; target at t (or m)."""
    B = x1.shape[0]
    x1 = x1.reshape(B, -1).astype(np.float64)
    x0 = noise.reshape(B, -1).astype(np.float64)
    sm = sit_time(convention, m.astype(np.float64))[:, None]
    a, _, s, _ = path_coefficients(path, sm)
    x_in = a * x1 + s * x0
    st = sit_time(convention, (t if target == "t" else m).astype(np.float64))[:, None]
    a_t, da_t, s_t, ds_t = path_coefficients(path, st)
    if prediction == "velocity":
        tgt = velocity_sign(convention) * (da_t * x1 + ds_t * x0)
        scale = np.ones(B)
    elif prediction == "noise":
        tgt = x0
        scale = weight(path, loss_weight, st[:, 0])
    else:  # score, SiT: mean_flat(w (out sigma + x0)^2) = w sigma^2 mean((out + x0/sigma)^2)
        tgt = -x0 / s_t
        scale = weight(path, loss_weight, st[:, 0]) * s_t[:, 0] ** 2
    return x_in, tgt, scale


def expected_loss(pred, tgt, scale):
    """Per-sample c_i mean_j (pred - target)^2, the batch mean, and d(mean)/d(pred)."""
    B = pred.shape[0]
    p = pred.reshape(B, -1).astype(np.float64)
    d = p - tgt
    per = scale * (d ** 2).mean(axis=1)
    grad = 2 * scale[:, None] * d / d.size
    return per.mean(), per, grad


def rae_shift(n, s):
    """RAE's dimension shift on the noise level (docs/exactness.md §3.2)."""
    return s * n / (1 + (s - 1) * n)


def rae_unshift(n, s):
    return n / (s - (s - 1) * n)
