"""AlpacaEval 2's length-controlled win rate, the GLMs of alpaca_eval's metrics/glm_winrate.py.

P(run preferred) = sigmoid(w_len * tanh(std_delta_len) + w_diff * instruction_difficulty + w_model), where
std_delta_len = (len(baseline) - len(run)) / std over the instructions (characters; output_1 is the baseline
upstream) and the model term is the column `not_gamed_baseline` (1 for the run's rows). length_controlled_v1
also trains on the published annotations of the two "gamed" baselines (verbose and concise prompting of the
baseline), with sample weight lambda / 2 = 0.1 each and the gamed column 0, which pulls the length weight
towards what those games reveal. The fit is L1 logistic regression on soft labels (each row twice, labels 1
and 0 weighted by p and 1 - p), C chosen by 5-fold group cross-validation on the continuous log loss
(sklearn's LogisticRegressionCV with liblinear, as upstream). The LC win rate is the mean prediction over
the run's instructions with std_delta_len = 0; its standard error is the sem of those predictions.
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Sequence

import numpy as np

# name -> (uses instruction difficulty, regularisation towards the gamed baselines: lambda or None)
GLMS = {"length_controlled_v1": (True, 0.2), "length_controlled_noreg": (True, None),
        "length_controlled_minimal": (False, None)}
N_SPLITS = 5
RANDOM_STATE = 123


def _logloss_continuous(y_true, y_pred, true_prob, true_sample_weight=None):
    """Log loss against the soft label behind each duplicated row (alpaca_eval's logloss_continuous)."""
    p = np.clip(y_pred, 1e-15, 1 - 1e-15)
    target = np.where(y_true == 1, true_prob, 1 - true_prob)
    ll = target * np.log(p) + (1 - target) * np.log(1 - p)
    if true_sample_weight is not None:
        ll = ll * true_sample_weight
    return -np.mean(ll)


def _new_sklearn() -> bool:
    import sklearn

    major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
    return (major, minor) >= (1, 8)


def fit_soft_l1_cv(X: np.ndarray, p: np.ndarray, weight: Optional[np.ndarray]) -> np.ndarray:
    """Coefficients [k] of the cross-validated L1 logistic regression on soft labels p: [n] (X: [n, k])."""
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    n = len(p)
    Xd = np.vstack([X, X])
    yd = np.r_[np.ones(n), np.zeros(n)]
    true_prob = np.r_[p, p]  # the y=0 copy holds 1 - p in upstream's frame; the scorer flips it back
    true_prob[n:] = 1 - p
    true_w = None if weight is None else np.r_[weight, weight]
    fit_w = true_prob if true_w is None else true_prob * true_w
    groups = np.r_[np.arange(n), np.arange(n)]
    penalty = {"l1_ratios": (1.0,), "use_legacy_attributes": False} if _new_sklearn() else {"penalty": "l1"}
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # liblinear's default max_iter, kept as upstream
        scorer = make_scorer(_logloss_continuous, response_method="predict_proba", greater_is_better=False)
        scorer = scorer.set_score_request(true_sample_weight=True, true_prob=True)
        model = LogisticRegressionCV(cv=GroupKFold(n_splits=N_SPLITS), scoring=scorer, random_state=RANDOM_STATE,
                                     dual=False, solver="liblinear", n_jobs=None, fit_intercept=False, **penalty)
        model.set_fit_request(sample_weight=True)
        model.fit(Xd, yd, sample_weight=fit_w, groups=groups, true_sample_weight=true_w, true_prob=true_prob)
    return np.asarray(model.coef_[0], float)


def length_controlled_winrate(preferences: Sequence[float], len_model: Sequence[int], len_baseline: Sequence[int],
                              index: Sequence[int], glm: str = "length_controlled_v1",
                              difficulty: Optional[Dict[int, float]] = None,
                              gamed: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, object]:
    """LC win rate of one run against the baseline.

    preferences: [n] run scores in [0, 1] (NaN = no preference: not trained on, still predicted);
    len_*: [n] character lengths; index: [n] instruction positions (0..804); difficulty: index -> value;
    gamed: [m] columns preference, std_delta_len, instruction_difficulty, not_gamed_baseline of df_gamed.csv.
    """
    use_diff, lam = GLMS[glm]
    if use_diff and difficulty is None:
        raise ValueError(f"{glm} needs the instruction difficulties")
    if lam and gamed is None:
        raise ValueError(f"{glm} needs the gamed baselines' annotations")
    y = np.asarray(preferences, float)
    delta = np.asarray(len_baseline, float) - np.asarray(len_model, float)
    sd = delta.std(ddof=1) if delta.size > 1 else 0.0
    std_delta = delta / sd if sd > 0 else np.zeros_like(delta)
    ones = np.ones_like(y)
    diff = np.array([difficulty[int(i)] for i in index], float) if use_diff else None
    cols = [np.tanh(std_delta)] + ([diff] if use_diff else []) + [ones]
    names = ["np.tanh(std_delta_len)"] + (["instruction_difficulty"] if use_diff else []) + \
        ["not_gamed_baseline.astype(float)"]
    X = np.stack(cols, axis=1)
    X_test = X.copy()
    X_test[:, 0] = 0.0
    weight = None
    if lam:
        not_gamed = np.asarray(gamed["not_gamed_baseline"], bool)
        g_cols = [np.tanh(np.asarray(gamed["std_delta_len"], float)),
                  np.asarray(gamed["instruction_difficulty"], float), not_gamed.astype(float)]
        X = np.vstack([np.stack(g_cols, axis=1), X])  # gamed rows first, as upstream concatenates
        y = np.r_[np.asarray(gamed["preference"], float), y]
        # divided by 2: there are two gamed baselines
        weight = np.r_[not_gamed + lam * (~not_gamed) / 2.0, ones]
    keep = ~np.isnan(y)
    coef = fit_soft_l1_cv(X[keep], y[keep], None if weight is None else weight[keep])
    pred = 1.0 / (1.0 + np.exp(-(X_test @ coef)))
    sem = float(pred.std(ddof=1) / np.sqrt(pred.size)) if pred.size > 1 else float("nan")
    return {"lc_win_rate": float(pred.mean()), "lc_standard_error": sem, "glm": glm,
            "coefs": dict(zip(names, (float(c) for c in coef)))}
