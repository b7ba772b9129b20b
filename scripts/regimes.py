"""When does MixFlow help? (results/regimes/README.md.) MixFlow against standard post-training on bases and samplers
chosen for their exposure bias: the shipped base, its own under-trained snapshots, a ~1/10-size SiT, each sampled
with coarse grids, the SDE sampler and classifier-free guidance.

    python3 scripts/regimes.py screen                       # Slow Flow (endpoint, nearest-data) + FD of every base x setting
    python3 scripts/regimes.py posttrain --base shipped --settings "euler5;euler10 cfg3" --seeds 0,1,2
    python3 scripts/regimes.py report                       # tables + gain-vs-lag figure into --out
    python3 scripts/regimes.py grids --bases small-1k,early-4k --gammas 0.8   # samples of base / standard / MixFlow

Bases (--runs holds what scripts/pretrain_base.py wrote; see results/regimes/README.md for the commands):
  shipped    models/fmnist-base/base.onnx (20k steps, converged)
  small      <runs>/small/small.onnx: depth 2, width 64 (184k parameters), its own schedule
  small-2k   <runs>/small/ema-002000.npz: an EMA snapshot of a run (here the small one's, under-trained);
  early-500  <runs>/early/ema-000500.npz (the shipped recipe's own run)

Protocol (the same as scripts/experiments.py, for every arm of a seed): post-training starts from the same base
weights with the same minibatches (drawn from (seed, 777, step)), learning rate, EMA and trainer seed and differs only
in the transport; every model of a seed is evaluated on the same noise and labels (equal counts per class), 1000
samples, FD on the Fashion-MNIST classifier's features against the 10k test set. Every row lands in a CSV as soon
as it is measured; rerunning skips what is there, so an interrupted sweep continues where it stopped.
"""
import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "scripts"))   # regimes_report
import mixflow  # noqa: E402

# name -> Sampler options. SiT convention, grid points counted as SiT counts them.
SETTINGS = {
    "euler5": dict(method="euler", steps=5),
    "euler10": dict(method="euler", steps=10),
    "euler50": dict(method="euler", steps=50),
    "heun10": dict(method="heun", steps=10),
    "sde50": dict(method="sde_euler", steps=50),
    **{f"euler{n} cfg{w}": dict(method="euler", steps=n, guidance="cfg", cfg_scale=w)
       for n in (10, 50) for w in (1.5, 3, 5)},
}
SCREEN_SAMPLES = 256       # Slow Flow: as the CLI's `mixflow slowflow`


def load_base(name, runs):
    """shipped; small (the exported final weights); <run>-<N>k or <run>-<steps>: the EMA snapshot of <runs>/<run>
    at that step, in the architecture of that run's checkpoint."""
    if name == "shipped":
        return mixflow.Model.from_onnx(ROOT / "models" / "fmnist-base" / "base.onnx")
    if name == "small":
        return mixflow.Model.from_onnx(Path(runs) / "small" / "small.onnx")
    run, _, k = name.rpartition("-")
    step = int(k[:-1]) * 1000 if k.endswith("k") and k[:-1].isdigit() else (int(k) if k.isdigit() else None)
    snapshot = Path(runs) / run / f"ema-{step:06d}.npz" if step is not None else None
    if not run or snapshot is None or not snapshot.exists():
        raise SystemExit(f"unknown base {name!r}: shipped, small, or <run>-<N>k for an EMA snapshot in {runs}/<run>")
    model = mixflow.Trainer.resume(Path(runs) / run / "ckpt.mixflow").ema_model()
    model.load_state_dict(dict(np.load(snapshot)))
    return model


def sampler(setting):
    return mixflow.Sampler(null_class=10, **SETTINGS[setting])


