"""Sampling a real model with one thread and with N, in one run: how well the library's threads work together.

    python3 benchmarks/sampler/threads.py [--threads 2] [--samples 250] [--steps 50] [--repeats 3]
                                          [--model models/fmnist-base/base.onnx]

Samples the model (default: the shipped Fashion-MNIST base, a SiT with 1.28 M parameters and 49 tokens: the
main job's evaluations) with `Sampler.sample_model` (Euler, --steps grid points, the same noise and labels
every time) at 1 thread and at --threads, the calls alternated, and prints for each the best wall time of
--repeats calls with its CPU time, then the speed-up of --threads over 1 and the parallel efficiency (speed-up /
threads). The 1-thread run is the reference measured in the same run. It also checks that both thread counts
give the same bits. `MIXFLOW_LIBRARY` selects the build; the machine lines (CPU, ISA flags, GEMM kernel, sgemm
peak) come first.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "benchmarks" / "gemm"))
import machine  # noqa: E402
import mixflow  # noqa: E402
from mixflow import _lib  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=250)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=str(ROOT / "models" / "fmnist-base" / "base.onnx"))
    a = ap.parse_args()
    lines, _ = machine.header(_lib.lib, a.threads)
    print(lines)
    counts = (1, a.threads)
    models = {n: mixflow.Model.from_onnx(a.model, num_threads=n) for n in counts}
    m = models[1]
    shape = (a.samples, m.in_channels, m.input_size, m.input_size)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(shape).astype(np.float32)
    labels = (np.arange(a.samples) % m.num_classes).astype(np.int32)
    sampler = mixflow.Sampler("euler", a.steps)
    best = {n: (float("inf"), 0.0) for n in counts}
    out = {}
    for _ in range(a.repeats + 1):   # the first round warms up (activation buffers, replicas, page faults)
        for n in counts:
            w0, c0 = time.perf_counter(), time.process_time()
            out[n] = sampler.sample_model(models[n], noise, labels).x
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            best[n] = min(best[n], (wall, cpu))
    same = np.array_equal(out[1], out[a.threads])
    print(f"{Path(a.model).name}: {a.samples} samples, Euler {a.steps} points; lib {_lib.lib._name}; "
          f"{'same bits at both thread counts' if same else 'DIFFERENT BITS between the thread counts'}")
    for n in counts:
        print(f"{n} thread(s): {best[n][0]:.3f} s wall, {best[n][1]:.3f} s CPU")
    speedup = best[1][0] / best[a.threads][0]
    print(f"speed-up of {a.threads} threads over 1: {speedup:.2f}x (parallel efficiency {speedup / a.threads:.0%})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
