"""Paired statistics for comparing two runs item by item. Pure functions; every random draw is seeded.

The tests themselves come from scipy and statsmodels. Written here by hand is only what no library
offers: pairing with an account of mismatches, and a percentile bootstrap vectorised over many
benchmarks at once (one shared index draw for a [n_bench, n_items] array).

Conventions: `a` and `b` are 1-D float arrays of per-item scores of runs A and B on the same items,
in the same order; differences are always b - a. Every p-value is two-sided.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Dict, Hashable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

Key = Tuple[str, str, int]


# ----------------------------------------------------------------------------------------- pairing
@dataclass
class Pairing:
    """Items of A and B matched by key. a[i] and b[i] belong to keys[i]."""

    keys: List[Hashable]
    a: np.ndarray  # [n_both]
    b: np.ndarray  # [n_both]
    only_a: List[Hashable] = field(default_factory=list)
    only_b: List[Hashable] = field(default_factory=list)

    @property
    def n_both(self) -> int:
        return len(self.keys)

    def counts(self) -> Dict[str, int]:
        return {"both": self.n_both, "only_a": len(self.only_a), "only_b": len(self.only_b)}


def pair(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> Pairing:
    """Match two {key: score} maps. Keys present in one side only are listed, never dropped silently.

    Keys are sorted (by repr when they do not compare) so the result does not depend on dict order.
    """
    both = set(a) & set(b)
    keys = _sorted_keys(both)
    return Pairing(
        keys=keys,
        a=np.asarray([float(a[k]) for k in keys], dtype=float),
        b=np.asarray([float(b[k]) for k in keys], dtype=float),
        only_a=_sorted_keys(set(a) - both),
        only_b=_sorted_keys(set(b) - both),
    )


def _sorted_keys(keys) -> list:
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=repr)


# ----------------------------------------------------------------------------- continuous / ordinal
def _mean_diff(x, y, axis=-1):
    return np.mean(y, axis=axis) - np.mean(x, axis=axis)


@dataclass
class Interval:
    estimate: float
    low: float
    high: float
    method: str


def paired_bootstrap_ci(a: np.ndarray, b: np.ndarray, level: float = 0.95, n_resamples: int = 10000,
                        seed: int = 0) -> Interval:
    """BCa CI of mean(b - a) from `scipy.stats.bootstrap(paired=True)`.

    When every difference is the same value the bootstrap distribution is a point, so the interval is
    that point. When BCa is undefined for other degenerate data (scipy returns NaN) the percentile
    interval from the same call is used and named in `method`.
    """
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    est = float(d.mean()) if d.size else float("nan")
    if d.size == 0:
        return Interval(est, float("nan"), float("nan"), "none")
    if np.all(d == d[0]):
        return Interval(est, float(d[0]), float(d[0]), "constant")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap((a, b), _mean_diff, paired=True, vectorized=True, method=method,
                                  confidence_level=level, n_resamples=n_resamples, batch=1000,
                                  rng=np.random.default_rng(seed))
        lo, hi = res.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            return Interval(est, float(lo), float(hi), method)
    return Interval(est, float("nan"), float("nan"), "failed")


def paired_permutation_p(a: np.ndarray, b: np.ndarray, n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided p of mean(b - a) from `scipy.stats.permutation_test(permutation_type='samples')`
    (swaps A and B within each item; exact when 2**n <= n_resamples)."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0:
        return float("nan")
    res = stats.permutation_test((a, b), _mean_diff, permutation_type="samples", vectorized=True,
                                 n_resamples=n_resamples, batch=1000, alternative="two-sided",
                                 rng=np.random.default_rng(seed))
    return float(res.pvalue)


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
    """(statistic, two-sided p) of the Wilcoxon signed-rank test on b - a (`scipy.stats.wilcoxon`).

    All-zero differences carry no evidence: p = 1 (scipy gives the same with a divide warning).
    """
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0:
        return float("nan"), float("nan")
    if np.all(a == b):
        return 0.0, 1.0
    res = stats.wilcoxon(b, a, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def cohens_dz(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """mean(d) / sd(d, ddof=1) with d = b - a. 0 when all d are 0; None when undefined (n < 2, or sd 0
    with a nonzero mean)."""
    d = np.asarray(b, float) - np.asarray(a, float)
    if d.size < 2:
        return None
    sd = float(d.std(ddof=1))
    m = float(d.mean())
    if sd == 0.0:
        return 0.0 if m == 0.0 else None
    return m / sd


def win_tie_loss(a: np.ndarray, b: np.ndarray) -> Tuple[int, int, int]:
    """Items where B beats A, ties it, loses to it."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return int((b > a).sum()), int((b == a).sum()), int((b < a).sum())


