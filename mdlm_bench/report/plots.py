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
                                     for r in reversed(rows)], fontsize=9)
    ax.set_xlabel("B - A pooled over tasks (family-wise cluster bootstrap CI); red: significant (Holm)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title("Pooled differences", fontsize=10)
    return _png(fig)


def sensitivity(report: dict) -> Optional[bytes]:
    sweeps = report["sweeps"]
    metrics = sorted({m for sw in sweeps for lv in sw["levels"] for m in lv["metrics"]})
    if not metrics:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.0 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for sw in sweeps:
            pts = [(lv["fraction"], lv["metrics"][m]) for lv in sw["levels"] if m in lv["metrics"]
                   and lv["metrics"][m]["mean"] is not None]
            if not pts:
                continue
            x = [p[0] for p in pts]
            line, = ax.plot(x, [p[1]["mean"] for p in pts], "o-", label=sw["label"])
            if all(p[1]["ci_low"] is not None and p[1]["ci_high"] is not None for p in pts):
                ax.fill_between(x, [p[1]["ci_low"] for p in pts], [p[1]["ci_high"] for p in pts],
                                color=line.get_color(), alpha=0.2)
        ax.set_xlabel("displaced fraction")
        ax.set_ylabel(m.replace("_", " "))
        ax.set_title(f"{m.replace('_', ' ')} vs displaced fraction")
        ax.legend(fontsize=8)
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
