"""Process CPU time (all threads) of SiT forward and step (forward + MSE + backward) calls, libmixflow against
PyTorch, in one process; much less sensitive than wall-clock time to other jobs on a shared machine.

    python3 benchmarks/sit/cputime.py [--threads 1] [--repeats 3] [LIBRARY ...]

Each LIBRARY (default: this checkout's release build) is timed in turn on the same weights and batch as
benchmarks/sit/bench.py (SiT-S/2, 32x32x4, batch 16), so two builds can be compared in the same run. Every
figure is the best of --repeats calls after a warm-up. At more than one thread PyTorch's OpenMP workers may
spin while waiting, which counts as CPU time: compare at one thread.
"""
import argparse
import ctypes as C
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

torch = bench.load_torch()


def best(fn, repeats):
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("libraries", nargs="*")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    B, fp, ip = 16, C.POINTER(C.c_float), C.POINTER(C.c_int32)
    rng = np.random.default_rng(0)
    results, P, batch = {}, None, None
    for path in a.libraries or [None]:
        if path:
            os.environ["MIXFLOW_LIBRARY"] = path
        lib, path = bench.load_lib()
        m, P = bench.sit_model(lib, "SiT-S/2", 32, 4, a.threads, P=P, rng=rng)  # the first library's weights for all
        x, t, y, tg = batch = batch or bench.sit_batch(rng, B, 4, 32)
        out, dx, loss = np.empty_like(x), np.empty_like(x), C.c_float()
        X, T, Y, TG, O, DX = (v.ctypes.data_as(fp if v.dtype == np.float32 else ip) for v in (x, t, y, tg, out, dx))
        results[path] = (best(lambda: bench.check(lib, lib.mixflow_model_forward(m, X, T, Y, B, O)), a.repeats),
                         best(lambda: bench.check(lib, lib.mixflow_model_gradients(m, X, T, Y, TG, B, C.byref(loss), DX)),
                              a.repeats))
        lib.mixflow_model_free(m)
    cfg = dict(depth=12, hidden=384, heads=6, patch=2, input=32, channels=4)
    Pt = {k: v.clone().requires_grad_(k != "pos_embed") for k, v in P.items()}
    xt, tt, yt, tgt = (torch.from_numpy(v) for v in (x, t, y.astype(np.int64), tg))

    def forward():
        with torch.no_grad():
            bench.torch_sit(Pt, cfg, xt, tt, yt)

    def step():
        for v in Pt.values():
            v.grad = None
        ((bench.torch_sit(Pt, cfg, xt, tt, yt) - tgt) ** 2).mean().backward()
    tf, ts = best(forward, a.repeats), best(step, a.repeats)
    print(f"SiT-S/2 32x32x4 batch {B}, {a.threads} threads, torch {torch.__version__}; CPU s (wall s), ratio to torch")
    print(f"torch: forward {tf[0]:.2f} ({tf[1]:.2f})  step {ts[0]:.2f} ({ts[1]:.2f})")
    for path, (f, s) in results.items():
        print(f"{path}: forward {f[0]:.2f} ({f[1]:.2f}) {f[0] / tf[0]:.2f}x  step {s[0]:.2f} ({s[1]:.2f}) {s[0] / ts[0]:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
