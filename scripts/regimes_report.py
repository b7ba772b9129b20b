"""Tables and the gain-vs-lag figure of scripts/regimes.py, from its CSVs (screen.csv, posttrain.csv) into
<out>/tables.md and <out>/gain-vs-lag.png. Imported by `python3 scripts/regimes.py report`."""
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np


def _rows(path):
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def lags(screen):
    """(base, setting) -> the endpoint lag: fraction of (sample, t) pairs slowed and the median m/t."""
    return {(r["base"], r["setting"]): (float(r["endpoint_slowed"]), float(r["endpoint_median_m_over_t"])) for r in screen}


def paired_gains(post):
    """(base, steps, lr, setting, arm) -> [FD(arm) - FD(standard)] over the seeds both have (negative = MixFlow helps)."""
    fd = {(r["base"], r["steps"], r["lr"], r["setting"], r["arm"], r["seed"]): float(r["fd"]) for r in post}
    out = defaultdict(list)
    for (base, steps, lr, setting, arm, seed), v in sorted(fd.items()):
        ref = fd.get((base, steps, lr, setting, "standard", seed))
        if arm != "standard" and ref is not None:
            out[(base, steps, lr, setting, arm)].append(v - ref)
    return out


def _arm_order(arm):
    """MixFlow arms by gamma, then the ablations."""
    return (0, float(arm.split()[1]), arm) if arm.startswith("mixflow ") else (1, 0.0, arm)


def _mean_se(v):
    if len(v) < 2:
        return f"{v[0]:+.2f} (n=1)"
    return f"{np.mean(v):+.2f} ± {np.std(v, ddof=1) / np.sqrt(len(v)):.2f}"


