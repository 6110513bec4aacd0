"""Pure, seeded statistics for judge results: Arena-Hard win rates and Bradley-Terry (with optional style
control), AlpacaEval win rate with standard error, and rating means. AlpacaEval's length-controlled GLM
is in length_control.py.

Conventions: a "battle" score is the run's model outcome in [0, 1] (1 = model better); Arena-Hard
counts a strong verdict (A>>B) as three identical battles.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

STRONG_WEIGHT = 3
# Arena-Hard labels, scored from assistant A's side: (score for A, strong?)
LABELS: Dict[str, Tuple[float, bool]] = {
    "A>B": (1.0, False), "A>>B": (1.0, True), "A=B": (0.5, False), "A<<B": (0.0, True), "A<B": (0.0, False),
    "B>A": (0.0, False), "B>>A": (0.0, True), "B=A": (0.5, False), "B<<A": (1.0, True), "B<A": (1.0, False),
}


# the five labels arena-hard v0.1's show_result.get_battles_from_row scores; any other label drops the game
V01_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")


def label_score(label: Optional[str], model_is_a: bool,
                allowed: Optional[Sequence[str]] = None) -> Optional[Tuple[float, int]]:
    """(model's score, weight) for an Arena-Hard label, or None when the label is not a verdict."""
    if label not in LABELS or (allowed is not None and label not in allowed):
        return None
    a_score, strong = LABELS[label]
    return (a_score if model_is_a else 1.0 - a_score), (STRONG_WEIGHT if strong else 1)


def expand_battles(scores: Sequence[float], weights: Sequence[int]) -> np.ndarray:
    """[n_battles] scores with each game repeated `weight` times."""
    return np.repeat(np.asarray(scores, dtype=float), np.asarray(weights, dtype=int))


def bootstrap_mean_ci(values: Sequence[float], level: float, rounds: int, seed: int) -> Tuple[float, float]:
    """Percentile bootstrap CI of the mean; values: [n]."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(rounds, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def mean_se(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and standard error (sample std, ddof=1, over sqrt n), as AlpacaEval reports them."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")
    return float(x.mean()), se


def normal_ci(mean: float, se: float, level: float) -> Tuple[float, float]:
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2.0))
    return mean - z * se, mean + z * se


# --------------------------------------------------------------------------- logistic fits (soft labels)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def soft_logistic_loss(theta: np.ndarray, X: np.ndarray, y: np.ndarray, w: np.ndarray, l2) -> float:
    z = X @ theta
    # -(y log p + (1-y) log(1-p)) written stably
    return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) + 0.5 * np.sum(l2 * theta * theta))


def fit_soft_logistic(X: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray] = None,
                      l2=0.0, max_iter: int = 100, tol: float = 1e-10) -> np.ndarray:
    """Maximum-likelihood logistic regression without intercept on outcomes y in [0, 1].

    X: [n, k], y: [n]. Minimises sum_i w_i BCE(y_i, sigmoid(x_i.theta)) + l2/2 |theta|^2 by Newton steps
    with backtracking; l2 is a number or one penalty per coefficient ([k]). Returns theta: [k].
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    k = X.shape[1]
    theta = np.zeros(k)
    loss = soft_logistic_loss(theta, X, y, w, l2)
    l2 = np.broadcast_to(np.asarray(l2, dtype=float), (k,))
    for _ in range(max_iter):
        p = _sigmoid(X @ theta)
        grad = X.T @ (w * (p - y)) + l2 * theta
        hess = (X * (w * p * (1.0 - p))[:, None]).T @ X + np.diag(l2 + 1e-12)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while True:
            cand = theta - t * step
            new_loss = soft_logistic_loss(cand, X, y, w, l2)
            if new_loss <= loss + 1e-12 or t < 1e-8:
                break
            t *= 0.5
        theta, converged = cand, abs(loss - new_loss) < tol * (1.0 + abs(loss))
        loss = new_loss
        if converged and np.max(np.abs(t * step)) < 1e-7:
            break
    return theta


# ------------------------------------------------------------------------------- style (Arena-Hard)

_CODE_BLOCK = re.compile(r"```([^`]*)```")
_TOKEN = re.compile(r"\w+|[^\w\s]")
# tokenizer arena-hard counted answer lengths with: v0.1 add_markdown_info.py used gpt-3.5-turbo's,
# v2.0 gen_answer.py uses gpt-4o's
TIKTOKEN_ENCODING = {"v0.1": "cl100k_base", "v2.0": "o200k_base"}
_ENCODERS: Dict[str, object] = {}


def token_counter(rule: str = "v2.0"):
    """(count(text) -> int, description). tiktoken with upstream's encoding when it is installed and its
    vocabulary can be loaded; otherwise a regex count of words and punctuation marks (documented fallback:
    lengths then differ from upstream's by a roughly constant factor, which the feature scaling absorbs
    only in part)."""
    name = TIKTOKEN_ENCODING[rule]
    if name not in _ENCODERS:
        try:
            import tiktoken

            _ENCODERS[name] = tiktoken.get_encoding(name)
        except Exception:  # not installed, or offline without its cached vocabulary
            _ENCODERS[name] = None
    enc = _ENCODERS[name]
    if enc is not None:
        return (lambda t: len(enc.encode(t, disallowed_special=()))), f"tiktoken {name}"
    return (lambda t: len(_TOKEN.findall(t))), \
        "regex words+punctuation (fallback: tiktoken not installed or its vocabulary not cached)"


def _strip_code(text: str) -> str:
    # as arena-hard's remove_pattern: the inner text of each ``` block is removed wherever it occurs
    for block in _CODE_BLOCK.findall(text):
        text = text.replace(block, "")
    return text


def markdown_counts(text: str, count_tokens=None) -> Dict[str, int]:
    """Token length (of the whole answer) and markdown element counts (headers, list items, bold spans)
    with code blocks removed, as arena-hard's count_markdown_elements."""
    body = _strip_code(text)
    count_tokens = count_tokens or token_counter()[0]
    return {
        "tokens": int(count_tokens(text)),
        "headers": len(re.findall(r"^#{1,6}\s", body, re.M)),
        "lists": len(re.findall(r"^\s*\d+\.\s", body, re.M)) + len(re.findall(r"^\s*[-*+]\s", body, re.M)),
        "bold": len(re.findall(r"\*\*[^*\n]+\*\*", body)) + len(re.findall(r"__[^_\n]+__", body)),
    }


STYLE_CHOICES = ("none", "length", "markdown", "both")
MARKDOWN = ("headers", "lists", "bold")


def _raw_style(cm: List[Dict[str, int]], cb: List[Dict[str, int]], control: str, rule: str) -> np.ndarray:
    """[n, k] uncentred style differences model - baseline.

    v2.0 (show_result.py print_leaderboard_with_style_features): length (l_m - l_b) / (l_m + l_b); markdown
    densities d = count / length, (d_m - d_b) / (d_m + d_b + 1).
    v0.1 (utils_math.py construct_style_matrices): raw values, (x_m - x_b) / (x_m + x_b + 1) for all.
    """
    cols = []
    names = (["tokens"] if control in ("length", "both") else []) + \
        (list(MARKDOWN) if control in ("markdown", "both") else [])
    for name in names:
        xm = np.array([c[name] for c in cm], float)
        xb = np.array([c[name] for c in cb], float)
        if rule == "v0.1":
            cols.append((xm - xb) / (xm + xb + 1.0))
        elif name == "tokens":
            with np.errstate(divide="ignore", invalid="ignore"):
                cols.append((xm - xb) / (xm + xb))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                dm = xm / np.array([c["tokens"] for c in cm], float)
                db = xb / np.array([c["tokens"] for c in cb], float)
            cols.append((dm - db) / (dm + db + 1.0))
    return np.stack(cols, axis=1)


def style_features(model_texts: Sequence[str], baseline_texts: Sequence[str], control: str,
                   rule: str = "v2.0", count_tokens=None) -> np.ndarray:
    """[n, k] style differences model - baseline, centred and scaled to unit std over the battles, as
    arena-hard does (std with ddof=1 for v2.0's torch.std, ddof=0 for v0.1's np.std). A constant column
    (e.g. a single battle) is set to zero."""
    if control == "none":
        return np.zeros((len(model_texts), 0))
    count_tokens = count_tokens or token_counter(rule)[0]
    memo: Dict[str, Dict[str, int]] = {}

    def counts(t: str) -> Dict[str, int]:
        if t not in memo:
            memo[t] = markdown_counts(t, count_tokens)
        return memo[t]

    F = _raw_style([counts(t) for t in model_texts], [counts(t) for t in baseline_texts], control, rule)
    F = np.nan_to_num(F, nan=0.0, posinf=0.0, neginf=0.0)
    ddof = 0 if rule == "v0.1" else 1
    sd = F.std(axis=0, ddof=ddof) if len(F) > ddof else np.zeros(F.shape[1])
    return np.divide(F - F.mean(axis=0), sd, out=np.zeros_like(F), where=sd > 0)


def bootstrap_indices(n: int, rounds: int, seed: int) -> np.ndarray:
    """[rounds, n] battle indices drawn with replacement (one resample per row)."""
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n))