class Evaluation:
    """FD and class accuracy of 1000 samples on the noise and labels of a seed (shared by every arm of the seed)."""

    def __init__(self, samples):
        self.net = mixflow.FeatureNet()
        self.reference = mixflow.load_reference_stats()[:2]
        self.samples = samples

    def __call__(self, model, setting, seed):
        n = self.samples
        noise = np.random.default_rng([seed, 12345]).standard_normal((n, 1, 28, 28)).astype(np.float32)
        labels = mixflow.equal_labels(n, 10, seed=seed)
        x = sampler(setting).sample_model(model, noise, y=labels).x
        flat = (mixflow.to_uint8(x).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1).reshape(n, -1)
        return mixflow.frechet_distance(self.net.features(flat), self.reference), self.net.accuracy(flat, labels)


def read_rows(path):
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def append_row(path, row):
    """Appends; a row with columns the file lacks rewrites it once with the wider header (blank old cells)."""
    rows = read_rows(path)
    header = list(rows[0]) if rows else list(row)
    if rows and any(k not in header for k in row):
        header += [k for k in row if k not in header]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header, restval="")
            w.writeheader()
            w.writerows(rows)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, restval="")
        if not rows:
            w.writeheader()
        w.writerow(row)


def screen(args, x):
    """Slow Flow of every base x setting (endpoint and nearest-data, 256 samples) and the base's own FD (1000)."""
    out = Path(args.out) / "screen.csv"
    done = {(r["base"], r["setting"]) for r in read_rows(out)}
    evaluate = Evaluation(args.samples)
    noise = np.random.default_rng(2024).standard_normal((SCREEN_SAMPLES, 1, 28, 28)).astype(np.float32)
    labels = np.arange(SCREEN_SAMPLES) % 10
    for base in args.bases.split(","):
        model = None
        for setting in args.settings.split(";") if args.settings else SETTINGS:
            if (base, setting) in done:
                continue
            model = model or load_base(base, args.runs)
            start = time.time()
            fn = lambda xb, tb, yb: model.forward(xb, tb, yb)  # noqa: E731
            row = dict(base=base, setting=setting)
            for ref, data in (("endpoint", None), ("nearest_data", x[:10000])):
                sf = mixflow.slow_flow(fn, noise, reference=ref, data=data, y=labels, null_class=10, **SETTINGS[setting])
                lag = mixflow.slow_flow_lag(sf)       # the endpoint definition skips its last point (the end itself)
                row.update({f"{ref}_slowed": f"{lag.slowed:.4f}", f"{ref}_median_m_over_t": f"{lag.median_ratio:.4f}",
                            f"{ref}_gamma": f"{mixflow.suggest_gamma(sf, 0.95):.4f}", f"{ref}_lags": str(int(lag.lags))})
            fd, acc = evaluate(model, setting, 0)
            row.update(fd=f"{fd:.4f}", accuracy=f"{acc:.4f}", minutes=f"{(time.time() - start) / 60:.2f}")
            append_row(out, row)
            print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)


def post_train(model, transport, seed, args, x, y):
    trainer = mixflow.Trainer(model, transport, lr=args.lr, ema=args.ema, seed=seed)
    for k in range(args.steps):
        idx = np.random.default_rng([seed, 777, k]).integers(0, len(x), args.batch)
        trainer.step(x[idx], y[idx])
    return trainer.ema_model()


def standard_and_mixflow(gammas):
    """The arms "standard" (the base's own objective: uniform t, no mixture) and "mixflow <gamma>" (t ~ Beta(2,1),
    m ~ U[(1-gamma)t, t]) for each of `gammas`."""
    out = {"standard": mixflow.Transport(time_dist="uniform", gamma=0.0)}
    for g in gammas:
        out[f"mixflow {g:g}"] = mixflow.Transport(time_dist="beta21", gamma=g)
    return out


def arms(args):
    """standard_and_mixflow at each --gammas, and with --ablations the paper's ablations at the largest gamma:
    uniform t, and m ~ U[0,1]."""
    gammas = [float(v) for v in args.gammas.split(",") if v]
    out = standard_and_mixflow(gammas)
    if args.ablations:
        out[f"t~U, gamma {max(gammas):g}"] = mixflow.Transport(time_dist="uniform", gamma=max(gammas))
        out["t~Beta, m~U[0,1]"] = mixflow.Transport(time_dist="beta21", mixture="uniform")
    return out


