"""Data-parallel MixFlow post-training on MPI (mpi4py) with the trainer's gradient hook: every rank trains on
its slice of the global batch, and the hook averages the gradients across ranks with one MPI Allreduce
before the update, so every replica applies the same step and the replicas stay bit-identical.

    mpirun -n 2 python3 examples/python/data_parallel.py [STEPS [CHECKPOINT]]
    (as root add --allow-run-as-root; on one machine with fewer cores than ranks add --oversubscribe)

Two things make the split exact: `first_sample` (each rank passes the global index of its first row, so t, m,
noise and class dropout of every sample are the ones a single process would draw) and weighting each rank's
mean-loss gradient by its share of the rows before the sum (slices may differ by one row; the weighted sum
is the gradient of the global mean loss). At the end the example checks both claims: the replicas are
bit-identical, and rank 0, training alone on the whole batch, gets the same weights up to float summation
order (1e-5 relative to the largest weight). With CHECKPOINT it resumes from that file when it exists and
saves there at the end, so a run can continue with another number of ranks (the check still compares with one
process training from step 0). Exit status 0 when both hold, 1 otherwise, 77 skipped
(Fashion-MNIST missing).
"""
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

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
    """Global minibatch `step`: the same on every rank (it depends only on the step)."""
    idx = np.random.default_rng([0, step]).integers(0, len(x), GLOBAL_BATCH)
    return x[idx], y[idx]


def rank_slice(rank, size):
    """This rank's rows of the global batch: the first GLOBAL_BATCH % size ranks take one row more."""
    base, extra = divmod(GLOBAL_BATCH, size)
    first = rank * base + min(rank, extra)
    return slice(first, first + base + (rank < extra))


def allreduce_hook(comm, rows):
    """The gradient hook: this rank's gradient (of the mean loss over its `rows` rows), weighted by
    rows / GLOBAL_BATCH and summed over all ranks in place; `grads` is a float32 view of the trainer's buffer."""
    weight = np.float32(rows / GLOBAL_BATCH)

    def hook(grads, step):
        grads *= weight
        comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
    return hook


def train(x, y, steps, comm=None, checkpoint=None):
    """Trains up to step `steps` on this rank's slices (the whole batch without `comm`), starting from
    `checkpoint` when it exists (written by a run with any number of ranks); returns the trainer."""
    resume = checkpoint is not None and Path(checkpoint).exists()
    trainer = mixflow.Trainer.resume(checkpoint, num_threads=1) if resume else make_trainer()
    rows = rank_slice(comm.rank, comm.size) if comm else slice(0, GLOBAL_BATCH)
    if comm:
        trainer.set_gradient_hook(allreduce_hook(comm, rows.stop - rows.start))
    for step in range(trainer.step_count, steps):
        xb, yb = minibatch(x, y, step)
        trainer.step(xb[rows], yb[rows], first_sample=rows.start)
    return trainer


def abort_on_error(kind, error, trace):
    """An exception on one rank would leave the others waiting in a collective forever: print it and end
    the whole job (what `python3 -m mpi4py script.py` does)."""
    sys.__excepthook__(kind, error, trace)
    MPI.COMM_WORLD.Abort(1)


def main():
    sys.excepthook = abort_on_error
    comm = MPI.COMM_WORLD
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    checkpoint = sys.argv[2] if len(sys.argv) > 2 else None
    if comm.size > GLOBAL_BATCH:
        sys.exit(f"at most {GLOBAL_BATCH} ranks (one row each), got {comm.size}")
    try:
        x, y = mixflow.fashion_mnist("train")
    except FileNotFoundError as e:                  # every rank: the data are missing on all of them or none
        print(f"skipped: {e}")
        sys.exit(77)
    x = x[:, None]
    trainer = train(x, y, steps, comm, checkpoint)
    flat = np.concatenate([v.ravel() for v in trainer.model.state_dict().values()])
    # Replicas: every rank compares its weights with rank 0's.
    identical = comm.allreduce(bool(np.array_equal(flat, comm.bcast(flat, root=0))), op=MPI.LAND)
    if comm.rank != 0:
        sys.exit(0 if identical else 1)
    if checkpoint:
        trainer.save(checkpoint)                    # rank 0 writes (atomically); any number of ranks resumes
    reference = train(x, y, steps).model.state_dict()
    ref = np.concatenate([v.ravel() for v in reference.values()])
    worst = float(np.abs(flat - ref).max() / np.abs(ref).max())
    rows = rank_slice(comm.size - 1, comm.size)
    print(f"{comm.size} ranks x {rows.stop - rows.start}-{GLOBAL_BATCH // comm.size + (GLOBAL_BATCH % comm.size > 0)} samples "
          f"of a {GLOBAL_BATCH}-sample batch, {steps} steps, {len(flat):,} parameters")
    print(f"replicas bit-identical: {identical}")
    print(f"largest difference to one process on the whole batch, relative to the largest weight: {worst:.2e}")
    if not identical or worst > 1e-5:
        sys.exit("data-parallel training diverged from single-process training")


if __name__ == "__main__":
    main()
