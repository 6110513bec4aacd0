"""Judged numbers against upstream's own rules, transcribed here from the upstream source (named per test).

arena-hard-auto v0.1 era: lmarena/arena-hard-auto@0489bf384abd010906014dec7b903f7c438eabba (show_result.py,
utils_math.py, gen_judgment.py); v2.0: lmarena/arena-hard-auto@e1032d92577025eb521885620c82440edd2e31a4
(show_result.py, utils/math_utils.py). alpaca_eval: tatsu-lab/alpaca_eval@cd543a149df89434d8a54582c0151c0b945c3d20.
FastChat: lm-sys/FastChat@0e6d3e4beaab66f4d3f93db72541a4abab8af28d (fastchat/llm_judge/show_result.py).
"""

import math
import random

import numpy as np
import pytest

from mdlm_bench.judge import scoring
from mdlm_bench.judge.answers import Item
from mdlm_bench.judge.protocols.arena_hard import summarize_pairwise

# ----------------------------------------------------------------------------------------- helpers


def _items(n, category=None, answers=None, baselines=None):
    return [Item("t", f"u{i}", 0, [f"q{i}"], [answers[i] if answers else f"a{i}"],
                 [baselines[i] if baselines else f"b{i}"], category if category is not None else None)
            for i in range(n)]


def _row(i, game, score, weight=1, status="ok"):
    return {"task": "t", "uid": f"u{i}", "seed": 0, "game": game, "status": status,
            "score": score, "weight": weight}


# upstream labels per game from the judge's side (game 0: baseline is A; game 1: model is A)
V01_MODEL_SCORE = {0: {"A=B": (0.5, 1), "A>B": (0.0, 1), "A>>B": (0.0, 3), "B>A": (1.0, 1), "B>>A": (1.0, 3)},
                   1: {"A=B": (0.5, 1), "A>B": (1.0, 1), "A>>B": (1.0, 3), "B>A": (0.0, 1), "B>>A": (0.0, 3)}}


def _v01_battles(labels):
    """show_result.get_battles_from_row (0489bf3): each game on its own; an unknown or missing label has
    weight 0, so only that game is dropped. Returns the model's outcome per battle."""
    out = []
    for g0, g1 in labels:
        for game, lab in ((0, g0), (1, g1)):
            if lab in V01_MODEL_SCORE[game]:
                s, w = V01_MODEL_SCORE[game][lab]
                out += [s] * w
    return np.array(out)


# ---------------------------------------------------------------------------------- Arena-Hard v0.1


def test_v01_failed_game_drops_only_that_game_and_ci_is_2_5_to_97_5():
    labels = [("B>>A", "A>B"), (None, "A>>B"), ("A>B", None), ("A=B", "B>A"), ("B>A", "A=B"), (None, None)]
    rows = []
    for i, (g0, g1) in enumerate(labels):
        for game, lab in ((0, g0), (1, g1)):
            if lab is None:
                rows.append(_row(i, game, None, status="failed" if i == 5 else "ok"))
            else:
                s, w = V01_MODEL_SCORE[game][lab]
                rows.append(_row(i, game, s, w))
    out = summarize_pairwise(_items(6), rows, 0.95, 200, 20, "none", 0, drop="game", rule="v0.1")
    battles = _v01_battles(labels)
    assert out["n_battles"] == battles.size == 3 + 1 + 3 + 1 + 1 + 1 + 1 + 1
    assert out["score"] == pytest.approx(battles.mean(), abs=1e-12)
    # compute_mle_elo on one model vs the baseline: the win rate is the battles' mean (ties half)
    assert out["bt"]["win_rate"] == pytest.approx(battles.mean(), abs=1e-6)
    boots = [battles[idx].mean() for idx in scoring.bootstrap_indices(battles.size, 20, 0)]
    assert out["bt"]["ci"] == pytest.approx([np.percentile(boots, 2.5), np.percentile(boots, 97.5)], abs=1e-6)
    assert out["n_items"] == 5  # the prompt with both games failed is the only one gone
    # v2.0's load_judgments drops a prompt when either game is null
    v2 = summarize_pairwise(_items(6), rows, 0.9, 200, 20, "none", 0, drop="prompt", rule="v2.0")
    assert v2["n_items"] == 3 and v2["n_battles"] == 3 + 1 + 1 + 1 + 1 + 1


