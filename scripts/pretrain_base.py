"""Pre-trains the base model of the main job: a small class-conditional SiT on Fashion-MNIST, with
standard flow matching (gamma = 0, uniform t), by libmixflow itself. Resumable and deterministic:
minibatch k is drawn from a generator seeded by (seed, k), and the trainer checkpoint restores the
optimiser and EMA exactly, so a run split across sessions gives the same weights as one long run.

    python3 scripts/pretrain_base.py --run runs/base --steps 40000 [--minutes 60]
    python3 scripts/pretrain_base.py --run runs/base --steps 30000 --decay-start 24000   # cool-down at the end
    python3 scripts/pretrain_base.py --run runs/small --depth 2 --hidden 64              # another size (new runs)

The learning rate is constant, or, with --decay-start S, constant until step S and then linear to 0 at
--steps. The schedule is a function of the step, so setting it on a resume before step S gives exactly the
run that had it from step 0 (Trainer.set_params); the script refuses to change it once the decay began.

Writes <run>/ckpt.mixflow (every --save-every steps, atomically; Ctrl-C saves too), EMA snapshots
<run>/ema-<step>.npz every --snapshot-every steps (for the FD-vs-steps curve), and <run>/log.csv.
"""
import argparse
import csv
import gzip
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings" / "python"))
import mixflow  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist")
# The base architecture (docs/architecture.md §3.4: 49 tokens and width 128 fit this 2-core CPU).
ARCH = dict(arch=None, depth=4, hidden=128, heads=4, patch=4, input_size=28, in_channels=1, num_classes=10,
            learn_sigma=False, class_dropout=0.1)


def load_fmnist(split: str, root: Path = FMNIST):
    prefix = "train" if split == "train" else "t10k"
    raw = gzip.open(root / f"{prefix}-images-idx3-ubyte.gz", "rb").read()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)
    labels = np.frombuffer(gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "rb").read(), np.uint8, offset=8)
    return (images.astype(np.float32) / 127.5 - 1.0), labels.astype(np.int32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/base")
    ap.add_argument("--steps", type=int, default=40000, help="total optimiser steps")
    ap.add_argument("--minutes", type=float, default=0, help="stop (and save) after this long; 0 = no limit")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--snapshot-every", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--export", help="when training is complete, write the EMA weights here as ONNX (checkpoint + "
                    "runnable graph, one file): the shipped base is models/fmnist-base/base.onnx")
    ap.add_argument("--depth", type=int, default=ARCH["depth"], help="blocks (new runs only; a resume keeps the checkpoint's)")
    ap.add_argument("--hidden", type=int, default=ARCH["hidden"], help="width (new runs only)")
    ap.add_argument("--heads", type=int, default=ARCH["heads"], help="attention heads (new runs only)")
    ap.add_argument("--decay-start", type=int, default=0, help="step where the linear decay of the lr to 0 starts "
                    "(it ends at --steps); 0 = constant lr")
    args = ap.parse_args()

    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    ckpt = run / "ckpt.mixflow"
    x_train, y_train = load_fmnist("train")
    if ckpt.exists():
        trainer = mixflow.Trainer.resume(ckpt, num_threads=args.threads)
        print(f"resumed {ckpt} at step {trainer.step_count}", flush=True)
    else:
        arch = {**ARCH, "depth": args.depth, "hidden": args.hidden, "heads": args.heads}
        model = mixflow.Model.create(**arch, seed=args.seed, num_threads=args.threads)
        transport = mixflow.Transport(time_dist="uniform", gamma=0.0)        # standard flow matching
        trainer = mixflow.Trainer(model, transport, lr=args.lr, ema=args.ema, seed=args.seed,
                                  num_threads=args.threads)
        print(f"new run in {run}: {model.num_params:,} parameters", flush=True)

    if args.decay_start:
        want = dict(lr=args.lr, final_lr=0.0, decay_start=args.decay_start, decay_end=args.steps)
        have = {k: trainer.params[k] for k in want}
        if any(abs(have[k] - v) > 1e-6 * max(1.0, abs(v)) for k, v in want.items()):   # float32 fields
            if trainer.step_count > min(args.decay_start, have["decay_start"] if have["decay_end"] else args.decay_start):
                sys.exit(f"the learning-rate decay already began (step {trainer.step_count}); its schedule is {have}")
            trainer.set_params(**want)
            print(f"schedule: lr {args.lr} until step {args.decay_start}, then linear to 0 at step {args.steps}", flush=True)

    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    log = open(run / "log.csv", "a", newline="")
    writer = csv.writer(log)
    start, window = time.time(), []
    while trainer.step_count < args.steps and not stop["now"]:
        k = trainer.step_count
        rng = np.random.default_rng([args.seed, k])         # minibatch k depends only on (seed, k)
        idx = rng.integers(0, len(x_train), args.batch)
        loss = trainer.step(x_train[idx], y_train[idx])
        window.append(loss)
        k += 1
        if k % 50 == 0:
            elapsed = time.time() - start
            writer.writerow([k, f"{np.mean(window):.5f}", f"{elapsed:.1f}"])
            log.flush()
            print(f"step {k:6d}  loss {np.mean(window):.4f}  {elapsed / 60:6.1f} min", flush=True)
            window = []
        if k % args.save_every == 0 or k == args.decay_start:
            trainer.save(ckpt)
        if k == args.decay_start:      # a branch point: a longer constant phase can resume from here
            shutil.copyfile(ckpt, run / f"ckpt-{k:06d}.mixflow")
        if k % args.snapshot_every == 0:
            ema = trainer.ema_model().state_dict()
            np.savez(run / f"ema-{k:06d}.npz", **ema)
        if args.minutes and time.time() - start > 60 * args.minutes:
            break
    trainer.save(ckpt)
    print(f"saved {ckpt} at step {trainer.step_count}", flush=True)
    if args.export and trainer.step_count >= args.steps:
        Path(args.export).parent.mkdir(parents=True, exist_ok=True)
        trainer.save_onnx(args.export, graph=True, external_threshold=-1,
                          transport=mixflow.Transport(time_dist="uniform", gamma=0.0),
                          metadata={"mixflow.recipe": f"scripts/pretrain_base.py --steps {args.steps} --batch {args.batch} "
                                    f"--lr {args.lr} --ema {args.ema} --seed {args.seed}"
                                    + "".join(f" --{k} {getattr(args, k)}" for k in ("depth", "hidden", "heads")
                                              if getattr(args, k) != ARCH[k])
                                    + (f" --decay-start {args.decay_start}" if args.decay_start else "")})
        print(f"exported the EMA weights to {args.export}", flush=True)


if __name__ == "__main__":
    main()
