"""Data-parallel MixFlow post-training with the gradient hook: N worker processes each train on their slice
of the global batch, and the hook averages the gradients across workers (an all-reduce) before the update,
so every replica applies the same step and the replicas stay bit-identical.

    python3 examples/python/data_parallel.py [WORKERS] [STEPS]

The all-reduce here is a few lines of multiprocessing shared memory so the example runs anywhere; under MPI
or torch.distributed the hook body is one call (docs/scaling-out.md). Two things make the split exact:
`first_sample` (each worker passes the global index of its first row, so t, m, noise and class dropout of
every sample are the ones a single process would draw) and averaging equal-size slices (the mean of the
slice means is the global mean). At the end the example checks both claims against one process training
on the whole batch: the replicas are identical, and they match the single process up to float rounding.
"""
import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402

GLOBAL_BATCH = 32
ARCH = dict(arch=None, depth=2, hidden=64, heads=4, patch=4, input_size=28, in_channels=1, num_classes=10,
            learn_sigma=False)


def make_trainer():
    model = mixflow.Model.create(**ARCH, seed=0, num_threads=1)
    return mixflow.Trainer(model, mixflow.Transport.preset("sit", gamma=0.8), lr=1e-3, ema=0.99, seed=0,
                           num_threads=1)


def minibatch(x, y, step):
    """Global minibatch `step`: the same on every worker (it depends only on the step)."""
    idx = np.random.default_rng([0, step]).integers(0, len(x), GLOBAL_BATCH)
    return x[idx], y[idx]


class SharedMemoryAllReduce:
    """Averages one float32 vector per worker; every worker sums the slots in the same order, so all get the
    same bits. Two barriers per call: all slots written before anyone reads, all read before anyone writes."""

    def __init__(self, slots, barrier, rank, workers, count):
        self.slots = np.frombuffer(slots.get_obj(), np.float32).reshape(workers, count)
        self.barrier, self.rank, self.workers = barrier, rank, workers

    def __call__(self, grads, step):
        self.slots[self.rank] = grads
        self.barrier.wait()
        total = self.slots[0].copy()
        for r in range(1, self.workers):
            total += self.slots[r]
        grads[:] = total / np.float32(self.workers)
        self.barrier.wait()


def worker(rank, workers, steps, slots, barrier, results):
    x, y = mixflow.fashion_mnist("train")
    x = x[:, None]
    trainer = make_trainer()
    trainer.set_gradient_hook(SharedMemoryAllReduce(slots, barrier, rank, workers, trainer.model.num_params))
    local = GLOBAL_BATCH // workers
    for step in range(steps):
        xb, yb = minibatch(x, y, step)
        rows = slice(rank * local, (rank + 1) * local)
        trainer.step(xb[rows], yb[rows], first_sample=rank * local)
    results.put((rank, trainer.model.state_dict()))


def single_process(steps):
    x, y = mixflow.fashion_mnist("train")
    x = x[:, None]
    trainer = make_trainer()
    for step in range(steps):
        trainer.step(*minibatch(x, y, step))
    return trainer.model.state_dict()


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    if workers < 1 or GLOBAL_BATCH % workers:
        sys.exit(f"WORKERS must divide the global batch {GLOBAL_BATCH}, got {workers}")
    try:
        mixflow.fashion_mnist("test")
    except FileNotFoundError as e:
        print(f"skipped: {e}")
        sys.exit(77)
    count = make_trainer().model.num_params
    ctx = mp.get_context("spawn")                  # a fresh interpreter per worker, as mpirun would start
    slots, barrier, results = ctx.Array("f", workers * count), ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, workers, steps, slots, barrier, results)) for r in range(workers)]
    for p in procs:
        p.start()
    states = dict(results.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
        if p.exitcode:
            sys.exit(f"worker exited with {p.exitcode}")

    replicas_identical = all(np.array_equal(states[0][k], states[r][k]) for r in states for k in states[0])
    reference = single_process(steps)
    worst = max(float(np.abs(states[0][k] - reference[k]).max() / (np.abs(reference[k]).max() + 1e-12))
                for k in reference)
    print(f"{workers} workers x {GLOBAL_BATCH // workers} samples, {steps} steps, {count:,} parameters")
    print(f"replicas bit-identical: {replicas_identical}")
    print(f"largest relative difference to one process on the whole batch: {worst:.2e}")
    if not replicas_identical or worst > 1e-4:
        sys.exit("data-parallel training diverged from single-process training")


if __name__ == "__main__":
    main()
