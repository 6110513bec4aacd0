"""Report figures as PNG bytes (matplotlib, Agg): sensitivity curves of sweeps, forest plot of the
pooled differences, win-rate bars of judged benches. Each returns None when there is nothing to draw."""

from __future__ import annotations

import io
from typing import Dict, Optional


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def forest(report: dict) -> Optional[bytes]:
    """Pooled differences B - A of the headline, one row per comparison (and metric)."""
    head = report["headline"]
    rows = [r for r in head["comparisons"] if r["diff"] is not None]
    if not rows:
        return None
    many = len(head["metrics"]) > 1
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 0.25 * len(rows) + 1.0))
    for y, r in enumerate(reversed(rows)):
        color = "tab:red" if r["significant"] else "tab:gray"
        if r["ci_low"] is not None:
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=color, lw=2)
        ax.plot([r["diff"]], [y], "o", color=color, ms=4)
    ax.axvline(0.0, color="black", lw=0.8, ls="--")
    ax.set_yticks(range(len(rows)), [r["comparison"] + (f" ({r['metric']})" if many else "")
                                     for r in reversed(rows)], fontsize=10)
    ax.set_xlabel("B - A pooled over tasks (family-wise cluster bootstrap CI); red: significant (Holm)", fontsize=9)
    ax.tick_params(axis="x", labelsize=9)
    ax.set_title("Pooled differences", fontsize=10)
    return _png(fig)


def _curve(sw: dict, m: str):
    """[(fraction, {mean, ci_low, ci_high})] of one sweep for metric m, levels with a mean only."""
    return [(lv["fraction"], lv["metrics"][m]) for lv in sw["levels"]
            if m in lv["metrics"] and lv["metrics"][m]["mean"] is not None]


def sensitivity(report: dict) -> Optional[bytes]:
    """The drop under shift, one panel per model (sweep) and one row per metric: score against the
    displaced share, both in percent where the metric is a rate; the band is the bootstrap CI, the other
    models are drawn in grey behind, and each shifted level is labelled with its drop from 0%."""
    sweeps = report["sweeps"]
    metrics = sorted({m for sw in sweeps for lv in sw["levels"] for m in lv["metrics"]})
    if not metrics:
        return None
    plt = _plt()
    n = len(sweeps)
    fig, axes = plt.subplots(len(metrics), n, figsize=(min(12.0, 4.0 * n), 2.9 * len(metrics)), squeeze=False,
                             sharey="row")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, m in zip(axes, metrics):
        values = [v for sw in sweeps for _, p in _curve(sw, m) for v in (p["mean"], p["ci_low"], p["ci_high"])
                  if v is not None]
        rate = bool(values) and all(0.0 <= v <= 1.0 for v in values)
        k = 100.0 if rate else 1.0
        for j, (ax, sw) in enumerate(zip(row, sweeps)):
            for other in sweeps:
                if other is not sw and _curve(other, m):
                    pts = _curve(other, m)
                    ax.plot([f * 100 for f, _ in pts], [p["mean"] * k for _, p in pts], "-", color="0.75", lw=1.2,
                            label="other models" if other is (sweeps[1] if sw is sweeps[0] else sweeps[0]) else None)
            pts = _curve(sw, m)
            if not pts:
                continue
            x = [f * 100 for f, _ in pts]
            y = [p["mean"] * k for _, p in pts]
            color = colors[j % len(colors)]
            ax.plot(x, y, "o-", color=color, lw=2, label=sw["label"])
            if all(p["ci_low"] is not None and p["ci_high"] is not None for _, p in pts):
                ax.fill_between(x, [p["ci_low"] * k for _, p in pts], [p["ci_high"] * k for _, p in pts],
                                color=color, alpha=0.25, lw=0, label=f"{report['settings']['ci_percent']:g}% CI")
            for xi, yi in zip(x[1:], y[1:]):
                ax.annotate(f"{yi - y[0]:+.1f}" + (" pp" if rate else ""), (xi, yi), textcoords="offset points",
                            xytext=(4, 7), ha="left", fontsize=9, color=color)
            ax.set_xlim(min(x) - 0.05 * (max(x) - min(x) or 1), max(x) + 0.22 * (max(x) - min(x) or 1))
            ax.set_title(sw["label"], fontsize=11)
            ax.set_xlabel("tokens displaced (%)", fontsize=10)
            ax.tick_params(labelsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=9, loc="lower left", framealpha=0.85)
        row[0].set_ylabel(m.replace("_", " ") + (" (%)" if rate else ""), fontsize=10)
    fig.tight_layout()
    return _png(fig)


def win_rates(report: dict) -> Optional[bytes]:
    rows = [j for j in report["judge"] if j["kind"] == "pairwise"]
    if not rows:
        return None
    plt = _plt()
    benches = sorted({j["bench"] for j in rows})
    labels = sorted({j["label"] for j in rows}, key=lambda lb: min(j["run"] for j in rows if j["label"] == lb))
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(benches) * len(labels)), 3.8))
    for k, lb in enumerate(labels):
        xs, ys, lo, hi = [], [], [], []
        for b, bench in enumerate(benches):
            for j in rows:
                if j["label"] == lb and j["bench"] == bench:
                    xs.append(b + (k - (len(labels) - 1) / 2) * width)
                    ys.append(j["mean"])
                    lo.append(j["mean"] - j["ci_low"])
                    hi.append(j["ci_high"] - j["mean"])
        ax.bar(xs, ys, width=width, yerr=[lo, hi], capsize=3, label=lb)
    ax.axhline(0.5, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(benches)), benches)
    ax.set_ylim(0, 1)
    ax.set_ylabel("win rate vs baseline (ties half)")
    ax.set_title("Judge win rates with bootstrap CIs")
    ax.legend(fontsize=8)
    return _png(fig)


PLOTS = {"sensitivity": sensitivity, "forest": forest, "win_rates": win_rates}


def render_all(report: dict) -> Dict[str, bytes]:
    out = {}
    for name, fn in PLOTS.items():
        png = fn(report)
        if png is not None:
            out[name] = png
    return out