# ------------------------------------------------------------------------------------ style control


def _texts(rng, n):
    out = []
    for _ in range(n):
        words = " ".join("w%d" % k for k in range(int(rng.integers(3, 60))))
        md = "".join(["# Head\n"] * int(rng.integers(0, 3)) + ["- item\n"] * int(rng.integers(0, 5)) +
                     ["**bold** x\n"] * int(rng.integers(0, 3)))
        out.append(md + words + ("\n```\n# in code\n- not a list\n```\n" if rng.random() < 0.3 else ""))
    return out


def _count(text):
    return len(text.split())


def _upstream_counts(text):
    """utils/add_markdown_info.py count_markdown_elements after remove_pattern (e1032d9), token length as _count."""
    import re

    body = text
    for block in re.compile("```([^`]*)```").findall(text):
        body = body.replace(block, "")
    return [_count(text),
            sum(len(re.findall(r"^#{%d}\s" % k, body, re.MULTILINE)) for k in range(1, 7)),
            len(re.findall(r"^\s*\d+\.\s", body, re.MULTILINE)) + len(re.findall(r"^\s*[-*+]\s", body, re.MULTILINE)),
            len(re.findall(r"\*\*[^*\n]+\*\*", body)) + len(re.findall(r"__[^_\n]+__", body))]


def _battle_set(seed=7, n_prompts=60):
    rng = np.random.default_rng(seed)
    model, base = _texts(rng, n_prompts), _texts(rng, n_prompts)
    y, m, b = [], [], []
    for i in range(n_prompts):
        edge = 0.3 + 0.02 * (len(model[i]) - len(base[i])) / 10
        for _ in range(2):
            u = rng.random()
            s = 1.0 if u < 1 / (1 + math.exp(-edge)) - 0.1 else (0.5 if u < 1 / (1 + math.exp(-edge)) + 0.1 else 0.0)
            w = 3 if rng.random() < 0.3 and s != 0.5 else 1
            y += [s] * w
            m += [model[i]] * w
            b += [base[i]] * w
    return np.array(y), m, b


def test_style_control_v2_equals_upstream_print_leaderboard_with_style_features():
    """show_result.py print_leaderboard_with_style_features + utils/math_utils.py (e1032d9): length
    (l_m - l_b)/(l_m + l_b), markdown densities count/length as (d_m - d_b)/(d_m + d_b + 1), centred and
    divided by torch.std (unbiased); BT with one-hot (+1 model, -1 baseline) columns, unpenalised, fitted per
    bootstrap resample; the reported win rate is the median over resamples of exp(c_m)/(exp(c_m)+exp(c_b))."""
    from scipy.optimize import minimize

    y, m, b = _battle_set()
    rounds = 15
    mf = np.array([_upstream_counts(t) for t in m], float)
    bf = np.array([_upstream_counts(t) for t in b], float)
    final = np.zeros_like(mf)
    final[:, 0] = (mf[:, 0] - bf[:, 0]) / (mf[:, 0] + bf[:, 0])
    md, bd = mf[:, 1:] / mf[:, :1], bf[:, 1:] / bf[:, :1]
    final[:, 1:] = (md - bd) / (md + bd + 1)
    norm = (final - final.mean(axis=0)) / final.std(axis=0, ddof=1)
    onehot = np.column_stack([-np.ones(len(y)), np.ones(len(y))])  # sorted(["base", "model"])
    X = np.concatenate([onehot, norm], axis=1)

    def fit(idx):
        Xi, yi = X[idx], y[idx]

        def f(c):
            z = Xi @ c
            p = 1 / (1 + np.exp(-z))
            return -(yi * np.log(p) + (1 - yi) * np.log(1 - p)).sum(), Xi.T @ (p - yi)
        c = minimize(f, np.full(X.shape[1], 0.5), jac=True, method="L-BFGS-B",
                     options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000}).x
        return math.exp(c[1]) / (math.exp(c[1]) + math.exp(c[0])), c[2:]

    fits = [fit(idx) for idx in scoring.bootstrap_indices(len(y), rounds, 3)]
    rates = np.array([f[0] for f in fits])
    F = scoring.style_features(m, b, "both", "v2.0", _count)
    assert np.allclose(F, norm, atol=1e-12)
    bt = scoring.bradley_terry(y, F, 0.9, rounds, 3, "v2.0")
    assert bt["win_rate"] == pytest.approx(np.quantile(rates, 0.5), abs=1e-6)
    assert bt["ci"] == pytest.approx(list(np.quantile(rates, [0.05, 0.95])), abs=1e-6)
    assert bt["style_coefs"] == pytest.approx(list(np.median([f[1] for f in fits], axis=0)), abs=1e-5)