def posttrain(args, x, y):
    out = Path(args.out) / "posttrain.csv"
    settings = args.settings.split(";")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; known: {list(SETTINGS)}")
    evaluate = Evaluation(args.samples)
    for seed in (int(s) for s in args.seeds.split(",")):
        for arm, transport in arms(args).items():
            key = dict(base=args.base, arm=arm, steps=str(args.steps), lr=f"{args.lr:g}", seed=str(seed))
            done = {r["setting"] for r in read_rows(out) if all(r[k] == v for k, v in key.items())}
            todo = [s for s in settings if s not in done]
            if not todo:
                continue
            start = time.time()
            model = post_train(load_base(args.base, args.runs), transport, seed, args, x, y)
            for setting in todo:
                fd, acc = evaluate(model, setting, seed)
                row = {**key, "setting": setting, "fd": f"{fd:.4f}", "accuracy": f"{acc:.4f}",
                       "minutes": f"{(time.time() - start) / 60:.2f}"}
                append_row(out, row)
                print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)


def grids(args, x, y):
    """One PNG per base, grids-<base>.png: 10 rows (one class each) of 10 samples from the base, 10 after standard
    post-training and 10 after MixFlow at the first of --gammas (seed 0 of the post-training protocol, the first
    of --settings), white columns between the three; the same noise and labels for the three models."""
    setting = (args.settings.split(";") if args.settings else ["euler10"])[0]
    gamma = float(args.gammas.split(",")[0])
    noise = np.random.default_rng([0, 4242]).standard_normal((100, 1, 28, 28)).astype(np.float32)
    labels = np.repeat(np.arange(10, dtype=np.int32), 10)          # row k of the grid: class k
    for base in args.bases.split(","):
        models = {"base": load_base(base, args.runs)}
        for name, transport in standard_and_mixflow([gamma]).items():
            models[name] = post_train(load_base(base, args.runs), transport, 0, args, x, y)
        panels = [mixflow.to_uint8(sampler(setting).sample_model(m, noise, y=labels).x).reshape(10, 10, 28, 28, 1)
                  for m in models.values()]
        gap = np.full((10, 1, 28, 28, 1), 255, np.uint8)
        rows = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)   # [10 classes, 32 columns, ...]
        path = Path(args.out) / f"grids-{base}.png"
        mixflow.save_png(path, rows.reshape(-1, 28, 28, 1), columns=rows.shape[1])
        print(f"wrote {path}: {', '.join(models)} ({setting}, seed 0, {args.steps} steps)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["screen", "posttrain", "report", "grids"])
    ap.add_argument("--out", default=str(ROOT / "results" / "regimes"))
    ap.add_argument("--runs", default="runs", help="where scripts/pretrain_base.py wrote the early and small runs")
    ap.add_argument("--bases", default="shipped", help="screen, grids: bases separated by commas")
    ap.add_argument("--base", default="shipped", help="posttrain: the base")
    ap.add_argument("--settings", default="", help="settings separated by ';' (screen: default all)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--gammas", default="0.4,0.8", help="MixFlow arms' gamma values")
    ap.add_argument("--ablations", action="store_true", help="posttrain: add the paper's ablation arms")
    ap.add_argument("--steps", type=int, default=200, help="post-training steps")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--ema", type=float, default=0.99)
    ap.add_argument("--samples", type=int, default=1000, help="generated samples per FD")
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.stage == "report":
        from regimes_report import report
        report(Path(args.out))
        return
    x, y = mixflow.fashion_mnist("train")
    x = x[:, None]
    if args.stage == "screen":
        screen(args, x)
    elif args.stage == "grids":
        grids(args, x, y)
    else:
        posttrain(args, x, y)


if __name__ == "__main__":
    main()
