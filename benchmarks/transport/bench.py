"""prepare + loss throughput of the MixFlow transport, against references measured in the same run:
(a) a copy of the same number of bytes (the memory-bandwidth limit; the best of a 1-thread and a 2-thread
numpy copy), and (b) numpy doing the same maths (numpy's own Generator for the randomness).

Traffic counted per element: prepare reads x1 and writes x_in, noise, target (16 B); loss reads pred and
target and writes grad (12 B): 28 B/element.

    python3 benchmarks/transport/bench.py [--repeats 15]
"""
import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "gemm"))
import machine  # noqa: E402  (CPU, ISA, GEMM kernel and sgemm peak of this run)
import mixflow  # noqa: E402
from mixflow import _lib  # noqa: E402

CASES = [("SiT latents  B=256 D=4x32x32", 256, 4 * 32 * 32), ("RAE latents  B=32  D=768x16x16", 32, 768 * 16 * 16)]
BYTES_PER_ELEMENT = 28


def best_time(fn, repeats):
    fn()  # warm-up: page faults, thread start
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def copy_reference(n_bytes, repeats):
    """Time to move n_bytes of traffic as a copy (reads n/2, writes n/2), 1 and 2 threads."""
    n = n_bytes // 2 // 4
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    one = best_time(lambda: np.copyto(dst, src), repeats)

    def two():
        half = n // 2
        th = threading.Thread(target=np.copyto, args=(dst[:half], src[:half]))
        th.start()
        np.copyto(dst[half:], src[half:])
        th.join()
    return min(one, best_time(two, repeats))


def numpy_reference(x1, pred, gamma, rng):
    B = x1.shape[0]
    t = np.sqrt(rng.random(B, dtype=np.float32))
    m = t * (1 - gamma * rng.random(B, dtype=np.float32))
    x0 = rng.standard_normal(x1.shape, dtype=np.float32)
    mm = m[:, None]
    x_in = mm * x1 + (1 - mm) * x0
    target = x1 - x0
    d = pred - target
    per = (d * d).mean(axis=1)
    grad = d * np.float32(2.0 / d.size)
    return x_in, target, per.mean(), grad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    tr = mixflow.Transport.preset("sit", gamma=0.8)
    print(f"libmixflow {mixflow.__version__}, best of {args.repeats}; ratios > 1 favour libmixflow")
    print(machine.header(_lib.lib, 2)[0])
    print(f"transport kernels: {mixflow.blas_info().get('transport kernels', '?')}\n")
    print(f"{'case':32s} {'mixflow':>9s} {'GB/s':>6s} {'copy GB/s':>9s} {'vs copy':>8s} {'numpy':>9s} {'vs numpy':>9s}")
    for name, B, D in CASES:
        rng = np.random.default_rng(0)
        x1 = rng.standard_normal((B, D), dtype=np.float32)
        pred = rng.standard_normal((B, D), dtype=np.float32)
        step = [0]

        batch = tr.prepare(x1)          # output buffers reused across steps, as a training loop would
        grad = np.empty_like(pred)

        def lib():
            tr.prepare(x1, seed=0, step=step[0], out=batch)
            tr.loss(pred, batch, grad_out=grad)
            step[0] += 1
        t_lib = best_time(lib, args.repeats)
        traffic = BYTES_PER_ELEMENT * B * D
        t_copy = copy_reference(traffic, args.repeats)
        t_np = best_time(lambda: numpy_reference(x1, pred, 0.8, rng), args.repeats)
        print(f"{name:32s} {t_lib * 1e3:7.2f}ms {traffic / t_lib / 1e9:6.1f} {traffic / t_copy / 1e9:9.1f} "
              f"{t_copy / t_lib:7.2f}x {t_np * 1e3:7.2f}ms {t_np / t_lib:8.2f}x")


if __name__ == "__main__":
    main()
