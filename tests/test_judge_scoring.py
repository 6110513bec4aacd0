"""Judge statistics against independent references (statsmodels, sklearn, scipy, hand-computed cases)."""

import math

import numpy as np
import pytest

from mdlm_bench.judge import scoring


def test_label_mapping_counts_strong_verdicts_three_times():
    assert scoring.label_score("A>>B", model_is_a=True) == (1.0, 3)
    assert scoring.label_score("A>>B", model_is_a=False) == (0.0, 3)
    assert scoring.label_score("B>A", model_is_a=False) == (1.0, 1)
    assert scoring.label_score("A=B", model_is_a=True) == (0.5, 1)
    assert scoring.label_score("B<<A", model_is_a=True) == (1.0, 3)
    assert scoring.label_score("A>B>C", model_is_a=True) is None
    assert scoring.label_score(None, model_is_a=True) is None


def test_expand_battles_hand_case():
    assert scoring.expand_battles([1.0, 0.5, 0.0], [3, 1, 1]).tolist() == [1.0, 1.0, 1.0, 0.5, 0.0]


def test_bootstrap_ci_matches_a_brute_force_loop():
    x = np.random.default_rng(3).random(50)
    lo, hi = scoring.bootstrap_mean_ci(x, 0.9, 400, seed=7)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 50, size=(400, 50))
    means = [float(np.mean([x[j] for j in row])) for row in idx]
    assert lo == pytest.approx(np.quantile(means, 0.05))
    assert hi == pytest.approx(np.quantile(means, 0.95))
    assert scoring.bootstrap_mean_ci([0.7] * 10, 0.95, 100, 0) == pytest.approx((0.7, 0.7))


def test_mean_se_matches_scipy_sem_and_normal_ci():
    from scipy import stats

    x = np.random.default_rng(0).random(40)
    m, se = scoring.mean_se(x)
    assert m == pytest.approx(x.mean()) and se == pytest.approx(stats.sem(x))
    lo, hi = scoring.normal_ci(m, se, 0.95)
    assert (hi - m) == pytest.approx(1.959963985 * se)


def test_soft_logistic_matches_statsmodels_glm_with_fractional_outcomes():
    import statsmodels.api as sm

    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(200), rng.normal(size=200), rng.normal(size=200)])
    y = np.clip(1 / (1 + np.exp(-(0.3 + X[:, 1] - 0.5 * X[:, 2]))) + rng.normal(0, 0.1, 200), 0, 1)
    ours = scoring.fit_soft_logistic(X, y)
    ref = sm.GLM(y, X, family=sm.families.Binomial()).fit().params
    assert np.allclose(ours, ref, atol=1e-6)


def test_penalised_soft_logistic_matches_sklearn_duplication_trick():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(size=120), np.ones(120)])
    y = rng.random(120)
    C = 5.0
    ours = scoring.fit_soft_logistic(X, y, l2=1.0 / C)
    Xd = np.vstack([X, X])
    yd = np.r_[np.ones(120), np.zeros(120)]
    wd = np.r_[y, 1 - y]
    sk = LogisticRegression(C=C, fit_intercept=False, tol=1e-12, max_iter=10000).fit(Xd, yd, sample_weight=wd)
    assert np.allclose(ours, sk.coef_[0], atol=1e-5)


def test_bradley_terry_without_style_is_the_win_rate():
    y = np.array([1.0] * 6 + [0.5] * 2 + [0.0] * 2)  # mean 0.7
    v01 = scoring.bradley_terry(y, None, 0.95, 50, seed=0, rule="v0.1")  # point fit (compute_mle_elo)
    assert v01["win_rate"] == pytest.approx(0.7, abs=1e-6)
    assert v01["coef"] == pytest.approx(math.log(0.7 / 0.3), abs=1e-5)
    assert v01["ci"][0] <= 0.7 <= v01["ci"][1]
    # v2.0: median over the bootstrap fits; without style each fit is the resample's mean
    v2 = scoring.bradley_terry(y, None, 0.9, 50, seed=0)
    means = y[scoring.bootstrap_indices(y.size, 50, 0)].mean(axis=1)
    assert v2["win_rate"] == pytest.approx(np.median(means), abs=1e-6)
    assert v2["ci"] == pytest.approx(list(np.quantile(means, [0.05, 0.95])), abs=1e-6)


def test_bradley_terry_with_style_matches_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    F = rng.normal(size=(300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-(0.4 + 1.2 * F[:, 0])))).astype(float)
    bt = scoring.bradley_terry(y, F, 0.95, 5, seed=0)
    X = np.column_stack([np.ones(300), F])
    fits = np.array([sm.GLM(y[i], X[i], family=sm.families.Binomial()).fit().params
                     for i in scoring.bootstrap_indices(300, 5, 0)])
    med = np.median(fits, axis=0)
    assert bt["coef"] == pytest.approx(med[0], abs=1e-4)
    assert bt["style_coefs"] == pytest.approx(list(med[1:]), abs=1e-4)
    assert bt["win_rate"] == pytest.approx(1 / (1 + math.exp(-med[0])), abs=1e-5)


def test_style_features_hand_case():
    m = ["# Title\n\n- a\n- b\n\n**bold** text here", "plain words only here", "one two"]
    b = ["short", "plain words only here too ok", "one two three four"]
    count = lambda t: len(t.split())  # noqa: E731
    counts = scoring.markdown_counts(m[0], count)
    assert counts["headers"] == 1 and counts["lists"] == 2 and counts["bold"] == 1
    assert scoring.markdown_counts("```\n# not a header\n```", count)["headers"] == 0
    F = scoring.style_features(m, b, "length", count_tokens=count)
    lm = np.array([count(x) for x in m], float)
    lb = np.array([count(x) for x in b], float)
    raw = (lm - lb) / (lm + lb)
    assert np.allclose(F[:, 0], (raw - raw.mean()) / raw.std(ddof=1))
    assert scoring.style_features(m, b, "both", count_tokens=count).shape == (3, 4)
    assert scoring.style_features(m, b, "none").shape == (3, 0)
