"""Two or more builds of libmixflow against each other, alternated: SiT forward and step (forward + MSE +
backward) wall time, in one process, on the same weights and batch.

    python3 benchmarks/sit/ab.py [--threads 2] [--rounds 20] [--clock wall|cpu] [--arch SiT-S/2] BASE.so NEW.so [...]

Each round calls every build once (forward, then step), in turn, the order reversed every other round; the
first round is a warm-up. It prints, per build, the fastest and the median time and the median of the per-round
ratios to the first build: a change of a few percent shows there, where `bench.py`'s ratios to PyTorch move by
±10 % with the VM's speed from one run to the next. It first checks that the builds give the same bits
(forward output, loss and dL/dx, with adaLN and the final layer non-zero) and says so. `--clock cpu` times the
process's CPU time (all threads) instead of wall time: on a VM whose neighbours steal time it moves less, but
it does not see a worker waiting idle for another.
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

bench.load_torch()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--arch", default="SiT-S/2")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("libraries", nargs="+")
    a = ap.parse_args()
    fp = C.POINTER(C.c_float)
    rng = np.random.default_rng(0)
    builds, P, batch = [], None, None
    for path in a.libraries:
        os.environ["MIXFLOW_LIBRARY"] = str(Path(path).resolve())
        lib, _ = bench.load_lib()
        m, P = bench.sit_model(lib, a.arch, 32, 4, a.threads, P=P, rng=rng)
        x, t, y, tg = batch = batch or bench.sit_batch(rng, a.batch, 4, 32)
        out, dx, loss = np.empty_like(x), np.empty_like(x), C.c_float()
        args = [v.ctypes.data_as(fp if v.dtype == np.float32 else C.POINTER(C.c_int32)) for v in (x, t, y, tg)]
        forward = lambda lib=lib, m=m, out=out, args=args: bench.check(  # noqa: E731
            lib, lib.mixflow_model_forward(m, *args[:3], a.batch, out.ctypes.data_as(fp)))
        step = lambda lib=lib, m=m, dx=dx, loss=loss, args=args: bench.check(  # noqa: E731
            lib, lib.mixflow_model_gradients(m, *args, a.batch, C.byref(loss), dx.ctypes.data_as(fp)))
        forward(), step()
        builds.append(dict(path=path, forward=forward, step=step, bits=(out.tobytes(), dx.tobytes(), loss.value),
                           times={"forward": [], "step": []}))
    same = all(b["bits"] == builds[0]["bits"] for b in builds)
    clock = time.perf_counter if a.clock == "wall" else time.process_time
    print(f"{a.arch} 32x32x4 batch {a.batch}, {a.threads} threads, {a.rounds} rounds, {a.clock} time; "
          f"forward, loss and dx {'bit-identical' if same else 'DIFFER'} across the builds")
    for r in range(a.rounds + 1):
        for b in builds if r % 2 == 0 else builds[::-1]:
            for name in ("forward", "step"):
                t0 = clock()
                b[name]()
                if r:
                    b["times"][name].append(clock() - t0)
    for name in ("forward", "step"):
        base = np.array(builds[0]["times"][name])
        for b in builds:
            v = np.array(b["times"][name])
            print(f"{name:7s} {b['path']}: min {v.min():.3f} s, median {np.median(v):.3f} s, "
                  f"median ratio to the first build {np.median(v / base):.3f}")


if __name__ == "__main__":
    sys.exit(main())
