"""Plain-language sentences generated from the report's numbers (all written with `fmt`)."""

from __future__ import annotations

from typing import List

from mdlm_bench.report.compare import TEST_NAMES
from mdlm_bench.report.tables import fmt


def _count(n: int, word: str) -> str:
    return f"{fmt(n)} {word}{'' if n == 1 else 's'}"


def _verdict(significant) -> str:
    return "significant" if significant else "not significant"


def benchmark_sentence(row: dict, label_a: str, label_b: str, ci_percent: float) -> str:
    """E.g. "B scores 0.12 higher than A on synth_copy exact match (95% CI 0.05 to 0.19, McNemar
    p=0.003, Holm-corrected p=0.009): significant." """
    what = f"{row['task']} {row['metric'].replace('_', ' ')}"
    d = row["diff"]
    if d is None:
        return (f"{label_b} and {label_a} share no items on {what} ({fmt(row['pairing']['only_a'])} only in "
                f"{label_a}, {fmt(row['pairing']['only_b'])} only in {label_b}): not tested.")
    if d.get("ci_low") is not None:
        ci = f"{_pct(d.get('level'), ci_percent)} CI {fmt(d['ci_low'])} to {fmt(d['ci_high'])}"
    else:
        ci = "no CI"
    test = f"{TEST_NAMES[row['primary_test']]} p={fmt(row['p'])}"
    holm = f", Holm-corrected p={fmt(row['p_holm'])}" if row["p_holm"] is not None else ""
    if d["mean"] == 0:
        head = f"{label_b} and {label_a} score the same on {what} (difference {fmt(0.0)}, "
    else:
        direction = "higher" if d["mean"] > 0 else "lower"
        head = f"{label_b} scores {fmt(abs(d['mean']))} {direction} than {label_a} on {what} ("
    return f"{head}{ci}, {test}{holm}): {row.get('verdict') or _verdict(row['significant'])}."


def _pct(level, ci_percent) -> str:
    """'95%' for a per-comparison interval, '99.7% family' for a family-wise (Bonferroni-level) one."""
    return f"{fmt(ci_percent)}%" if level is None else f"{fmt(100 * level)}% family"


def judge_sentence(row: dict, ci_percent: float, alpha: float) -> str:
    ci = f"{fmt(ci_percent)}% CI {fmt(row['ci_low'])} to {fmt(row['ci_high'])}"
    if row["kind"] != "pairwise":
        return (f"{row['label']} has mean rating {fmt(row['mean'])} on {row['bench']} from {row['judge_model']} "
                f"({ci}).")
    sig = row["sign_p_holm"] is not None and row["sign_p_holm"] < alpha
    return (f"{row['label']} has win rate {fmt(row['mean'])} against {row['baseline']} on {row['bench']} "
            f"({ci}; {fmt(row['wins'])} wins, {fmt(row['ties'])} ties, {fmt(row['losses'])} losses; sign test "
            f"p={fmt(row['sign_p'])}, Holm-corrected p={fmt(row['sign_p_holm'])}): {_verdict(sig)}.")


def _effect(r: dict, ci_percent: float) -> str:
    """"B scores 0.357 lower than A on exact match (95% CI ..., Holm p=...)" for a headline row."""
    d = r["diff"]
    if d == 0:
        head = f"{r['label_b']} and {r['label_a']} score the same on {r['metric'].replace('_', ' ')}"
    else:
        head = (f"{r['label_b']} scores {fmt(abs(d))} {'higher' if d > 0 else 'lower'} than {r['label_a']} on "
                f"{r['metric'].replace('_', ' ')}, {fmt(r['b_mean'])} against {fmt(r['a_mean'])}")
    ci = (f"{_pct(r.get('ci_level'), ci_percent)} CI {fmt(r['ci_low'])} to {fmt(r['ci_high'])}"
          if r["ci_low"] is not None else "no CI")
    return f"{head} ({ci}, Holm p={fmt(r['p_holm'])})"


def _names(items: List[str], limit: int = 4) -> str:
    shown = items[:limit] + ([f"{len(items) - limit} more"] if len(items) > limit else [])
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def findings(report: dict, limit: int = 5) -> List[str]:
    """At most `limit` plain sentences from the numbers: how many pooled comparisons are significant,
    the largest significant effects, what did not reach significance, unpaired items, the sweep ends."""
    s = report["settings"]
    rows = [r for r in report["headline"]["comparisons"] if r["p_holm"] is not None]
    sig = sorted((r for r in rows if r["significant"]), key=lambda r: -abs(r["diff"]))
    ns = [r for r in rows if not r["significant"]]
    first: List[str] = []
    if rows:
        verb = "differs" if len(rows) == 1 else "differ"
        head = ("The pooled comparison" if len(sig) == 1 else "The pooled comparison does not") if len(rows) == 1 \
            else f"{fmt(len(sig))} of {_count(len(rows), 'pooled comparison')}"
        first.append(f"{head} {verb if len(rows) > 1 or sig else 'differ'} significantly at alpha "
                     f"{fmt(s['alpha'])} after Holm correction.")
    largest = [f"Largest significant effect: {_effect(sig[0], s['ci_percent'])}."] if sig else []
    second = [f"Next: {_effect(sig[1], s['ci_percent'])}."] if len(sig) > 1 else []
    if len(ns) == 1:
        rest = [f"Not significant: {_effect(ns[0], s['ci_percent'])}."]
    elif ns:
        rest = [f"Not significant: {_names([r['comparison'] for r in ns])} (smallest Holm p "
                f"{fmt(min(r['p_holm'] for r in ns))})."]
    else:
        rest = []
    unpaired = [r for c in report["comparisons"] for r in c["benchmarks"]
                if r["pairing"]["only_a"] or r["pairing"]["only_b"]]
    caveat = [f"{_count(sum(r['pairing']['only_a'] + r['pairing']['only_b'] for r in unpaired), 'item')} "
              f"present in only one run of a comparison were left unpaired "
              f"({_names(sorted({r['benchmark'] for r in unpaired}))}); see the per-comparison tables."] \
        if unpaired else []
    ends = []
    for sw in report["sweeps"]:
        lv0, lv1 = sw["levels"][0], sw["levels"][-1]
        for m in sorted(set(lv0["metrics"]) & set(lv1["metrics"])):
            a, b = lv0["metrics"][m]["mean"], lv1["metrics"][m]["mean"]
            if a is not None and b is not None:
                ends.append(f"{fmt(a)} to {fmt(b)} for {sw['label']}"
                            + (f" ({m.replace('_', ' ')})" if len(lv0["metrics"]) > 1 else ""))
    sweep = []
    if ends:
        lv = report["sweeps"][0]["levels"]
        sweep = [f"From {lv[0]['fraction'] * 100:g}% to {lv[-1]['fraction'] * 100:g}% of tokens displaced the "
                 f"mean goes from {_names(ends, 6)}."]
    judged = [judge_sentence(j, s["ci_percent"], s["alpha"]) for j in report["judge"][:1]]
    # shown in reading order; when there are more than `limit`, the lowest priority ones go
    shown = [(0, first), (1, largest), (5, second), (2, rest), (3, caveat), (4, sweep), (6, judged)]
    keep = sorted(rank for rank, x in shown if x)[:limit]
    return [x[0] for rank, x in shown if x and rank in keep] or ["Nothing to compare."]