def test_style_control_v01_equals_upstream_construct_style_matrices_and_fit_bt():
    """utils_math.py construct_style_matrices + fit_bt (0489bf3): baseline is model_a; (a - b)/(a + b + 1) on
    raw values; centred, divided by np.std (ddof 0); battles duplicated, ties as one win + one loss; model
    columns +-ln 10; sklearn LogisticRegression(fit_intercept=False) (L2, C=1). The score is the point fit,
    turned into a win rate by predict_win_rate's Elo formula."""
    from sklearn.linear_model import LogisticRegression

    y, m, b = _battle_set(seed=11)
    n = len(y)
    va = np.array([_upstream_counts(t) for t in b], float).T  # [4, n] baseline = a
    vb = np.array([_upstream_counts(t) for t in m], float).T
    diff = (va - vb) / (va + vb + 1)
    style = ((diff - diff.mean(axis=1, keepdims=True)) / diff.std(axis=1, keepdims=True)).T
    ln10 = math.log(10)
    X1 = np.column_stack([np.full(n, ln10), np.full(n, -ln10), style])  # [baseline, model, style]
    X = np.vstack([X1, X1])
    Y = np.zeros(2 * n)
    Y[:n][y == 0.0] = 1.0  # baseline (model_a) wins
    Y[n:][y == 0.0] = 1.0
    Y[:n][y == 0.5] = 1.0  # first copy of a tie counts as an A win
    lr = LogisticRegression(fit_intercept=False, tol=1e-12, max_iter=100000).fit(X, Y)
    elo = 400 * lr.coef_[0][:2] + 1000
    expected = 1 / (1 + 10 ** ((elo[0] - elo[1]) / 400))
    F = scoring.style_features(m, b, "both", "v0.1", _count)
    bt = scoring.bradley_terry(y, F, 0.95, 5, 0, "v0.1")
    assert bt["win_rate"] == pytest.approx(expected, abs=1e-6)
    # both sides flip (upstream: features a - b and outcome "a wins"), so the coefficients agree as they are
    assert bt["style_coefs"] == pytest.approx(list(lr.coef_[0][2:]), abs=1e-5)


def test_token_counter_fallback_is_documented():
    count, name = scoring.token_counter("v2.0")
    assert count("two words!") >= 2
    assert name.startswith("tiktoken o200k_base") or "fallback" in name


# ------------------------------------------------------------------------------------- AlpacaEval 2


def _upstream_random_seeded_choice(seed, choices):
    """alpaca_eval utils.random_seeded_choice."""
    return random.Random(seed).choices(choices, k=1)[0]


def test_alpaca_order_is_upstreams_random_switch():
    from mdlm_bench.judge.protocols.alpaca_eval import is_switched

    # processors.RandomSwitchTwoColumnsProcessor docstring: seed columns output_1, output_2, seed 123
    assert _upstream_random_seeded_choice("is_switch_output_1_output_2" + "10" + "4" + "123", [False, True]) is True
    assert _upstream_random_seeded_choice("is_switch_output_1_output_2" + "5" + "7" + "123", [False, True]) is False
    # PairwiseAnnotator: column "is_switched_outputs", seeded on the instruction, annotator seed 0
    instructions = [f"Instruction number {i}: say something." for i in range(200)] + ["What is 2+2?", "", "été ✓"]
    for ins in instructions:
        assert is_switched(ins) == _upstream_random_seeded_choice("is_switched_outputs" + ins + "0", [False, True])
    assert 60 < sum(map(is_switched, instructions)) < 140


