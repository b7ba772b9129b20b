"""The Slow Flow diagnostic: how far behind the ground-truth interpolation a sampler's states are, and the
MixFlow γ this suggests. Times are in the paper's convention (0 = noise, 1 = data) whatever the model's."""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from . import _lib
from . import _types as T
from ._lib import check, fptr, lib
from .sampler import sample as _sample
from .transport import _CONVENTIONS, _PATHS, _choice, as_float32

_REFERENCES = {"endpoint": T.SlowFlowReference.ENDPOINT, "nearest_data": T.SlowFlowReference.NEAREST_DATA,
               "noise_level": T.SlowFlowReference.NOISE_LEVEL}
COLUMNS = ["t", "mean_m", "q05_m", "q25_m", "q50_m", "q75_m", "q95_m", "mean_ratio", "q05_ratio", "q25_ratio",
           "q50_ratio", "q75_ratio", "q95_ratio", "frac_m_le_t"]


def _dp(a: np.ndarray):
    return a.ctypes.data_as(_lib.DP)


@dataclass
class SlowFlow:
    """``t`` [K] grid times and ``m`` [B, K] nearest ground-truth times, both in the paper's convention;
    ``reference`` the definition used; ``samples`` the generated samples; ``nfe`` the sampler's NFE."""
    t: np.ndarray
    m: np.ndarray
    reference: str
    samples: np.ndarray | None = None
    nfe: int = 0

    @property
    def stats(self) -> dict[str, np.ndarray]:
        """Per grid time: t, mean and 5/25/50/75/95 % quantiles of m and of m/t (NaN at t = 0), fraction m ≤ t."""
        t, m = np.ascontiguousarray(self.t, np.float64), np.ascontiguousarray(self.m, np.float64)
        out = np.empty((len(t), T.SLOW_FLOW_NUM_COLUMNS), np.float64)
        check(lib.mixflow_slow_flow_stats(_dp(t), _dp(m), m.shape[0], len(t), _dp(out)))
        return {name: out[:, i] for i, name in enumerate(COLUMNS)}

    def _export(self, path, fmt) -> None:
        t, m = np.ascontiguousarray(self.t, np.float64), np.ascontiguousarray(self.m, np.float64)
        check(lib.mixflow_slow_flow_export(str(path).encode(), int(fmt), int(_REFERENCES[self.reference]), _dp(t), _dp(m),
                                           m.shape[0], len(t)))

    def to_csv(self, path: str | os.PathLike) -> None:
        self._export(path, T.ExportFormat.CSV)

    def to_json(self, path: str | os.PathLike) -> None:
        self._export(path, T.ExportFormat.JSON)

    def plot(self, path: str | os.PathLike | None = None, ax: Any = None) -> Any:
        """A figure like the paper's Figure 1: median m against t with 5–95 % and 25–75 % bands and the
        diagonal m = t (no slowdown). Saves a PNG when ``path`` is given. Needs matplotlib."""
        try:
            import matplotlib
            if path is not None and ax is None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("SlowFlow.plot needs matplotlib (pip install matplotlib)") from e
        s = self.stats
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.fill_between(s["t"], s["q05_m"], s["q95_m"], alpha=0.2, label="5–95 %")
        ax.fill_between(s["t"], s["q25_m"], s["q75_m"], alpha=0.4, label="25–75 %")
        ax.plot(s["t"], s["q50_m"], label="median m")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="m = t")
        ax.set_xlabel("sampling time t (0 = noise, 1 = data)")
        ax.set_ylabel("nearest ground-truth time m")
        ax.set_title(f"Slow Flow ({self.reference})")
        ax.legend(loc="upper left")
        if path is not None and fig is not None:
            fig.savefig(path, dpi=120, bbox_inches="tight")
            plt.close(fig)
        return ax


def measure(trajectory: ArrayLike, t: ArrayLike, noise: ArrayLike, reference: str = "endpoint",
            data: ArrayLike | None = None, path: str = "linear", convention: str = "sit") -> SlowFlow:
    """Slow Flow of an existing trajectory [K, B, ...] at model-convention times ``t`` [K] from ``noise`` [B, ...]."""
    traj = as_float32(trajectory, "trajectory")
    noise = as_float32(noise, "noise")
    t = np.ascontiguousarray(t, np.float64)
    k, b = traj.shape[0], noise.shape[0]
    dim = int(np.prod(noise.shape[1:], dtype=np.int64)) if noise.ndim > 1 else 1
    if traj.shape[1:] != noise.shape or t.shape != (k,):
        raise ValueError(f"trajectory must be [K, *noise.shape] with t [K]; got {traj.shape}, {noise.shape}, {t.shape}")
    ref = _choice(_REFERENCES, reference, "reference")
    d = None if data is None else as_float32(data, "data").reshape(-1, dim)
    out_t, out_m = np.empty(k, np.float64), np.empty((b, k), np.float64)
    check(lib.mixflow_slow_flow_measure(ref, _choice(_PATHS, path, "path"), _choice(_CONVENTIONS, convention, "convention"),
                                        _dp(t), k, fptr(traj), fptr(noise), b, dim, fptr(d), 0 if d is None else d.shape[0],
                                        _dp(out_t), _dp(out_m)))
    return SlowFlow(t=out_t, m=out_m, reference=reference)