def screen_table(screen):
    out = ["| base | setting | FD of the base | endpoint: slowed pairs | endpoint: median m/t | endpoint suggest_gamma "
           "| nearest-data: slowed | nearest-data: median m/t | nearest-data suggest_gamma | lags (endpoint) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in screen:
        lag = r["endpoint_lags"] == "1"           # the library's verdict (mixflow.slow_flow_lag)
        out.append(f"| {r['base']} | {r['setting']} | {float(r['fd']):.1f} | {float(r['endpoint_slowed']):.2f} | "
                   f"{float(r['endpoint_median_m_over_t']):.3f} | {float(r['endpoint_gamma']):.3f} | "
                   f"{float(r['nearest_data_slowed']):.2f} | {float(r['nearest_data_median_m_over_t']):.3f} | "
                   f"{float(r['nearest_data_gamma']):.3f} | {'yes' if lag else 'no'} |")
    return out


def posttrain_table(post):
    fd = defaultdict(list)
    for r in post:
        fd[(r["base"], r["steps"], r["lr"], r["setting"], r["arm"])].append(float(r["fd"]))
    gains = paired_gains(post)
    arms = sorted({k[4] for k in fd if k[4] != "standard"}, key=_arm_order)
    out = ["| base | steps | lr | setting | standard FD (mean ± sd) | " + " | ".join(f"{a} − standard" for a in arms) + " |",
           "|---|---|---|---|---|" + "---|" * len(arms)]
    for key in sorted({k[:4] for k in fd}):
        std = fd.get(key + ("standard",), [])
        cell = f"{np.mean(std):.1f} ± {np.std(std, ddof=1):.1f} (n={len(std)})" if len(std) > 1 else (
            f"{std[0]:.1f} (n=1)" if std else "–")
        cells = [_mean_se(gains[key + (a,)]) if gains.get(key + (a,)) else "–" for a in arms]
        out.append(f"| {' | '.join(key)} | {cell} | " + " | ".join(cells) + " |")
    return out


def advice_check(screen, post):
    """The advice `mixflow slowflow` prints (mixflow.slow_flow_outlook of the endpoint verdict and the nearest-data
    suggest_gamma), checked on every post-trained (base, setting, steps, lr, MixFlow arm): "expected to help" is
    right when the arms in the gamma range the advice names (mixflow.slow_flow_outlook_rule: 0.4-0.8) beat standard,
    "expected to hurt" when every MixFlow arm loses; "undecided" rows are listed with their outcome and not counted."""
    import mixflow
    from mixflow.slowflow import Lag
    lo, hi = mixflow.slow_flow_outlook_rule().helpful_gamma
    outlook = {(r["base"], r["setting"]): mixflow.slow_flow_outlook(
        Lag(float(r["endpoint_slowed"]), float(r["endpoint_median_m_over_t"]), r["endpoint_lags"] == "1"),
        float(r["nearest_data_gamma"])) for r in screen}
    out = ["| base | steps | lr | setting | advice | arm | FD gain (mean ± s.e.) | advice right? |",
           "|---|---|---|---|---|---|---|---|"]
    right = total = 0
    for key, g in sorted(paired_gains(post).items()):
        if (key[0], key[3]) not in outlook or not key[4].startswith("mixflow "):
            continue
        helps = outlook[(key[0], key[3])]
        if helps is not False and not lo <= float(key[4].split()[1]) <= hi:
            continue
        if helps is None:
            out.append(f"| {' | '.join(key[:4])} | undecided | {key[4]} | {_mean_se(g)} | – |")
            continue
        ok = (np.mean(g) < 0) == helps
        right, total = right + ok, total + 1
        out.append(f"| {' | '.join(key[:4])} | {'helps' if helps else 'hurts'} | {key[4]} | {_mean_se(g)} | "
                   f"{'yes' if ok else 'NO'} |")
    return out + ["", f"The advice was right on {right} of {total} (setting, arm) pairs."]


# The three-band rule under test (results/regimes/predictions-deep.md), not the library's: fixed before the deep
# run was trained, from the fifteen bases post-trained until then.
BAND = (0.72, 0.85)


def band_check(screen, post):
    """Every base post-trained at Euler 10 (200 steps, lr 1e-4): its nearest-data median m/t, what the three-band
    rule says, and the paired gains at gamma 0.4 and 0.8."""
    row = {r["base"]: r for r in screen if r["setting"] == "euler10"}
    gains = paired_gains(post)
    out = ["| base | endpoint lags? | nearest-data median m/t | three-band rule | γ 0.4 | γ 0.8 | rule right? |",
           "|---|---|---|---|---|---|---|"]
    right = total = 0
    bases = sorted({k[0] for k in gains if k[0] in row}, key=lambda b: float(row[b]["nearest_data_median_m_over_t"]))
    for base in bases:
        r = row[base]
        lags, med = r["endpoint_lags"] == "1", float(r["nearest_data_median_m_over_t"])
        says = "helps" if lags or med <= BAND[0] else "hurts" if med >= BAND[1] else "undecided"
        g = [gains.get((base, "200", "0.0001", "euler10", f"mixflow {x}")) for x in ("0.4", "0.8")]
        measured = [np.mean(v) for v in g if v]
        verdict = "–"
        if says != "undecided" and measured:
            ok = all((m < 0) == (says == "helps") for m in measured)
            right, total, verdict = right + ok, total + 1, "yes" if ok else "**no**"
        out.append(f"| {base} | {'yes' if lags else 'no'} | {med:.3f} | {says} | "
                   + " | ".join(_mean_se(v) if v else "–" for v in g) + f" | {verdict} |")
    out += ["", f"Decided bases where the rule was right at every γ measured: {right} of {total}."]
    return out


def gain_vs_lag(screen, post, path):
    """One point per (base, steps, lr, setting, arm): mean paired gain against the setting's endpoint median m/t.
    Returns the points and Spearman's rank correlation per arm."""
    lag = lags(screen)
    points = [(lag[(k[0], k[3])][1], float(np.mean(v)), k) for k, v in paired_gains(post).items() if (k[0], k[3]) in lag]
    rho = {}
    for arm in sorted({p[2][4] for p in points}):
        xs = np.array([p[0] for p in points if p[2][4] == arm])
        ys = np.array([p[1] for p in points if p[2][4] == arm])
        if len(xs) > 2:
            rx, ry = np.argsort(np.argsort(xs)), np.argsort(np.argsort(ys))
            rho[arm] = (float(np.corrcoef(rx, ry)[0, 1]), len(xs))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return points, rho
    nd_median = {(r["base"], r["setting"]): float(r["nearest_data_median_m_over_t"]) for r in screen}
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4), dpi=120, sharey=True, layout="constrained")
    arms = sorted({p[2][4] for p in points}, key=_arm_order)
    # Colour = the MixFlow arm's γ on one colour scale (15 arms would repeat a cycle of 10 colours), the ablation
    # arms in colours of their own; marker = the run a base comes from (its name before the step count): 40 bases
    # would not fit one marker each.
    gamma_scale = matplotlib.colors.Normalize(0.0, 0.8)
    ablation_colours = iter(["tab:red", "tab:pink", "tab:brown", "tab:gray"])
    colour = {arm: plt.get_cmap("viridis")(gamma_scale(float(arm.split()[1]))) if arm.startswith("mixflow ")
              else next(ablation_colours) for arm in arms}
    family = lambda base: base.rsplit("-", 1)[0] if base[-1].isdigit() or base.endswith("k") else base  # noqa: E731
    markers = {f: m for f, m in zip(sorted({family(p[2][0]) for p in points}), "osD^vP*Xh<>dp8H")}
    for ax, xof, xlabel, band in (
            (axes[0], lambda p: p[0], "endpoint Slow Flow: median m/t (< 1: the path lags)", (1.0, 1.0)),
            (axes[1], lambda p: nd_median[(p[2][0], p[2][3])], "nearest-data Slow Flow: median m/t (far from the data ←)",
             (0.72, 0.85))):
        for arm in arms:
            for fam, m in markers.items():
                sel = [p for p in points if p[2][4] == arm and family(p[2][0]) == fam]
                if sel:
                    ax.scatter([xof(p) for p in sel], [p[1] for p in sel], color=colour[arm], marker=m, s=26, alpha=0.8)
        ax.axhline(0, color="k", lw=0.8)
        if band[0] == band[1]:
            ax.axvline(band[0], color="k", lw=0.5, ls="--")
        else:
            ax.axvspan(*band, color="0.85", zorder=0)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=colour[arm], marker="o", ls="", label=arm) for arm in arms
               if not arm.startswith("mixflow ")]
    handles += [Line2D([], [], color="0.3", marker=m, ls="", label=f"{fam} run") for fam, m in markers.items()]
    axes[1].legend(handles=handles, fontsize=6, ncol=2)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=gamma_scale, cmap="viridis"), ax=axes, label="MixFlow γ",
                 fraction=0.03, pad=0.01, aspect=30)
    axes[0].set_ylabel("FD(MixFlow) − FD(standard), paired\n(< 0: MixFlow helps)")
    fig.savefig(path)
    plt.close(fig)
    return points, rho


def report(out: Path):
    screen, post = _rows(out / "screen.csv"), _rows(out / "posttrain.csv")
    lines = ["# Tables generated by `python3 scripts/regimes.py report` (do not edit by hand)", "",
             "## Slow Flow and FD of every base under every sampler setting", ""] + screen_table(screen)
    lines += ["", "## Post-training: paired FD differences to standard post-training (mean ± s.e. over seeds)", ""]
    lines += posttrain_table(post)
    lines += ["", "## The advice checked against every post-trained setting", ""]
    lines += advice_check(screen, post)
    lines += ["", "## The three-band rule (nearest-data median m/t; under test, not shipped)", ""]
    lines += band_check(screen, post)
    _, rho = gain_vs_lag(screen, post, out / "gain-vs-lag.png")
    lines += ["", "## Rank correlation of the gain with the lag (Spearman, over base x setting x steps x lr)", "",
              "| arm | rho(median m/t, FD gain) | points |", "|---|---|---|"]
    lines += [f"| {a} | {r:+.2f} | {n} |" for a, (r, n) in rho.items()]
    (out / "tables.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
