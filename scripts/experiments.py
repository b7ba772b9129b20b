"""The results in results/fmnist/README.md: MixFlow against standard post-training of the shipped base model, the paper's
ablations and the inference-side baselines, over several seeds, with the FD (Fashion-MNIST classifier
features) and the classifier's accuracy on the generated samples.

    python3 scripts/experiments.py --suite main --seeds 0,1,2           # base / standard / MixFlow
    python3 scripts/experiments.py --suite ablations --seeds 0,1,2      # m ~ U[0,1], Beta vs uniform t, gamma sweep, IP
    python3 scripts/experiments.py --suite baselines --seeds 0,1,2      # Epsilon Scaling, time-shifted queries
    python3 scripts/experiments.py --suite slowflow                     # Slow Flow of the base, three definitions
    python3 scripts/experiments.py --suite samples --seeds 0            # sample grids + pixel statistics, base / standard / MixFlow

Protocol, identical for every configuration of a seed: post-training starts from the same base weights with
the same minibatches (drawn from (seed, step)), learning rate, EMA and trainer seed, and differs only in the
transport; the EMA weights are evaluated on the same starting noise and labels (equal counts per class) at
every sampler x grid, against the shipped 10k test-set statistics. Results are appended to
<out>/results.csv (rerunning skips the rows already there, so runs resume) and summarised in
<out>/results.md: mean +- standard deviation over seeds, and each configuration's paired difference to
"standard" (mean +- standard error), since seeds share noise and minibatches.
"""
import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import mixflow  # noqa: E402

# name -> transport options. "standard" is the base's own objective (uniform t, no mixture).
MAIN = {
    "standard": dict(time_dist="uniform", gamma=0.0),
    "mixflow": dict(time_dist="beta21", gamma=None),                      # gamma from --gamma
}
ABLATIONS = {
    "t~U, m~U[0,1]": dict(time_dist="uniform", mixture="uniform"),
    "t~Beta, m~U[0,1]": dict(time_dist="beta21", mixture="uniform"),
    "t~U, m~U[0,t]": dict(time_dist="uniform", gamma=1.0),
    "t~Beta, m~U[0,t]": dict(time_dist="beta21", gamma=1.0),
    "t~Beta, m=t": dict(time_dist="beta21", gamma=0.0),
    **{f"gamma={g}": dict(time_dist="beta21", gamma=g) for g in (0.05, 0.1, 0.2, 0.4, 0.8)},
    "input perturbation 0.1": dict(time_dist="uniform", gamma=0.0, input_perturbation=0.1),
}
# name -> sampler options, applied to the standard post-trained model.
BASELINES = {
    "eps-scaling 1+0.01n": dict(eps_scale=(1.0, 0.01)),
    "eps-scaling 1+0.03n": dict(eps_scale=(1.0, 0.03)),
    "time-shift p=0.02": dict(query_shift=(0.0, 0.02)),
    "time-shift p=0.05": dict(query_shift=(0.0, 0.05)),
}


def load_base(path):
    if str(path).endswith(".mixflow"):
        return mixflow.Trainer.resume(path).ema_model()
    return mixflow.Model.from_onnx(path)


class Evaluator:
    """FD and conditional accuracy of a model's samples, on fixed noise and labels per seed."""

    def __init__(self, samples, methods, grids):
        self.net = mixflow.FeatureNet()
        self.reference = mixflow.load_reference_stats()[:2]
        self.samples, self.methods, self.grids = samples, methods, grids

    def __call__(self, model, seed, **sampler_options):
        n = self.samples
        noise = np.random.default_rng([seed, 12345]).standard_normal((n, 1, 28, 28)).astype(np.float32)
        labels = mixflow.equal_labels(n, 10, seed=seed)
        rows = []
        for method in self.methods:
            for steps in self.grids:
                sampler = mixflow.Sampler(method=method, steps=steps, null_class=10, **sampler_options)
                x = sampler.sample_model(model, noise, y=labels).x
                x = mixflow.to_uint8(x).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1
                flat = x.reshape(n, -1)
                fd = mixflow.frechet_distance(self.net.features(flat), self.reference)
                rows.append((method, steps, fd, self.net.accuracy(flat, labels)))
        return rows


