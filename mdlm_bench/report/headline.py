"""The headline: each comparison pooled over tasks, one row per (comparison, metric).

The prompt (task, uid) is the unit: each run's rows are averaged per prompt over its seeds, the runs are
paired on prompts and pooled over tasks (stats.clustered). Each row has the mean per-prompt difference
B - A with its cluster-bootstrap interval, the sign-flip permutation test on per-prompt differences
(McNemar only where every prompt has exactly one 0/1 row in both runs), Holm / BH over the headline rows
(a family of its own, apart from the per-task tests), an interval at the Bonferroni level that holds for
the whole family at once, and the family's minimum detectable difference at 80% power.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from mdlm_bench.report.load import Run
from mdlm_bench.report.settings import ReportSettings

POOLED_OVER = "every task, paired by prompt (task, uid); seeds averaged within a prompt"


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
    """{"metric", "metrics", "pooled_over", "family", "comparisons": [row]} for report.json["headline"].
    A row's ci_low / ci_high are the family-wise interval (level in "ci_level"); ci95_low / ci95_high the
    interval of the comparison alone."""
    from mdlm_bench.stats.clustered import add_family_intervals, compare_prompts, pair_prompts

    groups = [_groups(r) for r in runs]
    rows: List[dict] = []
    ds = []
    for k, (ia, ib) in enumerate(pairs):
        name = names[k] if names else f"{runs[ia].label} → {runs[ib].label}"
        for metric in sorted(set(groups[ia]) & set(groups[ib])):
            (ka, sa), (kb, sb) = groups[ia][metric], groups[ib][metric]
            pr = pair_prompts(sa, sb)
            if pr.n == 0:
                continue
            c = compare_prompts(pr, ka == kb == "binary", s.ci_level, s.n_resamples, s.n_permutations, s.seed)
            rows.append({"comparison": name, "a": ia, "b": ib, "label_a": runs[ia].label,
                         "label_b": runs[ib].label, "metric": metric, "n": pr.n, **pr.counts(),
                         "tasks": len({p[0] for p in pr.prompts if isinstance(p, tuple)}),
                         "a_mean": float(pr.a.mean()), "b_mean": float(pr.b.mean()), "diff": c["diff"],
                         "ci95_low": c["ci_low"], "ci95_high": c["ci_high"], "ci_method": c["ci_method"],
                         "test": c["test"], "p": c["p"], "sd_prompt": c["sd_prompt"]})
            ds.append(pr.d)
    family = add_family_intervals(rows, ds, s.ci_level, s.alpha, s.n_resamples, s.seed)
    for r in rows:
        r.update(ci_low=r.pop("family_ci_low"), ci_high=r.pop("family_ci_high"), ci_level=r.pop("family_ci_level"))
    metrics = sorted({r["metric"] for r in rows}, key=lambda m: (-sum(r["metric"] == m for r in rows), m))
    return {"metric": metrics[0] if metrics else None, "metrics": metrics, "pooled_over": POOLED_OVER,
            "family": family, "comparisons": rows}