def _alpaca(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_judge_protocols import DATA, _proto, make_bench

    if not DATA.is_dir():
        pytest.skip(f"published benchmark files not found at {DATA}")
    return _proto("alpaca-eval", make_bench(tmp_path))


def _alpaca_item(instr, answer, baseline, uid="u1"):
    return Item("alpaca-eval", uid, 0, [instr], [answer], [baseline], None)


def test_alpaca_identical_outputs_send_nothing_and_score_1_5(tmp_path):
    p = _alpaca(tmp_path)
    same = _alpaca_item("Say hi", "Hello!", "Hello!", "u1")
    diff = _alpaca_item("Say bye", "Bye.", "Goodbye!", "u2")
    assert p.games(same) == []  # pairwise_evaluator.py sets preference 1.5 for output_1 == output_2
    (g,) = p.games(diff)
    rows = [{"task": "alpaca-eval", "uid": "u2", "seed": 0, "game": 0, "status": "ok", "score": 0.8,
             "info": {"mode": "logprob"}}]
    s = p.summarize([same, diff], rows)
    assert [i["score"] for i in s["items"]] == [0.5, 0.8]  # preference 1.5 -> 0.5 on the [0, 1] scale
    assert s["identical_outputs"] == 1 and s["score"] == pytest.approx(0.65)


def test_alpaca_logprob_parser_exact_tokens_and_nan(tmp_path):
    """completion_parsers.logprob_parser: tokens matched exactly; none of them present -> NaN (dropped)."""
    p = _alpaca(tmp_path)
    instr = next(i for i in ("a", "b", "c", "d", "e") if not is_switched_(i))
    (g,) = p.games(_alpaca_item(instr, "run out", "base out"))
    assert g.meta["model_token"] == "M"

    def upstream(top, numerator="m", denominators=("m", "M")):
        lp = {t: v for t, v in top if t in list(denominators) + [numerator]}
        if not lp:
            return float("nan")
        den = np.logaddexp.reduce([lp.get(t, -np.inf) for t in denominators])
        return 2 - math.exp(lp.get(numerator, -np.inf) - den)  # preference in [1, 2], 2 = output_2 (run) wins

    top = [[" m", -0.05], ["M", -1.0], ["m ", -0.2], ["The", -4.0]]
    got = p.parse(g, "M", top)
    assert got.score == pytest.approx(upstream(top) - 1) and got.score == pytest.approx(1.0)  # ' m' is not 'm'
    top = [["m", -0.3], ["M", -1.4]]
    assert p.parse(g, "m", top).score == pytest.approx(upstream(top) - 1)
    nan = p.parse(g, "The", [["The", -0.1], [" M", -2.0]])
    assert math.isnan(upstream([["The", -0.1], [" M", -2.0]])) and nan.score is None and nan.info["nan"]
    rows = [{"task": "alpaca-eval", "uid": "u1", "seed": 0, "game": 0, "status": "ok", "score": None,
             "info": nan.info}, {"task": "alpaca-eval", "uid": "u2", "seed": 0, "game": 0, "status": "ok",
                                 "score": 0.25, "info": {"mode": "logprob"}}]
    s = p.summarize([_alpaca_item(instr, "x", "y", "u1"), _alpaca_item(instr, "x2", "y2", "u2")], rows)
    assert s["nan_preferences"] == 1 and s["n_items"] == 1 and s["score"] == 0.25


def is_switched_(instruction):
    from mdlm_bench.judge.protocols.alpaca_eval import is_switched

    return is_switched(instruction)


# ------------------------------------------------------------------------------------------ MT-Bench


def test_mt_bench_failed_turn_drops_only_that_turn(tmp_path):
    """fastchat/llm_judge/show_result.py display_result_single: rows with score -1 removed, then per-turn
    means and the average over every remaining turn judgment."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_judge_protocols import DATA, _proto, make_bench

    if not DATA.is_dir():
        pytest.skip(f"published benchmark files not found at {DATA}")
    p = _proto("mt-bench", make_bench(tmp_path))
    ratings = [(8, 6), (7, None), (None, 3), (10, 9), (None, None)]
    items = [Item("mt-bench", f"u{i}", 0, ["q1", "q2"], ["a1", "a2"], None, "writing") for i in range(5)]
    rows = []
    for i, pair in enumerate(ratings):
        for t, r in enumerate(pair):
            rows.append({"task": "mt-bench", "uid": f"u{i}", "seed": 0, "game": t, "status": "ok",
                         "score": None if r is None else float(r)})
    s = p.summarize(items, rows)
    judged = [(t + 1, r) for pair in ratings for t, r in enumerate(pair) if r is not None]  # score != -1
    assert s["score"] == pytest.approx(np.mean([r for _, r in judged]))
    assert s["turns"] == {"1": pytest.approx(np.mean([r for t, r in judged if t == 1])),
                          "2": pytest.approx(np.mean([r for t, r in judged if t == 2]))}
    assert s["n_items"] == 4


# ------------------------------------------------------------------------- AlpacaEval length control


def _upstream_lc(df_annotations, df_gamed, glm_name):
    """metrics/glm_winrate.py get_length_controlled_winrate -> _get_featurized_data ->
    fit_LogisticRegressionCV (alpaca_eval@cd543a1), with patsy's design matrix written out by hand."""
    import warnings

    import pandas as pd
    import sklearn
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    use_diff, lam = {"length_controlled_v1": (True, 0.2), "length_controlled_noreg": (True, None),
                     "length_controlled_minimal": (False, None)}[glm_name]
    df_gamed = df_gamed.drop(columns=["model"])
    difficulty = df_gamed.drop_duplicates("index")["instruction_difficulty"]
    df = df_annotations.reset_index()
    delta = df["output_1"].str.len() - df["output_2"].str.len()
    df = df[["preference", "index"]].copy()
    df["std_delta_len"] = delta / delta.std()
    df["preference"] = df["preference"].astype(float).replace({0.0: 1.5}) - 1
    df["instruction_difficulty"] = df["index"].transform(lambda g: difficulty[g])
    df["not_gamed_baseline"] = True
    df_test = df[["instruction_difficulty", "not_gamed_baseline"]].copy()
    df_test["std_delta_len"] = 0

    def design(d):
        cols = {"np.tanh(std_delta_len)": np.tanh(d["std_delta_len"].astype(float))}
        if use_diff:
            cols["instruction_difficulty"] = d["instruction_difficulty"].astype(float)
        cols["not_gamed_baseline.astype(float)"] = d["not_gamed_baseline"].astype(float)
        return pd.DataFrame(cols).reset_index(drop=True)

    if lam:
        train = pd.concat([df_gamed, df], axis=0)
        weight = train["not_gamed_baseline"].astype(float) + (lam * (~train["not_gamed_baseline"])).astype(float) / 2
    else:
        train, weight = df, None
    data = design(train)
    data["preference"] = train["preference"].to_numpy()
    keep = data["preference"].notna().to_numpy()
    data = data[keep]
    if weight is not None:
        weight = weight[keep]

    def logloss_continuous(y_true, y_pred, true_prob, true_sample_weight=None):
        y_true = np.where(y_true == 1, true_prob, 1 - true_prob)
        y_pred = np.clip(y_pred, 1e-15, 1 - 1e-15)
        ll = y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)
        if true_sample_weight is not None:
            ll = ll * true_sample_weight
        return -np.mean(ll)

    data = data.reset_index(drop=True).reset_index(drop=False, names=["group"])
    d1, d0 = data.copy(), data.copy()
    d1["y"] = 1
    d0["preference"] = 1 - d0["preference"]
    d0["y"] = 0
    dup = pd.concat([d1, d0], axis=0).reset_index(drop=True)
    true_prob = dup["preference"]
    if weight is None:
        true_w, fit_w = None, true_prob
    else:
        true_w = np.concatenate([weight, weight], axis=0)
        fit_w = true_prob * true_w
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scorer = make_scorer(logloss_continuous, response_method="predict_proba",
                             greater_is_better=False).set_score_request(true_sample_weight=True, true_prob=True)
        model = LogisticRegressionCV(cv=GroupKFold(n_splits=5), scoring=scorer, random_state=123, dual=False,
                                     penalty="l1", solver="liblinear", n_jobs=None, fit_intercept=False)
        model.set_fit_request(sample_weight=True)
        model.fit(X=dup.drop(columns=["preference", "y", "group"]), y=dup["y"], sample_weight=fit_w,
                  groups=dup["group"], true_sample_weight=true_w, true_prob=true_prob)
    pred = model.predict_proba(design(df_test))[:, 1]
    return pred.mean(), pd.Series(pred).sem()