def post_train(base_path, transport, seed, args, x, y):
    model = load_base(base_path)
    trainer = mixflow.Trainer(model, transport, lr=args.lr, ema=args.ema, seed=seed)
    for k in range(args.steps):
        idx = np.random.default_rng([seed, 777, k]).integers(0, len(x), args.batch)
        trainer.step(x[idx], y[idx])
    return trainer.ema_model()


def suggest_gamma(model, x, seed):
    """The CLI's rule: nearest-data Slow Flow of the base (256 samples, Euler 50, 5000 training images), 95 % coverage."""
    noise = np.random.default_rng([seed, 999]).standard_normal((256, 1, 28, 28)).astype(np.float32)
    labels = np.arange(256) % 10
    sf = mixflow.slow_flow(lambda xb, tb, yb: model.forward(xb, tb, yb), noise, steps=50, method="euler",
                           reference="nearest_data", data=x[:5000], y=labels, null_class=10)
    return mixflow.suggest_gamma(sf, 0.95)


def read_done(path):
    if not path.exists():
        return set()
    with open(path) as f:
        return {(r["config"], int(r["seed"])) for r in csv.DictReader(f)}


def append(path, rows):
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["config", "seed", "method", "steps", "fd", "accuracy", "gamma", "minutes"])
        w.writerows(rows)


def summarise(csv_path, md_path):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    configs = list(dict.fromkeys(r["config"] for r in rows))
    cols = list(dict.fromkeys((r["method"], int(r["steps"])) for r in rows))
    fd = {(r["config"], int(r["seed"]), r["method"], int(r["steps"])): float(r["fd"]) for r in rows}
    acc = {(r["config"], int(r["seed"]), r["method"], int(r["steps"])): float(r["accuracy"]) for r in rows}
    seeds = sorted({int(r["seed"]) for r in rows})
    out = [f"FD (Fashion-MNIST classifier features), lower is better; mean ± std over seeds {seeds}.", "",
           "| config | " + " | ".join(f"{m} {s}" for m, s in cols) + " | class accuracy (last column) |",
           "|---|" + "---|" * (len(cols) + 1)]
    for c in configs:
        cells = []
        for m, s in cols:
            v = [fd[(c, k, m, s)] for k in seeds if (c, k, m, s) in fd]
            cells.append(f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}" if len(v) > 1 else (f"{v[0]:.2f}" if v else "–"))
        a = [acc[(c, k) + cols[-1]] for k in seeds if (c, k) + cols[-1] in acc]
        out.append(f"| {c} (n={len([k for k in seeds if (c, k) + cols[0] in fd])}) | " + " | ".join(cells)
                   + f" | {np.mean(a):.3f} |" if a else " | – |")
    if "standard" in configs:
        out += ["", "Paired difference to standard post-training (FD, negative = better than standard; mean ± s.e.):", "",
                "| config | " + " | ".join(f"{m} {s}" for m, s in cols) + " |", "|---|" + "---|" * len(cols)]
        for c in configs:
            if c == "standard":
                continue
            cells = []
            for m, s in cols:
                d = [fd[(c, k, m, s)] - fd[("standard", k, m, s)] for k in seeds
                     if (c, k, m, s) in fd and ("standard", k, m, s) in fd]
                cells.append(f"{np.mean(d):+.2f} ± {np.std(d, ddof=1) / np.sqrt(len(d)):.2f}" if len(d) > 1
                             else (f"{d[0]:+.2f}" if d else "–"))
            out.append(f"| {c} | " + " | ".join(cells) + " |")
    md_path.write_text("\n".join(out) + "\n")
    return "\n".join(out)


