"""The prompt as the unit: copies of a row change nothing, differing seeds tighten per-prompt means, and
each statistic agrees with an independent computation (numpy, scipy, statsmodels or a hand case)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from mdlm_bench import stats
from mdlm_bench.stats import clustered as cl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_runs import write_run  # noqa: E402


def _rows(values, seeds=(0,)):
    """{(task, uid, seed): score} with values[p][s] for prompt p and seed index s."""
    return {("t", f"u{p}", seeds[s]): float(v) for p, vs in enumerate(values) for s, v in enumerate(vs)}


def _binary_runs(n=60, seed=1):
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < 0.5).astype(float)
    b = np.where(rng.random(n) < 0.25, 1.0 - a, a)
    b[:6] = 1.0  # a small planted edge for B
    return a, b


def test_copied_seeds_change_neither_interval_nor_p():
    a, b = _binary_runs()
    one = cl.pair_prompts(_rows(a[:, None]), _rows(b[:, None]))
    three = cl.pair_prompts(_rows(np.repeat(a[:, None], 3, 1), (0, 1, 2)),
                            _rows(np.repeat(b[:, None], 3, 1), (0, 1, 2)))
    assert one.counts()["prompts"] == three.counts()["prompts"] == 60
    assert (one.rows_a, three.rows_a) == (60, 180)
    r1 = cl.compare_prompts(one, True, 0.95, 4000, 4000, 0)
    r3 = cl.compare_prompts(three, True, 0.95, 4000, 4000, 0)
    for k in ("diff", "ci_low", "ci_high", "sd_prompt"):
        assert r1[k] == pytest.approx(r3[k], abs=1e-12), k
    # One row each: McNemar; copies: the sign-flip test on the same per-prompt differences. On 0/1 data
    # both are the exact binomial test of the discordant prompts, so they agree within resampling noise,
    # and the sign-flip p of the copies equals the single-seed one exactly.
    assert r1["test"] == "mcnemar" and r3["test"] == "sign-flip permutation"
    assert abs(r1["p"] - r3["p"]) < 0.02
    assert cl.sign_flip_p(one.d, 4000, 0) == r3["p"]
    # The row-level statistics this replaces do not have this property: copies narrow the interval.
    ra, rb = np.repeat(a, 3), np.repeat(b, 3)
    w1 = stats.paired_bootstrap_ci(a, b, n_resamples=2000)
    w3 = stats.paired_bootstrap_ci(ra, rb, n_resamples=2000)
    assert (w3.high - w3.low) < 0.75 * (w1.high - w1.low)


def test_report_of_copied_seed_runs_equals_single_seed_runs(tmp_path):
    from mdlm_bench.report import ReportSettings, build_report

    a, b = _binary_runs()
    s = ReportSettings(n_resamples=2000, n_permutations=2000)
    r = {}
    for name, seeds in (("one", (0,)), ("three", (0, 1, 2))):
        k = len(seeds)
        ra = write_run(tmp_path / name / "A", {"synth_copy": {"exact_match": np.repeat(a, k)}}, seeds=seeds,
                       types={"exact_match": "binary"})
        rb = write_run(tmp_path / name / "B", {"synth_copy": {"exact_match": np.repeat(b, k)}}, seeds=seeds,
                       types={"exact_match": "binary"})
        r[name] = build_report([ra, rb], [], tmp_path / name / "out", settings=s)
    h1, h3 = r["one"]["headline"]["comparisons"][0], r["three"]["headline"]["comparisons"][0]
    assert (h1["prompts"], h1["rows_a"], h3["prompts"], h3["rows_a"]) == (60, 60, 60, 180)
    for k in ("diff", "ci_low", "ci_high", "ci95_low", "ci95_high", "mdd"):
        assert h1[k] == pytest.approx(h3[k], abs=1e-12), k
    assert abs(h1["p"] - h3["p"]) < 0.02  # McNemar on one row each vs sign-flip on copies: same evidence
    c1 = r["one"]["comparisons"][0]["benchmarks"][0]
    c3 = r["three"]["comparisons"][0]["benchmarks"][0]
    assert c1["diff"]["ci_low"] == pytest.approx(c3["diff"]["ci_low"], abs=1e-12)
    assert c1["pairing"]["both"] == c3["pairing"]["both"] == 60


def test_differing_seeds_tighten_and_bootstrap_matches_numpy_over_prompt_means():
    rng = np.random.default_rng(5)
    n, k = 80, 4
    prompt_effect = rng.normal(0.1, 0.3, n)  # what each prompt's difference would be with infinite seeds
    a = rng.normal(0, 0.2, (n, k))
    b = a + prompt_effect[:, None] + rng.normal(0, 0.8, (n, k))  # seed noise within a prompt
    pr = cl.pair_prompts(_rows(a, tuple(range(k))), _rows(b, tuple(range(k))))
    mean, lo, hi = cl.cluster_bootstrap_ci(pr.d, 0.95, 20000, 0)
    # Independent: per-prompt means by hand, prompts resampled with numpy's own generator.
    d = np.array([np.mean(b[p]) - np.mean(a[p]) for p in range(n)])
    order = np.argsort([f"u{p}" for p in range(n)])  # pairing sorts prompt keys
    np.testing.assert_allclose(pr.d, d[order])
    g = np.random.default_rng(123)
    boots = d[g.integers(0, n, (20000, n))].mean(1)
    assert mean == pytest.approx(d.mean())
    assert lo == pytest.approx(np.quantile(boots, 0.025), abs=0.01)
    assert hi == pytest.approx(np.quantile(boots, 0.975), abs=0.01)
    # One seed against four: the per-prompt differences spread more, the interval is wider.
    one = cl.pair_prompts(_rows(a[:, :1]), _rows(b[:, :1]))
    _, lo1, hi1 = cl.cluster_bootstrap_ci(one.d, 0.95, 20000, 0)
    assert one.d.std(ddof=1) > 1.3 * pr.d.std(ddof=1)
    assert (hi1 - lo1) > 1.3 * (hi - lo)


def test_one_seed_level_pairs_with_seeded_level():
    base = _rows(np.ones((5, 1)))  # level 0: seed 0 only
    shifted = _rows(np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 1]]), (0, 1, 2))
    pr = cl.pair_prompts(base, shifted)
    assert pr.counts() == {"prompts": 5, "rows_a": 5, "rows_b": 15, "only_a": 0, "only_b": 0}
    assert not pr.one_row_each
    np.testing.assert_allclose(pr.d, [2 / 3 - 1, -1, 0, 1 / 3 - 1, 2 / 3 - 1])


def test_sign_flip_p_equals_brute_force_enumeration():
    d = np.array([0.5, -0.2, 1.0, 0.3, 0.0, 0.7, -0.1, 0.4, 0.25, 0.6])
    obs = abs(d.mean())
    flips = np.array(list(itertools.product([1, -1], repeat=d.size)))
    brute = np.mean(np.abs((flips * d).mean(1)) >= obs - 1e-12)
    assert cl.sign_flip_p(d, 10000, 0) == pytest.approx(brute)
    assert cl.sign_flip_p(np.zeros(7)) == 1.0
    # Large n: close to the one-sample t-test on the same differences.
    rng = np.random.default_rng(2)
    x = rng.normal(0.15, 1, 400)
    assert cl.sign_flip_p(x, 20000, 0) == pytest.approx(sps.ttest_1samp(x, 0).pvalue, abs=0.01)


def test_mdd_has_the_stated_power_by_the_noncentral_t():
    sd, n, alpha = 0.27, 900, 0.05 / 4
    mdd = cl.min_detectable_difference(sd, n, alpha)
    df, nc = n - 1, mdd / sd * np.sqrt(n)
    tcrit = sps.t.ppf(1 - alpha / 2, df)
    power = 1 - sps.nct.cdf(tcrit, df, nc) + sps.nct.cdf(-tcrit, df, nc)
    assert power == pytest.approx(0.8, abs=1e-4)
    # Hand: the normal approximation (z_{1-a/2} + z_{0.8}) sd / sqrt(n).
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(0.8)
    assert mdd == pytest.approx(z * sd / np.sqrt(n), rel=0.005)
    assert cl.prompts_needed(sd, mdd, alpha) in (n, n + 1)
    assert cl.min_detectable_difference(0.0, 10, 0.05) == 0.0 and cl.min_detectable_difference(1.0, 1, 0.05) is None


def test_mdd_power_by_simulation():
    """A difference of the MDD is found about 80% of the time by the sign-flip test at the same alpha."""
    rng = np.random.default_rng(11)
    sd, n, alpha = 1.0, 60, 0.05
    mdd = cl.min_detectable_difference(sd, n, alpha)
    hits = [sps.ttest_1samp(rng.normal(mdd, sd, n), 0).pvalue < alpha for _ in range(2000)]
    assert np.mean(hits) == pytest.approx(0.8, abs=0.03)


def test_family_intervals_and_verdicts():
    assert cl.family_level(0.95, 5) == pytest.approx(0.99)
    assert cl.verdict_of(True, True) == "significant" and cl.verdict_of(False, False) == "not significant"
    assert cl.verdict_of(False, True) == cl.verdict_of(True, False) == "borderline" and cl.verdict_of(None, False) == "no test"
    rng = np.random.default_rng(4)
    ds = [rng.normal(mu, 1, 120) for mu in (0.0, 0.05, 0.2, 0.4, -0.3, 0.0)]
    rows = [{"p": cl.sign_flip_p(d, 4000, 0)} for d in ds]
    fam = cl.add_family_intervals(rows, ds, 0.95, 0.05, 4000, 0)
    assert fam["family_ci_level"] == pytest.approx(1 - 0.05 / 6) and fam["power"]["alpha_corrected"] == 0.05 / 6
    holm = stats.correct_pvalues([r["p"] for r in rows])["holm"]
    for r, d, h in zip(rows, ds, holm):
        assert r["p_holm"] == h
        lo, hi = np.quantile(stats.bootstrap_means(d[None], 4000, 0)[0], [0.05 / 12, 1 - 0.05 / 12])
        assert (r["family_ci_low"], r["family_ci_high"]) == pytest.approx((lo, hi))
        excludes = r["family_ci_low"] > 0 or r["family_ci_high"] < 0
        assert not (excludes and r["verdict"] == "not significant")
        assert r["mdd"] == pytest.approx(cl.min_detectable_difference(d.std(ddof=1), d.size, 0.05 / 6))
    assert rows[2]["verdict"] == rows[4]["verdict"] == "significant" and rows[0]["verdict"] == "not significant"