# ------------------------------------------------------------------------------------------ binary
@dataclass
class McNemar:
    statistic: float
    p: float
    exact: bool
    a_only: int  # items A got right and B wrong
    b_only: int  # items B got right and A wrong


def mcnemar_test(a: np.ndarray, b: np.ndarray, exact_below: int = 25) -> McNemar:
    """McNemar test (statsmodels) on paired 0/1 outcomes; exact binomial when the discordant count is
    below `exact_below`, else the chi-square with continuity correction."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    discordant = table[0][1] + table[1][0]
    exact = discordant < exact_below
    res = mcnemar(table, exact=exact, correction=True)
    return McNemar(float(res.statistic), float(res.pvalue), exact, table[0][1], table[1][0])


# ---------------------------------------------------------------------------------------- pairwise
def outcomes_from_scores(scores: np.ndarray) -> Tuple[int, int, int]:
    """(wins, ties, losses) of per-item pairwise scores in [0, 1]: > 0.5 win, < 0.5 loss, = 0.5 tie."""
    s = np.asarray(scores, float)
    return int((s > 0.5).sum()), int((s == 0.5).sum()), int((s < 0.5).sum())


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided sign test (`scipy.stats.binomtest`, p = 0.5) on wins vs losses; ties are left out by
    the caller and reported beside. No decided games: p = 1."""
    from scipy import stats

    n = int(wins) + int(losses)
    if n == 0:
        return 1.0
    return float(stats.binomtest(int(wins), n, 0.5, alternative="two-sided").pvalue)


# ---------------------------------------------------------------------------------- many benchmarks
def correct_pvalues(pvalues: Sequence[float]) -> Dict[str, List[Optional[float]]]:
    """Holm and Benjamini-Hochberg adjusted p-values (`statsmodels.stats.multitest.multipletests`).

    NaN or None entries (tests that could not run) stay None and do not count as tests.
    """
    from statsmodels.stats.multitest import multipletests

    p = [None if v is None or not math.isfinite(v) else float(v) for v in pvalues]
    idx = [i for i, v in enumerate(p) if v is not None]
    out: Dict[str, List[Optional[float]]] = {"holm": [None] * len(p), "fdr_bh": [None] * len(p)}
    if idx:
        vals = np.asarray([p[i] for i in idx])
        for method in out:
            adj = multipletests(vals, method=method)[1]
            for i, v in zip(idx, adj):
                out[method][i] = float(v)
    return out


def bootstrap_index_chunks(seed: int, n_resamples: int, n_items: int, chunk: int = 128) -> Iterator[np.ndarray]:
    """Resampling indices in chunks of [<=chunk, n_items] rows, the same for every caller with the
    same (seed, n_resamples, n_items, chunk). uint16 indices draw several times faster than int64."""
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if n_items <= np.iinfo(np.uint16).max else np.int64
    for start in range(0, n_resamples, chunk):
        yield rng.integers(0, n_items, size=(min(chunk, n_resamples - start), n_items), dtype=dtype)