def slowflow_suite(base_path, x, out, grids):
    """The base's Slow Flow under the three definitions (256 samples, Euler), one CSV and plot per grid size."""
    model = load_base(base_path)
    noise = np.random.default_rng(2024).standard_normal((256, 1, 28, 28)).astype(np.float32)
    labels = np.arange(256) % 10
    fn = lambda xb, tb, yb: model.forward(xb, tb, yb)  # noqa: E731
    curves = {}
    for steps in grids:
        for ref in ("endpoint", "nearest_data", "noise_level"):
            data = None if ref == "endpoint" else x[:10000]
            sf = mixflow.slow_flow(fn, noise, steps=steps, method="euler", reference=ref, data=data, y=labels, null_class=10)
            sf.to_csv(out / f"slowflow-{ref}-euler{steps}.csv")
            try:
                sf.plot(out / f"slowflow-{ref}-euler{steps}.png")
            except ImportError:
                pass
            s = sf.stats
            k = [i for i, t in enumerate(sf.t) if t > 0]
            frac = float(np.mean(s["frac_m_le_t"][k]))
            last = s["q50_m"][-1]
            curves[(steps, ref)] = s
            print(f"euler {steps:3d} {ref:13s} suggest_gamma {mixflow.suggest_gamma(sf, 0.95):.3f}; "
                  f"mean fraction m <= t {frac:.2f}; median m at the last grid time {last:.3f}", flush=True)
    plot_slowflow(curves, grids, out / "slowflow.png")


def pixel_stats(x):
    """Background statistics of images in [-1, 1] (after the uint8 round trip): the fraction of pixels below -0.9
    (Fashion-MNIST backgrounds are black) and the mean distance to -1 of the pixels below -0.5 (grey residue)."""
    dark = x < -0.5
    return float(np.mean(x < -0.9)), float(np.mean(x[dark] + 1)) if dark.any() else float("nan")


def samples_suite(base_path, gamma, seed, args, x, y, out):
    """100 samples (10 per class, one class per row) of base / standard / MixFlow on the same noise, Euler on the
    last --grids size, as PNG grids, and their background statistics against the test set."""
    x_test, _ = mixflow.fashion_mnist("test")
    grid = [int(g) for g in args.grids.split(",")][-1]
    print(f"{'test set':24s} fraction < -0.9: {pixel_stats(x_test)[0]:.3f}, background grey level: {pixel_stats(x_test)[1]:.4f}")
    noise = np.random.default_rng([seed, 4321]).standard_normal((100, 1, 28, 28)).astype(np.float32)
    labels = np.repeat(np.arange(10), 10).astype(np.int32)
    models = {"base": load_base(base_path),
              "standard": post_train(base_path, mixflow.Transport(**MAIN["standard"]), seed, args, x, y),
              f"mixflow gamma={gamma:.3f}": post_train(base_path, mixflow.Transport(time_dist="beta21", gamma=gamma),
                                                       seed, args, x, y)}
    for name, model in models.items():
        s = mixflow.Sampler(method="euler", steps=grid, null_class=10).sample_model(model, noise, y=labels).x
        u8 = mixflow.to_uint8(s)
        mixflow.save_png(out / f"samples-{name.split()[0]}.png", u8, columns=10)
        dark, grey = pixel_stats(u8.astype(np.float32) / 127.5 - 1)
        print(f"{name:24s} fraction < -0.9: {dark:.3f}, background grey level: {grey:.4f}", flush=True)


