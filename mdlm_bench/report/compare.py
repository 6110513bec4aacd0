"""Paired comparison of two runs, benchmark by benchmark, and the judge win-rate section.

The prompt is the unit (stats.clustered): each run's rows are averaged per prompt over seeds and the
runs are paired on prompts; every test below works on the per-prompt means. Which tests apply follows
the benchmark kind; the first one listed is the primary test whose p-value is corrected across every
comparison in the report:
    binary      McNemar (only where each prompt has one row in both runs), else sign-flip permutation
    continuous  sign-flip permutation, Wilcoxon signed-rank
    single      sign-flip permutation, Wilcoxon signed-rank      (judge 1-10 ratings)
    pairwise    sign-flip permutation, Wilcoxon, sign test       (judge scores vs a baseline, in [0, 1])
The interval of B - A is a cluster bootstrap over prompts at the Bonferroni level of the whole family
(every benchmark of every comparison), so it agrees with the Holm verdict; the 95% one is kept beside.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from mdlm_bench import stats
from mdlm_bench.errors import UserError
from mdlm_bench.registry import Registry
from mdlm_bench.report.load import Benchmark, Run
from mdlm_bench.report.settings import ReportSettings

TEST_NAMES = {"mcnemar": "McNemar", "permutation": "permutation", "wilcoxon": "Wilcoxon", "sign": "sign test"}

# kind -> function(a, b, settings) -> {test name: {"p": ..., ...}}, primary test first
TESTS: Registry = Registry("benchmark kind")


def _permutation(a, b, s: ReportSettings) -> dict:
    return {"p": stats.paired_permutation_p(a, b, s.n_permutations, s.seed)}


def _wilcoxon(a, b) -> dict:
    stat, p = stats.wilcoxon_p(a, b)
    return {"p": p, "statistic": stat}


@TESTS.register("binary")
def _binary_tests(a, b, s: ReportSettings, one_row_each: bool = True) -> Dict[str, dict]:
    if not one_row_each:  # per-prompt means over seeds are no longer 0/1: McNemar does not apply
        return {"permutation": _permutation(a, b, s)}
    m = stats.mcnemar_test(a, b)
    return {"mcnemar": {"p": m.p, "statistic": m.statistic, "exact": m.exact, "a_only": m.a_only,
                        "b_only": m.b_only},
            "permutation": _permutation(a, b, s)}


@TESTS.register("continuous")
@TESTS.register("single")
def _continuous_tests(a, b, s: ReportSettings, one_row_each: bool = True) -> Dict[str, dict]:
    return {"permutation": _permutation(a, b, s), "wilcoxon": _wilcoxon(a, b)}


@TESTS.register("pairwise")
def _pairwise_tests(a, b, s: ReportSettings, one_row_each: bool = True) -> Dict[str, dict]:
    wins, ties, losses = stats.win_tie_loss(a, b)
    return {**_continuous_tests(a, b, s),
            "sign": {"p": stats.sign_test_p(wins, losses), "wins": wins, "ties": ties, "losses": losses}}


def resolve_kind(name: str, ba: Benchmark, bb: Benchmark, label_a: str, label_b: str) -> str:
    """The kind both runs agree on. Stated kinds must match; an inferred 'binary' yields to a stated or
    inferred 'continuous' (0/1 values are valid continuous scores)."""
    if ba.kind == bb.kind:
        return ba.kind
    judged = {ba.kind, bb.kind} & {"pairwise", "single"}
    if judged or (ba.declared and bb.declared) or (ba.declared and ba.kind == "binary") or \
            (bb.declared and bb.kind == "binary"):
        raise UserError(
            f"benchmark '{name}' is {ba.kind} in '{label_a}' but {bb.kind} in '{label_b}'; compare runs "
            f"that score it the same way (check metrics.json 'type' or the judge kind)")
    return "continuous"


def _nan_to_none(x: Optional[float]) -> Optional[float]:
    return None if x is None or not np.isfinite(x) else float(x)


def compare_benchmark(name: str, ba: Optional[Benchmark], bb: Optional[Benchmark], kind: str,
                      s: ReportSettings) -> dict:
    """One row of the comparison table. Per-run means/CIs and corrected p-values are filled in later
    (they are computed for all rows at once)."""
    from mdlm_bench.stats.clustered import cluster_bootstrap_ci, pair_prompts

    bench = ba or bb
    paired = pair_prompts(ba.scores if ba else {}, bb.scores if bb else {})
    entry = {
        "benchmark": name, "task": bench.task, "metric": bench.metric, "kind": kind,
        "pairing": {"both": paired.n, **paired.counts()},
        "a": None, "b": None, "diff": None, "tests": {}, "primary_test": None,
        "p": None, "p_holm": None, "p_bh": None, "significant": None, "effect": None, "summary": None,
    }
    if paired.n == 0:
        return entry
    a, b = paired.a, paired.b
    est, lo, hi = cluster_bootstrap_ci(paired.d, s.ci_level, s.n_resamples, s.seed)
    tests = TESTS.get(kind)(a, b, s, paired.one_row_each)
    tests = {k: {kk: (_nan_to_none(vv) if isinstance(vv, float) else vv) for kk, vv in v.items()}
             for k, v in tests.items()}
    primary = next(iter(tests))
    wins, ties, losses = stats.win_tie_loss(a, b)
    entry.update({
        "diff": {"mean": est, "ci95_low": _nan_to_none(lo), "ci95_high": _nan_to_none(hi),
                 "method": "cluster bootstrap"},
        "tests": tests, "primary_test": primary, "p": tests[primary]["p"],
        "effect": {"mean_diff": est, "cohens_dz": stats.cohens_dz(a, b),
                   "wins": wins, "ties": ties, "losses": losses},
        "_a": a, "_b": b,  # removed before writing; used for the batched per-run CIs and family intervals
    })
    return entry


def compare_runs(A: Run, B: Run, ia: int, ib: int, s: ReportSettings) -> dict:
    names = sorted(set(A.benchmarks) | set(B.benchmarks))
    rows = []
    for name in names:
        ba, bb = A.benchmarks.get(name), B.benchmarks.get(name)
        kind = resolve_kind(name, ba, bb, A.label, B.label) if ba and bb else (ba or bb).kind
        rows.append(compare_benchmark(name, ba, bb, kind, s))
    if not any(r["pairing"]["both"] for r in rows):
        raise UserError(
            f"runs '{A.label}' and '{B.label}' share no (task, uid) prompts (tasks {sorted(A.info['tasks'])}"
            f" vs {sorted(B.info['tasks'])}); compare runs made on the same tasks")
    return {"a": ia, "b": ib, "label_a": A.label, "label_b": B.label, "benchmarks": rows}


def fill_scores_and_corrections(comparisons: List[dict], s: ReportSettings) -> dict:
    """Per-run score CIs on the paired prompts (one vectorised bootstrap), Holm/BH across all primary
    p-values of the report, family-wise intervals and MDDs. Returns the correction record."""
    from mdlm_bench.stats.clustered import add_family_intervals

    rows = [r for c in comparisons for r in c["benchmarks"] if r["p"] is not None or r.get("_a") is not None]
    groups = [g for r in rows for g in (r["_a"], r["_b"])]
    cis = stats.mean_ci_many(groups, s.ci_level, s.n_resamples, s.seed)
    for i, r in enumerate(rows):
        for side, (m, lo, hi) in zip(("a", "b"), cis[2 * i:2 * i + 2]):
            r[side] = {"mean": m, "ci_low": lo, "ci_high": hi, "n": int(r["pairing"]["both"])}
    tested = [r for r in rows if r["p"] is not None]
    family = add_family_intervals(tested, [r["_b"] - r["_a"] for r in tested], s.ci_level, s.alpha,
                                  s.n_resamples, s.seed)
    for r in rows:
        del r["_a"], r["_b"]
    for r in tested:
        r["diff"].update(ci_low=r.pop("family_ci_low"), ci_high=r.pop("family_ci_high"),
                         level=r.pop("family_ci_level"))
    return {"methods": ["holm", "fdr_bh"], "n_tests": len(tested), "alpha": s.alpha,
            "significance_from": "holm", "family": family}


def judge_section(runs: List[Run], s: ReportSettings) -> List[dict]:
    """Per run and judged bench: win rate (pairwise; ties count half) or mean rating (single) with a
    percentile bootstrap CI over prompts (seeds averaged within a prompt), wins/ties/losses of the
    per-prompt scores and the sign test against the judge's baseline."""
    out = []
    for i, run in enumerate(runs):
        for summary in run.judges:
            from mdlm_bench.stats.clustered import prompt_means

            bench = run.benchmarks[f"judge:{summary['bench']}"]
            per_prompt = prompt_means(bench.scores)[0]  # a prompt judged under several seeds counts once
            scores = np.asarray([per_prompt[k] for k in stats._sorted_keys(per_prompt)], float)
            mean, lo, hi = stats.win_rate_ci(scores, s.ci_level, s.n_resamples, s.seed)
            row = {"run": i, "label": run.label, "bench": summary["bench"], "kind": summary["kind"],
                   "judge_model": summary.get("judge_model"), "baseline": summary.get("baseline"),
                   "n": int(scores.size), "rows": len(bench.scores), "mean": mean, "ci_low": lo, "ci_high": hi,
                   "reported_score": summary.get("score"), "wins": None, "ties": None, "losses": None,
                   "sign_p": None, "sign_p_holm": None,
                   "position_consistency": summary.get("position_consistency"),
                   "parse_failure_rate": summary.get("parse_failure_rate")}
            if summary["kind"] == "pairwise":
                w, t, l = stats.outcomes_from_scores(scores)
                row.update(wins=w, ties=t, losses=l, sign_p=stats.sign_test_p(w, l))
            out.append(row)
    adj = stats.correct_pvalues([r["sign_p"] if r["sign_p"] is not None else float("nan") for r in out])
    for r, h in zip(out, adj["holm"]):
        r["sign_p_holm"] = h
    return out
