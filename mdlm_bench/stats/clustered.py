"""Paired comparisons with the prompt as the unit of evidence. Pure functions; every random draw is seeded.

Rows are keyed (task, uid, seed) or (task, uid); a prompt is the key without its seed. Seeds and repeated
samples are nested in a prompt, so each run is first reduced to per-prompt means (over whatever seeds it
has), the two runs are paired on prompts, and every statistic works on the per-prompt differences
d_p = mean_b(p) - mean_a(p). The estimate is mean_p d_p (each prompt weighs the same):
    interval   cluster bootstrap: prompts drawn with replacement, percentile interval of mean_p d_p
    test       sign-flip permutation test on d_p (`scipy.stats.permutation_test`, 'samples': swapping
               A and B within a prompt flips the sign of d_p); McNemar only where each prompt has exactly
               one row in both runs and the scores are 0/1
    power      minimum detectable difference at 80% power and the family's corrected alpha, from sd(d_p)
Copying a row leaves every per-prompt mean, so every interval and p-value, unchanged; seeds that differ
average out within a prompt and so tighten d_p.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

PROMPT_UNIT = "prompt (task, uid); seeds and repeated samples are averaged within it"


def prompt_of(key: Hashable) -> Hashable:
    """(task, uid, seed) -> (task, uid); shorter keys are prompts already."""
    return tuple(key[:2]) if isinstance(key, tuple) and len(key) >= 3 else key


def prompt_means(scores: Mapping[Hashable, float]) -> Tuple[Dict[Hashable, float], Dict[Hashable, int]]:
    """({prompt: mean over its rows}, {prompt: rows})."""
    sums: Dict[Hashable, float] = {}
    counts: Dict[Hashable, int] = {}
    for k, v in scores.items():
        p = prompt_of(k)
        sums[p] = sums.get(p, 0.0) + float(v)
        counts[p] = counts.get(p, 0) + 1
    return {p: sums[p] / counts[p] for p in sums}, counts


@dataclass
class PromptPairing:
    """Per-prompt means of A and B on the prompts both have. a[i], b[i] belong to prompts[i]."""

    prompts: List[Hashable]
    a: np.ndarray  # [n_prompts]
    b: np.ndarray  # [n_prompts]
    rows_a: int  # rows of A on the shared prompts
    rows_b: int
    one_row_each: bool  # every shared prompt has exactly one row in A and one in B
    only_a: List[Hashable] = field(default_factory=list)
    only_b: List[Hashable] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.prompts)

    @property
    def d(self) -> np.ndarray:
        return self.b - self.a

    def counts(self) -> Dict[str, int]:
        return {"prompts": self.n, "rows_a": self.rows_a, "rows_b": self.rows_b,
                "only_a": len(self.only_a), "only_b": len(self.only_b)}


def pair_prompts(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> PromptPairing:
    """Pair two {row key: score} maps on prompts. A level run with one seed pairs with a seeded one."""
    from mdlm_bench.stats import _sorted_keys

    ma, ca = prompt_means(a)
    mb, cb = prompt_means(b)
    both = _sorted_keys(set(ma) & set(mb))
    return PromptPairing(
        prompts=both, a=np.asarray([ma[p] for p in both], float), b=np.asarray([mb[p] for p in both], float),
        rows_a=sum(ca[p] for p in both), rows_b=sum(cb[p] for p in both),
        one_row_each=all(ca[p] == 1 == cb[p] for p in both),
        only_a=_sorted_keys(set(ma) - set(mb)), only_b=_sorted_keys(set(mb) - set(ma)))


def cluster_bootstrap_ci(d: np.ndarray, level: float = 0.95, n_resamples: int = 10000,
                         seed: int = 0) -> Tuple[float, float, float]:
    """(mean, low, high): percentile interval of mean(d) over prompts drawn with replacement.
    d [n_prompts] per-prompt differences. Constant d gives a point; no prompts gives NaN."""
    from mdlm_bench.stats import bootstrap_means, percentile_ci

    d = np.asarray(d, float)
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    if np.all(d == d[0]):
        return float(d[0]), float(d[0]), float(d[0])
    lo, hi = percentile_ci(bootstrap_means(d[None, :], n_resamples, seed), level)
    return float(d.mean()), float(lo[0]), float(hi[0])


def sign_flip_p(d: np.ndarray, n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided p of mean(d) = 0 by flipping the sign of each prompt's difference (exact when
    2**n <= n_resamples), through `scipy.stats.permutation_test(permutation_type='samples')`."""
    from mdlm_bench.stats import paired_permutation_p

    d = np.asarray(d, float)
    if d.size == 0:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    return paired_permutation_p(np.zeros_like(d), d, n_resamples, seed)


def family_level(level: float, m: int) -> float:
    """Bonferroni-level confidence for one interval of a family of m: 1 - (1 - level) / m."""
    return 1.0 - (1.0 - level) / max(int(m), 1)


def min_detectable_difference(sd: float, n: int, alpha: float, power: float = 0.8) -> Optional[float]:
    """Smallest |mean(d)| a two-sided one-sample t-test at `alpha` detects with `power`, given per-prompt
    sd and n prompts (`statsmodels.stats.power.TTestPower`). None when n < 2; 0 when sd is 0."""
    from statsmodels.stats.power import TTestPower

    if n is None or n < 2 or sd is None or not math.isfinite(sd):
        return None
    if sd == 0:
        return 0.0
    es = TTestPower().solve_power(effect_size=None, nobs=int(n), alpha=float(alpha), power=float(power),
                                  alternative="two-sided")
    return float(es) * float(sd)