slow_flow_measure = measure


def slow_flow(model_fn: Callable[..., ArrayLike], noise: ArrayLike, steps: int = 50, method: str = "euler",
              convention: str = "sit", reference: str = "endpoint", data: ArrayLike | None = None, path: str = "linear",
              **sample_options: Any) -> SlowFlow:
    """Runs the sampler with its trajectory and measures the Slow Flow under ``reference``
    ("endpoint", "nearest_data" or "noise_level"; the last two need ``data`` [N, ...])."""
    result = _sample(model_fn, noise, method=method, steps=steps, convention=convention, path=path, trajectory=True,
                     **sample_options)
    sf = measure(result.trajectory, result.t, noise, reference=reference, data=data, path=path, convention=convention)
    sf.samples, sf.nfe = result.x, result.nfe
    return sf


def suggest_gamma(sf: SlowFlow, coverage: float = 0.95) -> float:
    """The smallest γ whose mixture interval [(1 − γ)t, t] covers ``coverage`` of the measured slowed times
    (pooled over samples and t > 0; 0 when nothing is slowed)."""
    t, m = np.ascontiguousarray(sf.t, np.float64), np.ascontiguousarray(sf.m, np.float64)
    out = ctypes.c_double()
    check(lib.mixflow_slow_flow_suggest_gamma(_dp(t), _dp(m), m.shape[0], len(t), float(coverage), ctypes.byref(out)))
    return out.value


class Lag(NamedTuple):
    """``slowed``: fraction of (sample, t) pairs with m < t; ``median_ratio``: median m/t; ``lags``: both say the
    path runs behind its labels (``slowed > 0.5`` and ``median_ratio < 1``)."""
    slowed: float
    median_ratio: float
    lags: bool


def lag(sf: SlowFlow, exclude_final: bool | None = None) -> Lag:
    """How much the measured path lags, pooled over samples and grid times with t > 0; the last grid time is
    skipped under the endpoint definition (its state is the end point itself) unless ``exclude_final`` says
    otherwise. Under the endpoint definition this is what ``mixflow slowflow`` advises from (docs/slow-flow.md)."""
    t, m = np.ascontiguousarray(sf.t, np.float64), np.ascontiguousarray(sf.m, np.float64)
    skip = sf.reference == "endpoint" if exclude_final is None else exclude_final
    slowed, median, lags = ctypes.c_double(), ctypes.c_double(), ctypes.c_int32()
    check(lib.mixflow_slow_flow_lag(_dp(t), _dp(m), m.shape[0], len(t), int(skip), ctypes.byref(slowed),
                                    ctypes.byref(median), ctypes.byref(lags)))
    return Lag(slowed.value, median.value, bool(lags.value))


slow_flow_lag = lag


def outlook(endpoint: Lag | SlowFlow, nearest_data_gamma: float | None = None) -> bool | None:
    """Whether MixFlow post-training is expected to beat standard post-training (results/regimes): True when the
    endpoint path lags, False when it does not and the nearest-data suggest_gamma is below 0.3 (samples near the
    data), None (undecided) when the path does not lag and ``nearest_data_gamma`` is not given or is 0.3 or more
    (there MixFlow helped one measured base and hurt another). ``endpoint``: the endpoint measurement or its
    ``slow_flow_lag``."""
    lags = (endpoint if isinstance(endpoint, Lag) else lag(endpoint)).lags
    out = ctypes.c_int32()
    check(lib.mixflow_slow_flow_outlook(int(lags), -1.0 if nearest_data_gamma is None else float(nearest_data_gamma),
                                        ctypes.byref(out)))
    return None if out.value < 0 else bool(out.value)


slow_flow_outlook = outlook


class OutlookRule(NamedTuple):
    """The constants of ``outlook``'s rule: ``helpful_gamma`` the (min, max) γ range at which MixFlow helped where
    it helped (what "expected to help" refers to), ``far_from_data`` the nearest-data suggest_gamma from which the
    samples count as far from the data (no lag and at least this: undecided)."""
    helpful_gamma: tuple[float, float]
    far_from_data: float


def outlook_rule() -> OutlookRule:
    """The constants of ``outlook``'s rule, as the library applies them."""
    lo, hi, far = ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
    check(lib.mixflow_slow_flow_outlook_rule(ctypes.byref(lo), ctypes.byref(hi), ctypes.byref(far)))
    return OutlookRule((lo.value, hi.value), far.value)


slow_flow_outlook_rule = outlook_rule
