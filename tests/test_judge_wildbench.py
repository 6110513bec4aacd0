"""WildBench v2 rules (WB-Score, WB-Reward), each checked against a hand-computed case transcribed from
allenai/WildBench@d6b8dcaf377d173d031980f97c16e1a82618c03d (files named per test)."""

import json

import pytest

from mdlm_bench.judge import wildbench_rules as wb


# --- src/eval.py: parse_result / extract_values_from_json -------------------------------------------

def test_score_parsing_and_its_fallbacks():
    # valid JSON (string or number score), surrounded by whitespace
    assert wb.read_score('  {"strengths": "x", "weaknesses": "y", "score": "7"}\n') == 7.0
    assert wb.read_score('{"score": 8.5}') == 8.5
    # not JSON: the quoted value is found by the first regex
    assert wb.read_score('Here: ```json\n{"strengths": "good", "score": "6"}\n```') == 6.0
    # broken quotes: the second (DOTALL) pattern takes the text up to the next quote
    assert wb.extract_values('{"score": "9\n"  trailing', ["score"]) == {"score": "9\n"}
    # an unquoted number outside valid JSON is not read (allow_no_quotes is off in parse_result)
    assert wb.read_score('{"score": 8, oops}') is None
    # no score / a value that is not a number / a JSON list
    assert wb.read_score('{"strengths": "x"}') is None
    assert wb.read_score('{"score": "N/A"}') is None
    assert wb.read_score('[1, 2]') is None
    assert wb.read_choice('{"reason A=B": "..", "choice": "A+"}') == "A+"
    assert wb.read_choice('garbage "choice": "B++" more') == "B++"
    assert wb.read_choice('{"choice": "A>B"}') is None  # batch_results_format.py: unrecognised -> dropped


# --- src/eval.py: prompt composition -----------------------------------------------------------------

def test_prompt_composition_history_shorten_checklist():
    tpl = "H<{$history}>Q<{$user_query}>R<{$model_output}>C<{$checklist}>"
    hist = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    got = wb.score_prompt(tpl, hist, "plan", "ok", ["a?", "b?"])
    assert got == "H<USER: hi\n\nASSISTANT: hello\n\n>Q<plan>R<ok>C<- a?\n- b?\n>"
    long = " ".join(["w"] * 1001)
    assert wb.shorten(long) == " ".join(["w"] * 1000) + "... (truncated)"
    assert wb.shorten(" ".join(["w"] * 1000)) == " ".join(["w"] * 1000)
    ptpl = "{$history}|{$user_query}|{$candidate_A}|{$candidate_B}|{$checklist}"
    assert wb.pairwise_prompt(ptpl, [], "q", "  ", "b", []) == "|q|[This model response is empty.]|b|"


def test_empty_answer_rules():
    # eval.py placeholder_generation: score mode writes score "1"; pairwise writes the choice, no request
    assert json.loads(wb.empty_score_reply())["score"] == "1" and wb.read_score(wb.empty_score_reply()) == 1.0
    assert wb.read_choice(wb.empty_pairwise_reply(" ", "\n")) == "A=B"
    assert wb.read_choice(wb.empty_pairwise_reply("", "b")) == "B++"
    assert wb.read_choice(wb.empty_pairwise_reply("a", "")) == "A++"
    assert wb.empty_pairwise_reply("a", "b") is None
    # _create_tables.py: truncated or empty answers leave the counts (and stay in the total)
    assert wb.excluded(wb.EMPTY) and wb.excluded("x... (truncated)") and not wb.excluded("fine")
    assert wb.reward_table([None, "win"], [["Creative Tasks"]] * 2)["reward"] == pytest.approx(0.25)


# --- leaderboard/data_dir/_create_tables.py ---------------------------------------------------------

def test_task_groups_and_weights():
    assert wb.groups(["Coding & Debugging", "Reasoning", "Planning", "Others"]) == \
        ["Coding & Debugging", "Creative Tasks", "Planning & Reasoning"]
    assert sum(wb.WEIGHTS.values()) == pytest.approx(4.75)
    with pytest.raises(KeyError):
        wb.groups(["Cooking"])


def test_wb_score_hand_computed():
    # scores 8, 6, 3; the third answer was truncated: it counts in the mean, not in the groups
    scores, kept = [8.0, 6.0, 3.0], [True, True, False]
    gs = [["Creative Tasks", "Math & Data Analysis"], ["Math & Data Analysis"], ["Coding & Debugging"]]
    t = wb.score_table(scores, kept, gs)
    assert t["score"] == pytest.approx(17 / 3)
    assert t["adjusted_score"] == pytest.approx((17 / 3 - 5) * 2)
    assert t["task_categorized_scores"] == {"Creative Tasks": pytest.approx(6.0),
                                            "Math & Data Analysis": pytest.approx(4.0)}
    # macro divides by the sum of all five weights, present or not: (6*0.5 + 4*1) / 4.75
    assert t["task_macro_score"] == pytest.approx(7.0 / 4.75)


@pytest.mark.parametrize("k,model_len,base_len,want", [
    (500, 1501, 1000, "tie"),   # 501 longer: the plain win becomes a tie
    (500, 1500, 1000, "win"),   # exactly K longer: still a win (strictly more than K)
    (-1, 9000, 10, "win"),      # K = -1: no margin
    (0, 1001, 1000, "tie"),
])
def test_length_margin_at_the_boundary(k, model_len, base_len, want):
    assert wb.outcome("A+", True, model_len, base_len, k) == want
    # a strong win is never moved; the margin works the same way for the baseline's plain wins
    assert wb.outcome("A++", True, model_len, base_len, k) == "win_much"
    assert wb.outcome("A+", False, base_len, model_len, k) == {"win": "lose", "tie": "tie"}[want]


def test_wb_reward_hand_computed():
    outs = ["win_much", "win", "tie", "lose", "lose_much", None, "win"]
    gs = [["Creative Tasks"], ["Creative Tasks"], ["Coding & Debugging"], ["Coding & Debugging"],
          ["Planning & Reasoning"], ["Planning & Reasoning"], ["Planning & Reasoning"]]
    t = wb.reward_table(outs, gs)
    assert (t["win_much"], t["win"], t["tie"], t["lose"], t["lose_much"], t["total"]) == (1, 2, 1, 1, 1, 7)
    assert t["reward"] == pytest.approx((1 + 0.5 + 0 - 0.5 - 1 + 0.5) / 7)
    cats = {"Creative Tasks": 0.75, "Coding & Debugging": -0.25, "Planning & Reasoning": -0.25}
    assert t["task_categorized_rewards"] == pytest.approx(cats)
    assert t["task_macro_reward"] == pytest.approx((0.75 * 0.5 - 0.25 * 1.25 - 0.25 * 1.25) / 4.75)
    assert wb.outcome("A=B", True, 1, 1, 500) == "tie" and wb.outcome("B++", True, 1, 1, 500) == "lose_much"