# L2 penalty per coefficient of arena-hard v0.1's style-controlled fit_bt (sklearn LogisticRegression, C=1, on battles
# duplicated, model columns +-ln 10): halved per battle, the model term costs beta^2 / (8 ln^2 10) and
# each style coefficient gamma^2 / 4. v2.0's fit is unpenalised.
V01_PENALTY = (1.0 / (4.0 * np.log(10.0) ** 2), 0.5)


def bradley_terry(outcomes: Sequence[float], features: Optional[np.ndarray], level: float, rounds: int,
                  seed: int, rule: str = "v2.0") -> Dict[str, object]:
    """Bradley-Terry of the run's model against the baseline, bootstrapped over battles.

    outcomes: [n] model scores per battle; features: [n, k] style features or None.
    P(model beats baseline) = sigmoid(beta + features.gamma); the win rate is sigmoid(beta), i.e. at
    average style. v2.0 reports the median of the bootstrap fits with the (1-level)/2 quantiles; v0.1
    reports the point fit with the same quantiles of the bootstrap (and penalises as its fit_bt).
    """
    y = np.asarray(outcomes, float)
    F = np.zeros((y.size, 0)) if features is None else np.asarray(features, float)
    X = np.concatenate([np.ones((y.size, 1)), F], axis=1)
    if y.size == 0:
        return {"win_rate": None, "ci": [None, None], "coef": None, "style_coefs": []}
    if rule == "v0.1" and F.shape[1]:  # v0.1 without style is compute_mle_elo, unpenalised
        l2 = np.array([V01_PENALTY[0]] + [V01_PENALTY[1]] * F.shape[1])
    else:
        l2 = np.full(X.shape[1], 1e-6)  # keeps the fit finite when one side wins every battle
    fits = np.stack([fit_soft_logistic(X[idx], y[idx], l2=l2) for idx in bootstrap_indices(y.size, rounds, seed)])
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(_sigmoid(fits[:, 0]), [alpha, 1.0 - alpha])
    if rule == "v0.1":
        theta = fit_soft_logistic(X, y, l2=l2)
        method = "point fit; bootstrap percentiles"
    else:
        theta = np.median(fits, axis=0)
        method = "median of bootstrap fits; bootstrap quantiles"
    return {"win_rate": float(_sigmoid(theta[:1])[0]), "ci": [float(lo), float(hi)], "coef": float(theta[0]),
            "style_coefs": [float(v) for v in theta[1:]], "estimate": method}
