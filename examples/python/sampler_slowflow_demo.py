"""Sampling with a Python model, the Slow Flow diagnostic and the γ it suggests.

The model is the exact velocity of Gaussian data N(mu, s²) on the Linear path, slowed down on purpose by a
factor c (it returns c·v): the sampler then lags the true interpolation, the diagnostic measures by how much,
and suggest_gamma turns that into a MixFlow γ. Writes slow_flow.csv/.json (and slow_flow.png with matplotlib)
to a temporary folder.

    python3 examples/python/sampler_slowflow_demo.py
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402

MU, S, C = 1.0, 0.5, 0.8


def velocity(x, t):
    t = t.reshape(-1, 1)
    var = t * t * S * S + (1 - t) ** 2
    return MU + (t * S * S - (1 - t)) / var * (x - t * MU)


rng = np.random.default_rng(0)
noise = rng.standard_normal((256, 64)).astype(np.float32)
data = (MU + S * rng.standard_normal((2000, 64))).astype(np.float32)

x = mixflow.sample(lambda x, t, y: velocity(x, t), noise, method="heun", steps=50)
print(f"exact model, heun 50 points: max |x - (mu + s z)| = {np.abs(x - (MU + S * noise)).max():.2e}")

slow = lambda x, t, y: C * velocity(x, t)  # noqa: E731
for reference in ("endpoint", "nearest_data", "noise_level"):
    sf = mixflow.slow_flow(slow, noise, steps=50, method="euler", reference=reference,
                           data=None if reference == "endpoint" else data)
    s = sf.stats
    mid = np.argmin(np.abs(s["t"] - 0.5))
    print(f"{reference:>12}: at t = {s['t'][mid]:.2f} median m = {s['q50_m'][mid]:.3f}, "
          f"fraction m <= t = {s['frac_m_le_t'][mid]:.2f}, suggest_gamma = {mixflow.suggest_gamma(sf):.3f}")

out = Path(tempfile.mkdtemp(prefix="mixflow-slowflow-"))
sf.to_csv(out / "slow_flow.csv")
sf.to_json(out / "slow_flow.json")
try:
    sf.plot(out / "slow_flow.png")
except ImportError:
    pass
print(f"wrote {sorted(p.name for p in out.iterdir())} to {out}")