def _one_blas_thread():
    """Each chunk's product is tiny; BLAS worker threads only add hand-off cost, and on a busy machine
    a descheduled worker stalls every call. threadpoolctl is optional: without it, BLAS decides."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def bootstrap_means(data: np.ndarray, n_resamples: int = 10000, seed: int = 0) -> np.ndarray:
    """Bootstrap means of every row of `data` [n_bench, n_items] under one shared index draw.

    Returns [n_bench, n_resamples]. Each chunk of resamples becomes a count matrix C [chunk, n_items]
    (how often each item was drawn), so the means are one matrix product (C @ data.T).T / n_items.
    Small chunks keep the work in cache.
    """
    data = np.atleast_2d(np.asarray(data, float))
    n_bench, n = data.shape
    data_t = np.ascontiguousarray(data.T)
    out = np.empty((n_bench, n_resamples))
    start = 0
    with _one_blas_thread():
        for idx in bootstrap_index_chunks(seed, n_resamples, n):
            m = idx.shape[0]
            flat = np.add(idx, (np.arange(m, dtype=np.intp) * n)[:, None], dtype=np.intp)
            counts = np.bincount(flat.ravel(), minlength=m * n).reshape(m, n)
            out[:, start:start + m] = (counts.astype(float) @ data_t).T
            start += m
    out /= n
    return out


def bootstrap_means_loop(data: np.ndarray, n_resamples: int = 10000, seed: int = 0) -> np.ndarray:
    """Reference for `bootstrap_means`: one benchmark and one resample at a time, same index rows."""
    data = np.atleast_2d(np.asarray(data, float))
    n_bench, n = data.shape
    out = np.empty((n_bench, n_resamples))
    for j in range(n_bench):
        r = 0
        for idx in bootstrap_index_chunks(seed, n_resamples, n):
            for row in idx:
                out[j, r] = data[j, row].mean()
                r += 1
    return out


def percentile_ci(boot: np.ndarray, level: float = 0.95) -> Tuple[np.ndarray, np.ndarray]:
    """Percentile interval along the last axis of bootstrap statistics [..., n_resamples]."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], axis=-1)
    return lo, hi


def mean_ci_many(groups: Sequence[np.ndarray], level: float = 0.95, n_resamples: int = 10000,
                 seed: int = 0) -> List[Tuple[float, float, float]]:
    """(mean, low, high) percentile-bootstrap CIs for many 1-D samples. Samples of equal length share
    one vectorised call; sizes 0 and 1 give NaN and a point interval."""
    out: List[Optional[Tuple[float, float, float]]] = [None] * len(groups)
    by_len: Dict[int, List[int]] = {}
    for i, g in enumerate(groups):
        g = np.asarray(g, float)
        if g.size == 0:
            out[i] = (float("nan"), float("nan"), float("nan"))
        elif g.size == 1:
            out[i] = (float(g[0]), float(g[0]), float(g[0]))
        else:
            by_len.setdefault(g.size, []).append(i)
    for n, members in sorted(by_len.items()):
        data = np.stack([np.asarray(groups[i], float) for i in members])
        lo, hi = percentile_ci(bootstrap_means(data, n_resamples, seed + n), level)
        for k, i in enumerate(members):
            out[i] = (float(data[k].mean()), float(lo[k]), float(hi[k]))
    return out  # type: ignore[return-value]


def win_rate_ci(scores: np.ndarray, level: float = 0.95, n_resamples: int = 10000,
                seed: int = 0) -> Tuple[float, float, float]:
    """Arena-Hard-style win rate against the baseline: mean per-item score (a tie counts half), with a
    percentile bootstrap CI over items."""
    return mean_ci_many([np.asarray(scores, float)], level, n_resamples, seed)[0]


def infer_binary(values: Sequence[float]) -> bool:
    """True when every value is 0 or 1 (used when metrics.json does not state the metric type)."""
    v = np.asarray(values, float)
    return bool(v.size) and bool(np.all((v == 0.0) | (v == 1.0)))
