"""Data-parallel scale-out: MixFlow post-training steps of SiT-S/2 (32×32×4 latents, global batch 32) in one
process with 2 threads against 2 MPI ranks with 1 thread each (mpi4py, the gradient hook of
examples/python/data_parallel.py), the all-reduce's share of a step, and a model of the communication cost of
SiT-XL/2 for planning a cluster run.

    python3 benchmarks/scaleout/bench.py [--steps 4] [--repeats 3]

The two configurations alternate `repeats` times and the best of each is kept (other jobs on a shared
machine only ever slow a run down). Every figure is printed with the CPU, its ISA flags and the GEMM kernel (benchmarks/gemm/machine.py).
Needs the release library (swift build -c release), Open MPI and mpi4py (scripts/install-deps.sh).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "benchmarks" / "gemm"))
GLOBAL_BATCH = 32
# Open MPI's defaults (shared memory with single-copy CMA between the ranks), allowed as root, on loopback.
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader",
           "OMPI_MCA_oob_tcp_if_include": "lo"}


def sit_parameters(depth, hidden, patch, channels=4, input_size=32, classes=1000, learn_sigma=True):
    """Parameter count of a SiT (DiT layout): patch embedding, time and class embedders, depth blocks of
    attention + MLP(4×) + adaLN(6×), final adaLN(2×) + linear, and the fixed positional embedding."""
    d, out = hidden, patch * patch * channels * (2 if learn_sigma else 1)
    tokens = (input_size // patch) ** 2
    block = (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d) + (6 * d * d + 6 * d)
    return (channels * patch * patch * d + d + 256 * d + d + d * d + d + (classes + 1) * d + tokens * d
            + depth * block + 2 * d * d + 2 * d + d * out + out)


def worker(steps, threads):
    """One rank (or the single process): time `steps` training steps after a warm-up step, the time spent in the
    gradient hook, and a bare all-reduce of the gradient's size; rank 0 prints one JSON line."""
    from mpi4py import MPI
    import mixflow
    comm = MPI.COMM_WORLD
    model = mixflow.Model.create("SiT-S/2", seed=0, num_threads=threads)
    trainer = mixflow.Trainer(model, mixflow.Transport.preset("sit"), preset="sit", seed=0, num_threads=threads)
    base, extra = divmod(GLOBAL_BATCH, comm.size)
    first, rows = comm.rank * base + min(comm.rank, extra), base + (comm.rank < extra)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((GLOBAL_BATCH, 4, 32, 32)).astype(np.float32)[first:first + rows]
    y = rng.integers(0, 1000, GLOBAL_BATCH)[first:first + rows]
    in_hook = [0.0]

    def allreduce(grads, step):
        t = time.perf_counter()
        grads *= np.float32(rows / GLOBAL_BATCH)
        comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
        in_hook[0] += time.perf_counter() - t
    if comm.size > 1:
        trainer.set_gradient_hook(allreduce)
    trainer.step(x, y, first_sample=first)               # warm-up: buffers, page faults
    comm.Barrier()
    in_hook[0] = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(x, y, first_sample=first)
    comm.Barrier()
    elapsed = time.perf_counter() - start
    grads = np.zeros(model.num_params, np.float32)
    bare = []
    for _ in range(5 if comm.size > 1 else 0):            # the all-reduce alone, every rank ready
        comm.Barrier()
        t = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
        bare.append(time.perf_counter() - t)
    hook = comm.reduce(in_hook[0], op=MPI.MAX, root=0)
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size, "threads": threads, "params": model.num_params, "step": elapsed / steps,
                          "hook": hook / steps, "allreduce": min(bare) if bare else 0.0}))


def run(ranks, threads, steps):
    command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--steps", str(steps)]
    if ranks > 1:
        command = ["mpirun", "-n", str(ranks), "--oversubscribe", *command]
    out = subprocess.run(command, env=os.environ | MPI_ENV, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.steps, a.threads)
    best = {}
    for _ in range(a.repeats):
        for ranks, threads in ((1, 2), (2, 1)):
            r = run(ranks, threads, a.steps)
            if (ranks, threads) not in best or r["step"] < best[ranks, threads]["step"]:
                best[ranks, threads] = r
    one, two = best[1, 2], best[2, 1]
    import machine  # CPU, ISA, GEMM kernel and sgemm peak of this run
    from mixflow import _lib
    print(machine.header(_lib.lib, 2)[0] + f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print(f"SiT-S/2, 32x32x4 latents, global batch {GLOBAL_BATCH}, {one['params']:,} parameters; "
          f"best of {a.repeats} x {a.steps} steps\n")
    print("| configuration | step | steps/s | samples/s | in the gradient hook | bare all-reduce |")
    print("|---|---|---|---|---|---|")
    for name, r in (("1 rank x 2 threads", one), ("2 ranks x 1 thread (MPI)", two)):
        hook = f"{r['hook'] * 1e3:.0f} ms ({100 * r['hook'] / r['step']:.1f} %)" if r["ranks"] > 1 else "-"
        bare = f"{r['allreduce'] * 1e3:.0f} ms ({100 * r['allreduce'] / r['step']:.1f} %)" if r["ranks"] > 1 else "-"
        print(f"| {name} | {r['step']:.2f} s | {1 / r['step']:.3f} | {GLOBAL_BATCH / r['step']:.1f} | {hook} | {bare} |")
    print(f"\n2 ranks / 1 rank: {one['step'] / two['step']:.2f}x the steps per second")
    # The cost model: a ring all-reduce sends and receives 2 (N-1)/N of the gradient per rank and step.
    assert sit_parameters(12, 384, 2) == one["params"], "the SiT parameter formula disagrees with the library"
    xl = sit_parameters(28, 1152, 2)
    bandwidth = two["params"] * 4 / max(two["allreduce"], 1e-9) / 1e9
    print(f"\nbare all-reduce here: {two['params'] * 4 / 1e6:.0f} MB in {two['allreduce'] * 1e3:.0f} ms "
          f"({bandwidth:.2f} GB/s of gradient, shared memory)")
    print(f"SiT-XL/2 (32x32x4, learn_sigma): {xl:,} parameters, a {xl * 4 / 1e9:.2f} GB float32 gradient per step")
    print("| ranks | sent per rank and step (as much received) | at 10 Gbit/s | at 100 Gbit/s |")
    print("|---|---|---|---|")
    for n in (2, 8, 64):
        volume = 2 * (n - 1) / n * xl * 4
        print(f"| {n} | {volume / 1e9:.2f} GB | {volume * 8 / 10e9:.2f} s | {volume * 8 / 100e9:.3f} s |")


if __name__ == "__main__":
    main()
