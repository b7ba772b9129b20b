"""MixFlow in a PyTorch DistributedDataParallel loop: the model, the optimiser and the gradient all-reduce stay
in torch (torch.distributed: gloo on CPU, NCCL on GPUs), and libmixflow supplies the MixFlow batch and the
loss gradient. Each rank prepares only its slice of the global batch, passing `first_sample` (the global
index of its first row), so t, m, noise and class dropout of every sample are what one process would draw:

    rows = slice(first, first + n)                                     # this rank's rows of the global batch
    b = transport.prepare(x1[rows], seed=seed, step=step, first_sample=first)
    pred = ddp_model(torch.from_numpy(b.x_in), torch.from_numpy(b.t))
    loss, _, grad = transport.loss(pred.detach().numpy(), b)         # d(mean loss over the slice)/d(pred)
    pred.backward(torch.from_numpy(grad) * (n / global_batch * world_size))   # DDP averages: the global mean

Run it with any launcher that sets RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, or alone (it then starts
two local ranks itself on gloo over loopback):

    torchrun --nproc_per_node 2 examples/python/torch_ddp_mixflow.py
    python3 examples/python/torch_ddp_mixflow.py

At the end it checks that the replicas are bit-identical and that rank 0, training alone on the whole batch,
gets the same weights up to float summation order (the difference's norm within 1e-5 of the weights' norm).
Exit status: 0 checks hold, 1 they do not, 77 skipped because torch is not installed.
"""
import os
import socket
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import mixflow  # noqa: E402

SKIPPED = 77   # the automake / CTest convention for "skipped"
try:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
except ImportError:
    print("torch is not installed; skipping (pip install 'torch<2.14' for the CPU wheel)")
    sys.exit(SKIPPED)
from torch_sit_mixflow import TinyVelocityNet  # noqa: E402
from transport_demo import load_images  # noqa: E402

GLOBAL_BATCH, STEPS = 32, 20


def rank_slice(rank, size):
    """This rank's rows of the global batch: the first GLOBAL_BATCH % size ranks take one row more."""
    base, extra = divmod(GLOBAL_BATCH, size)
    first = rank * base + min(rank, extra)
    return slice(first, first + base + (rank < extra))


def train(data, rank=0, size=1, distributed=False):
    """STEPS MixFlow steps on this rank's slice of every global minibatch; returns the flat weights."""
    torch.manual_seed(0)                     # the same initial weights everywhere (DDP also broadcasts rank 0's)
    model = TinyVelocityNet()
    net = DistributedDataParallel(model) if distributed else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0)
    transport = mixflow.Transport.preset("sit", gamma=0.8)
    rows = rank_slice(rank, size)
    scale = (rows.stop - rows.start) / GLOBAL_BATCH * size
    for step in range(STEPS):
        x1 = data[np.random.default_rng([0, step]).integers(0, len(data), GLOBAL_BATCH)][rows]
        b = transport.prepare(x1, seed=0, step=step, first_sample=rows.start)
        pred = net(torch.from_numpy(b.x_in), torch.from_numpy(b.t))
        loss, _, grad = transport.loss(pred.detach().numpy(), b)
        opt.zero_grad()
        pred.backward(torch.from_numpy(grad) * scale)
        opt.step()
        if rank == 0 and distributed and step % 5 == 0:
            print(f"step {step:3d}  MixFlow loss of rank 0's slice {loss:.4f}")
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def worker(rank, size):
    """One rank: train data-parallel, compare the replicas, and (rank 0) compare with one process."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=size)
    data = load_images(4096)
    weights = train(data, rank, size, distributed=True)
    reference = weights.clone()
    dist.broadcast(reference, src=0)
    identical = torch.tensor([int(torch.equal(weights, reference))])
    dist.all_reduce(identical, op=dist.ReduceOp.MIN)
    dist.destroy_process_group()
    if rank != 0:
        return bool(identical.item())
    single = train(data)
    # torch's conv kernels round a half batch's weight gradient differently, and AdamW divides every entry by its
    # own running magnitude, which magnifies that rounding where a gradient is near zero (up to ~2e-5 of the
    # largest weight here): the check is on the norm of the difference, which summation order keeps ~1e-7.
    largest = float((weights - single).abs().max() / single.abs().max())
    norm = float((weights - single).norm() / single.norm())
    print(f"{size} ranks of a {GLOBAL_BATCH}-sample batch, {STEPS} steps, {weights.numel():,} parameters (gloo)")
    print(f"replicas bit-identical: {bool(identical.item())}")
    print(f"difference to one process on the whole batch: {norm:.1e} of the weights' norm, largest entry {largest:.1e} of the largest weight")
    return bool(identical.item()) and norm <= 1e-5


def spawned(rank, size):
    sys.exit(0 if worker(rank, size) else 1)


def main():
    if "RANK" in os.environ:                                     # started by torchrun or another launcher
        sys.exit(0 if worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) else 1)
    with socket.socket() as s:                                   # alone: two local ranks over loopback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    try:
        torch.multiprocessing.spawn(spawned, args=(2,), nprocs=2)
    except torch.multiprocessing.ProcessExitedException as e:
        sys.exit(f"a rank failed: {e}")


if __name__ == "__main__":
    main()
