"""The headline: each comparison pooled over tasks, one row per (comparison, metric).

Rows of every task are paired on (task, uid, seed) and pooled; a judged bench is its own row. Each row
has the mean difference B - A with its paired bootstrap CI, McNemar (binary) or the paired permutation
test, and Holm / BH over the headline rows (a family of its own, apart from the per-task tests).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from mdlm_bench import stats
from mdlm_bench.report.load import Run
from mdlm_bench.report.settings import ReportSettings

POOLED_OVER = "every task, paired by (task, uid, seed)"


def _groups(run: Run) -> Dict[str, Tuple[str, Dict]]:
    """{metric: (kind, pooled scores)}; a judged bench keeps its own name."""
    out: Dict[str, Tuple[str, Dict]] = {}
    for b in run.benchmarks.values():
        key = b.task if b.task.startswith("judge:") else b.metric
        kind, scores = out.setdefault(key, (b.kind, {}))
        scores.update(b.scores)
        if b.kind != kind:
            out[key] = ("continuous", scores)
    return out


def pooled(runs: List[Run], pairs: Sequence[Tuple[int, int]], names: Optional[Sequence[str]],
           s: ReportSettings) -> dict:
    """{"metric", "metrics", "pooled_over", "comparisons": [row]} for report.json["headline"]."""
    groups = [_groups(r) for r in runs]
    rows: List[dict] = []
    for k, (ia, ib) in enumerate(pairs):
        name = names[k] if names else f"{runs[ia].label} → {runs[ib].label}"
        for metric in sorted(set(groups[ia]) & set(groups[ib])):
            (ka, sa), (kb, sb) = groups[ia][metric], groups[ib][metric]
            pr = stats.pair(sa, sb)
            if pr.n_both == 0:
                continue
            ci = stats.paired_bootstrap_ci(pr.a, pr.b, s.ci_level, s.n_resamples, s.seed)
            binary = ka == kb == "binary"
            p = stats.mcnemar_test(pr.a, pr.b).p if binary else \
                stats.paired_permutation_p(pr.a, pr.b, s.n_permutations, s.seed)
            rows.append({"comparison": name, "a": ia, "b": ib, "label_a": runs[ia].label,
                         "label_b": runs[ib].label, "metric": metric, "n": pr.n_both, **pr.counts(),
                         "tasks": len({key[0] for key in pr.keys}),
                         "a_mean": float(pr.a.mean()), "b_mean": float(pr.b.mean()), "diff": ci.estimate,
                         "ci_low": ci.low, "ci_high": ci.high, "ci_method": ci.method,
                         "test": "mcnemar" if binary else "permutation", "p": p})
    adj = stats.correct_pvalues([r["p"] for r in rows])
    for r, holm, bh in zip(rows, adj["holm"], adj["fdr_bh"]):
        r.update(p_holm=holm, p_bh=bh, significant=None if holm is None else bool(holm < s.alpha))
    metrics = sorted({r["metric"] for r in rows}, key=lambda m: (-sum(r["metric"] == m for r in rows), m))
    return {"metric": metrics[0] if metrics else None, "metrics": metrics, "pooled_over": POOLED_OVER,
            "comparisons": rows}