def prompts_needed(sd: float, mdd: float, alpha: float, power: float = 0.8) -> Optional[int]:
    """Prompts needed for a minimum detectable difference `mdd` (the inverse of the above)."""
    from statsmodels.stats.power import TTestPower

    if sd is None or not math.isfinite(sd) or mdd <= 0:
        return None
    if sd == 0:
        return 2
    n = TTestPower().solve_power(effect_size=mdd / sd, nobs=None, alpha=alpha, power=power,
                                 alternative="two-sided")
    return int(math.ceil(n))


def power_record(ds: Sequence[np.ndarray], alpha: float, power: float = 0.8) -> dict:
    """One family's power statement: Bonferroni alpha (the first, strictest Holm step, so the statement
    is conservative for Holm), and per member the MDD from its own sd(d_p) and prompt count."""
    m = max(len(ds), 1)
    a_c = alpha / m
    mdds = []
    for d in ds:
        d = np.asarray(d, float)
        sd = float(d.std(ddof=1)) if d.size > 1 else float("nan")
        mdds.append(min_detectable_difference(sd, int(d.size), a_c, power))
    finite = [x for x in mdds if x is not None]
    return {"power": power, "alpha": alpha, "tests": len(ds), "alpha_corrected": a_c,
            "alpha_method": "Bonferroni alpha / m (Holm's first step; Holm rejects at least as much)",
            "mdd": mdds, "mdd_max": max(finite) if finite else None,
            "method": "paired t power over per-prompt differences (statsmodels TTestPower)"}


def compare_prompts(pr: PromptPairing, binary: bool, level: float, n_resamples: int, n_permutations: int,
                    seed: int) -> dict:
    """Estimate, per-comparison interval and primary test of one prompt-paired comparison."""
    from mdlm_bench.stats import mcnemar_test

    d = pr.d
    mean, lo, hi = cluster_bootstrap_ci(d, level, n_resamples, seed)
    if binary and pr.one_row_each:
        test, p = "mcnemar", mcnemar_test(pr.a, pr.b).p
    else:
        test, p = "sign-flip permutation", sign_flip_p(d, n_permutations, seed)
    sd = float(d.std(ddof=1)) if d.size > 1 else None
    return {"diff": mean, "ci_low": lo, "ci_high": hi, "ci_level": level, "ci_method": "cluster bootstrap",
            "test": test, "p": p, "sd_prompt": sd, **pr.counts()}


def add_family_intervals(rows: List[dict], ds: Sequence[np.ndarray], level: float, alpha: float,
                         n_resamples: int, seed: int, power: float = 0.8) -> dict:
    """Holm over `rows[i]['p']`, a Bonferroni-level cluster-bootstrap interval for each row (it holds for
    the whole family at once), each row's MDD, and the verdict. Where the family interval and the Holm
    verdict disagree (different methods, at the boundary), the verdict says so instead of hiding it.
    Returns the family record written under the table."""
    from mdlm_bench.stats import correct_pvalues

    fam = family_level(level, len(rows))
    adj = correct_pvalues([r["p"] if r.get("p") is not None else float("nan") for r in rows])
    pw = power_record(ds, alpha, power)
    for r, d, holm, bh, mdd in zip(rows, ds, adj["holm"], adj["fdr_bh"], pw["mdd"]):
        _, flo, fhi = cluster_bootstrap_ci(d, fam, n_resamples, seed)
        sig = None if holm is None else bool(holm < alpha)
        excl = bool(np.isfinite(flo) and np.isfinite(fhi) and (flo > 0 or fhi < 0))
        r.update(p_holm=holm, p_bh=bh, significant=sig, family_ci_low=flo, family_ci_high=fhi,
                 family_ci_level=fam, mdd=mdd, verdict=verdict_of(sig, excl))
    out = {"tests": len(rows), "alpha": alpha, "correction": "holm", "ci_level": level,
           "family_ci_level": fam, "family_ci_method": f"cluster bootstrap over prompts at the Bonferroni "
           f"level 1 - {1 - level:g}/{len(rows)}", "unit": PROMPT_UNIT, "power": pw}
    out["note"] = family_note(out)
    return out


def family_note(fam: dict) -> str:
    """The line under a table: unit, interval level and method, test, correction, power."""
    pw = fam.get("power") or {}
    mdd = pw.get("mdd_max")
    return (f"Unit: the {fam['unit']}. Intervals: {fam['family_ci_method']} "
            f"({fam['family_ci_level'] * 100:.4g}%), so they hold for all {fam['tests']} rows at once; test: "
            f"sign-flip permutation on per-prompt differences (McNemar where each prompt has one row); Holm "
            f"over the {fam['tests']} rows at α {fam['alpha']:g}. Minimum detectable difference (MDD) at "
            f"{pw.get('power', 0.8):.0%} power and α {pw.get('alpha_corrected', float('nan')):.3g} per test, "
            f"from each row's per-prompt sd" + (f": at most {mdd:.3f}." if mdd is not None else ".") +
            " Borderline: Holm and the family-wise interval disagree (Holm is the less conservative).")



def verdict_of(significant: Optional[bool], family_ci_excludes_zero: bool) -> str:
    if significant is None:
        return "no test"
    if significant and family_ci_excludes_zero:
        return "significant"
    if not significant and not family_ci_excludes_zero:
        return "not significant"
    return "borderline"  # the Holm test and the family-wise interval disagree (see family_note)
