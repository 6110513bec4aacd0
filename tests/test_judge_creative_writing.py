"""Creative-Writing-Bench v3 rubric rules, hand-computed cases transcribed from
EQ-bench/creative-writing-bench@e7ab00917c96aeae577e3eeea15eba882be9d5e0 core/scoring.py (no file of that
repository is used: fixtures are written here in its layout)."""

import pytest

from mdlm_bench.judge.protocols import creative_writing as cw


def test_score_parsing_as_parse_judge_scores_creative():
    text = ("[Ratings]\n\nScenery: 14\nPacing: Score 9.5\nStilted: [3]\nFlat-Ending: 25\n"
            "Logic: -2\nno number here\n")
    got = cw.parse_scores(text)
    # 'Name: N', 'Name: Score N', 'Name: [N]'; above 20 dropped; negatives kept
    assert got == {"Scenery": 14.0, "Pacing": 9.5, "Stilted": 3.0, "Logic": -2.0}
    # both patterns run over the whole reply (names never cross a line, whitespace after ':' may); the
    # bracket pattern is read second, so it overrides a name both give
    assert cw.parse_scores("Voice: [12]") == {"Voice": 12.0}
    assert cw.parse_scores("Voice: 5, then Voice: [12]") == {"Voice": 5.0, "Voice: 5, then Voice": 12.0}
    assert cw.parse_scores("Voice: 7\nVoice: [12]") == {"Voice": 12.0}


def test_inverted_criteria_and_piece_score():
    neg = ["Stilted", "Gaudy Wording"]
    # invert_if_negative: 20 - s for lower-is-better criteria (exact name)
    s = cw.piece_score({"Scenery": 14.0, "Stilted": 3.0, "Gaudy Wording": 20.0, "stilted": 3.0}, neg)
    assert s == pytest.approx((14 + 17 + 0 + 3) / 4)
    # a negative criterion scored below 0 inverts above 20 and is dropped
    assert cw.piece_score({"Scenery": 10.0, "Stilted": -1.0}, neg) == pytest.approx(10.0)
    assert cw.piece_score({}, neg) is None


def test_aggregate_scaling():
    # compute_single_benchmark_score_creative: mean of piece means (0..20), x5 -> 0..100, both rounded to 2
    b = cw.benchmark_score([12.0, 15.5, 10.2])
    assert b == {"overall_score": 12.57,
                 "eqbench_creative_score": 62.83}  # 37.7 / 3 = 12.5667; x5 = 62.833
    assert cw.benchmark_score([]) == {"overall_score": 0.0, "eqbench_creative_score": 0.0}