def plot_slowflow(curves, grids, path):
    """One panel per grid size: median m against t under each definition, 25-75 % band, the diagonal m = t."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids), 3.8), dpi=120, squeeze=False)
    for ax, steps in zip(axes[0], grids):
        for ref, color in (("endpoint", "C0"), ("nearest_data", "C1"), ("noise_level", "C2")):
            s = curves[(steps, ref)]
            ax.fill_between(s["t"], s["q25_m"], s["q75_m"], color=color, alpha=0.25, lw=0)
            ax.plot(s["t"], s["q50_m"], color=color, label=ref.replace("_", " "))
        ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="m = t")
        ax.set_title(f"base model, Euler, {steps} grid points")
        ax.set_xlabel("sampling time t (0 = noise, 1 = data)")
        ax.set_ylabel("matched ground-truth time m (median, 25-75 %)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=str(ROOT / "models" / "fmnist-base" / "base.onnx"))
    ap.add_argument("--out", default="runs/experiments")
    ap.add_argument("--suite", default="main", choices=["main", "ablations", "baselines", "slowflow", "samples", "all"])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=200, help="post-training steps per configuration")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--ema", type=float, default=0.99)
    ap.add_argument("--gamma", default="auto", help="MixFlow's gamma, or auto (suggest_gamma of the base, as the CLI)")
    ap.add_argument("--only", default="", help="configuration names separated by \";\" (names contain commas; default: the whole suite)")
    ap.add_argument("--samples", type=int, default=1000, help="generated samples per evaluation")
    ap.add_argument("--methods", default="euler,heun")
    ap.add_argument("--grids", default="10,20,50", help="grid points (SiT convention)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, y = mixflow.fashion_mnist("train")
    x = x[:, None]
    if args.suite == "slowflow":
        slowflow_suite(args.base, x, out, [int(g) for g in args.grids.split(",")])
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    evaluate = Evaluator(args.samples, args.methods.split(","), [int(g) for g in args.grids.split(",")])
    gamma = suggest_gamma(load_base(args.base), x, 0) if args.gamma == "auto" else float(args.gamma)
    print(f"MixFlow gamma = {gamma:.3f} ({'suggest_gamma of the base' if args.gamma == 'auto' else 'given'})", flush=True)
    if args.suite == "samples":
        samples_suite(args.base, gamma, seeds[0], args, x, y, out)
        return

    trained = {**MAIN, **ABLATIONS} if args.suite == "all" else (ABLATIONS if args.suite == "ablations" else MAIN)
    if args.suite == "baselines":
        trained = {"standard": MAIN["standard"]}
    jobs = ([("base", None)] if args.suite in ("main", "all") else []) + [(n, o) for n, o in trained.items()]
    if args.suite in ("baselines", "all"):
        jobs += [(n, "baseline") for n in BASELINES]
    if args.only:
        wanted = [n.strip() for n in args.only.split(";")]
        unknown = [n for n in wanted if n not in dict(jobs)]
        if unknown:
            sys.exit(f"unknown configuration(s) {unknown} in suite {args.suite}; known: {[n for n, _ in jobs]}")
        jobs = [(n, o) for n, o in jobs if n in wanted]
    results = out / "results.csv"
    cache = {}
    for seed in seeds:
        for name, options in jobs:
            if (name, seed) in read_done(results):
                continue
            start = time.time()
            if name == "base":
                model, g = load_base(args.base), 0.0
                rows = evaluate(model, seed)
            elif options == "baseline":
                if (seed, "standard") not in cache:
                    cache[(seed, "standard")] = post_train(args.base, mixflow.Transport(**MAIN["standard"]), seed, args, x, y)
                g, rows = 0.0, evaluate(cache[(seed, "standard")], seed, **BASELINES[name])
            else:
                opts = dict(options)
                if opts.get("gamma", 0.0) is None:
                    opts["gamma"] = gamma
                g = opts.get("gamma", 0.0)
                model = post_train(args.base, mixflow.Transport(**opts), seed, args, x, y)
                if name == "standard":
                    cache[(seed, "standard")] = model
                rows = evaluate(model, seed)
            minutes = (time.time() - start) / 60
            append(results, [(name, seed, m, s, f"{fd:.4f}", f"{a:.4f}", f"{g:.3f}", f"{minutes:.2f}")
                             for m, s, fd, a in rows])
            print(f"seed {seed} {name:24s} " + "  ".join(f"{m[0]}{s}:{fd:6.2f}" for m, s, fd, _ in rows)
                  + f"  ({minutes:.1f} min)", flush=True)
    print(summarise(results, out / "results.md"))


if __name__ == "__main__":
    main()