def _lc_world(tmp_path, n=60, seed=0):
    """Small files in upstream's formats: annotations (preference in [1, 2], output_1 = baseline) and df_gamed."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    diff = rng.normal(size=n)
    len_b = rng.integers(50, 600, n)
    len_m = rng.integers(20, 1400, n)
    edge = 0.3 - 0.8 * diff + 1.2 * np.tanh((len_m - len_b) / 400)
    pref = 1 + np.clip(1 / (1 + np.exp(-edge)) + rng.normal(0, 0.1, n), 0, 1)
    pref[[3, n - 2]] = np.nan  # no preference: dropped from the fit, still predicted
    ann = pd.DataFrame({"instruction": [f"i{i}" for i in range(n)], "output_1": ["b" * k for k in len_b],
                        "output_2": ["m" * k for k in len_m], "preference": pref})
    gamed = []
    for name, scale in (("base_verbose", 2.5), ("base_concise", 0.3)):
        lg = (len_b * scale).astype(int)
        d = (len_b - lg).astype(float)
        e = -0.8 * diff + 1.2 * np.tanh(-d / 400)
        gamed.append(pd.DataFrame({"model": name, "index": np.arange(n),
                                   "preference": np.clip(1 / (1 + np.exp(-e)) + rng.normal(0, 0.1, n), 0, 1),
                                   "std_delta_len": d / d.std(), "instruction_difficulty": diff,
                                   "not_gamed_baseline": False}))
    df_gamed = pd.concat(gamed, ignore_index=True)
    folder = tmp_path / "lc"
    folder.mkdir()
    df_gamed.to_csv(folder / "df_gamed.csv", index=False)
    pd.Series(diff, name="instruction_difficulty").rename_axis("index").to_csv(folder / "instruction_difficulty.csv")
    return ann, df_gamed, folder


@pytest.mark.parametrize("glm", ["length_controlled_v1", "length_controlled_noreg", "length_controlled_minimal"])
def test_length_controlled_winrate_equals_upstream_glm(tmp_path, glm):
    from mdlm_bench.judge.lc_data import find_lc_data
    from mdlm_bench.judge.length_control import length_controlled_winrate

    ann, df_gamed, folder = _lc_world(tmp_path)
    data = find_lc_data(None, str(folder))
    assert data.glm == "length_controlled_v1" and data.sources[0].endswith("df_gamed.csv")
    expected, expected_se = _upstream_lc(ann, df_gamed, glm)
    got = length_controlled_winrate((ann["preference"] - 1).to_numpy(), ann["output_2"].str.len(),
                                    ann["output_1"].str.len(), range(len(ann)), glm, data.difficulty, data.gamed)
    assert got["lc_win_rate"] == pytest.approx(expected, abs=1e-6)
    assert got["lc_standard_error"] == pytest.approx(expected_se, abs=1e-6)
    assert abs(got["lc_win_rate"] - np.nanmean(ann["preference"] - 1)) > 1e-3  # length control does something


def test_lc_data_is_found_where_documented(tmp_path, monkeypatch):
    from mdlm_bench.errors import UserError
    from mdlm_bench.judge.lc_data import find_lc_data

    _, df_gamed, folder = _lc_world(tmp_path, n=12)
    only = find_lc_data(None, str(folder / "instruction_difficulty.csv"))  # the other file sits beside it
    assert only.glm == "length_controlled_v1"
    bench = tmp_path / "bench" / "alpaca-eval"
    bench.mkdir(parents=True)
    (bench / "instruction_difficulty.csv").write_text((folder / "instruction_difficulty.csv").read_text())
    got = find_lc_data(tmp_path / "bench", None)
    assert got.glm == "length_controlled_noreg" and got.difficulty[3] == pytest.approx(df_gamed["instruction_difficulty"][3])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert find_lc_data(tmp_path / "nothing", None).glm == "length_controlled_minimal"
    with pytest.raises(UserError, match="does not exist"):
        find_lc_data(None, str(tmp_path / "missing.csv"))
