"""Per-step overhead of the library's samplers (the model excluded) against numpy doing the same update.

B = 64, D = 4·32·32 (SiT latents). Cases, each timed as the best of `--repeats` runs:
  euler step     `Sampler.step` (ODE Euler: validation of x and the model output + x + h·v)   vs  numpy x + h*v
  sde_euler step `Sampler.step` (SiT Euler–Maruyama: Philox noise + drift with the score)       vs  numpy with its Generator
  heun loop      `mixflow.sample` (heun2, 50 points) with a model returning a fixed array, minus the model
                 time, per step                                                             vs  the same loop in numpy

    python3 benchmarks/sampler/bench.py [--repeats 20]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402

B, D = 64, 4 * 32 * 32


def best(fn, repeats):
    fn()
    t = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, D)).astype(np.float32)
    v = rng.standard_normal((B, D)).astype(np.float32)
    rows = []

    with mixflow.Sampler("euler", 50) as s:
        h = np.float32(1 / 49)
        lib = best(lambda: s.step(v, 3, x), a.repeats)
        ref = best(lambda: x + h * v, a.repeats)
        rows.append(("euler step", lib, ref))

    with mixflow.Sampler("sde_euler", 250) as s:
        t, dt = np.float32(s.timesteps[3]), np.float32(s.timesteps[1] - s.timesteps[0])
        gen = np.random.default_rng(1)

        def numpy_em():
            # SiT EM, Linear velocity, sigma diffusion w = 1 − t: drift = v + w·score, score = (t·v − x)/(1 − t)
            w = 1 - t
            score = (t * v - x) / (1 - t)
            return x + (v + w * score) * dt + np.sqrt(2 * w) * np.sqrt(dt) * gen.standard_normal((B, D), np.float32)
        rows.append(("sde_euler step", best(lambda: s.step(v, 3, x), a.repeats), best(numpy_em, a.repeats)))

    steps = 50
    model = lambda xx, tt, yy: v  # noqa: E731 - a model that costs nothing but the callback
    loop = best(lambda: mixflow.sample(model, x, method="heun", steps=steps), max(3, a.repeats // 4))
    grid = np.linspace(0, 1, steps, dtype=np.float32)

    def numpy_heun():
        y = x.copy()
        for t0, t1 in zip(grid[:-1], grid[1:]):
            hh = t1 - t0
            k1 = model(y, None, None)
            k2 = model(y + hh * k1, None, None)
            y = y + hh * (k1 + k2) / 2
        return y
    ref_loop = best(numpy_heun, max(3, a.repeats // 4))
    rows.append(("heun loop, per step", loop / (steps - 1), ref_loop / (steps - 1)))

    print(f"B={B} D={D} ({B * D * 4 / 2**20:.1f} MiB per state)")
    print(f"{'case':<22}{'libmixflow':>12}{'numpy':>12}{'numpy/lib':>11}")
    for name, lib_t, ref_t in rows:
        print(f"{name:<22}{lib_t * 1e3:>10.3f}ms{ref_t * 1e3:>10.3f}ms{ref_t / lib_t:>10.2f}x")


if __name__ == "__main__":
    main()
