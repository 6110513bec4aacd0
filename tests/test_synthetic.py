"""The synthetic task generator: deterministic, exactly-checkable answers, short enough for tiny models."""

import re

import pytest

from mdlm_bench.errors import UserError
from mdlm_bench.train.synthetic import DIGIT_WORDS, FAMILIES, exact_match, generate, make_row, per_family

EXPECTED = {"copy", "reverse", "sort", "count", "arithmetic", "spell", "lookup"}


def solve(row):
    """An independent solver that parses the prompt text."""
    p, fam = row["prompt"], row["family"]
    if fam == "copy":
        return p[len("copy: "):]
    if fam == "reverse":
        return p[len("reverse: "):][::-1]
    if fam == "sort":
        return "".join(sorted(p[len("sort: "):]))
    if fam == "count":
        m = re.fullmatch(r"count (\w): (\w+)", p)
        return str(m.group(2).count(m.group(1)))
    if fam == "arithmetic":
        return str(eval(p[:-1]))  # digits and one +/- only (checked below)
    if fam == "spell":
        return " ".join(DIGIT_WORDS[int(d)] for d in p[len("spell: "):])
    if fam == "lookup":
        pairs, key = p.split(" ? ")
        return dict(kv.split("=") for kv in pairs.split())[key]
    raise AssertionError(fam)


def test_families_present():
    assert set(FAMILIES) == EXPECTED


def test_deterministic_and_uids_unique():
    a = generate(50, seed=3)
    b = generate(50, seed=3)
    assert a == b
    assert len({r["uid"] for r in a}) == len(a) == 50 * len(EXPECTED)
    c = generate(50, seed=4)
    assert not {r["uid"] for r in a} & {r["uid"] for r in c}
    assert make_row("sort", 3, 7) == next(r for r in a if r["uid"] == "sort-s3-000007")


def test_answers_are_exactly_right_and_short():
    rows = generate(200, seed=0)
    for r in rows:
        assert set(r) == {"uid", "family", "prompt", "response"}
        if r["family"] == "arithmetic":
            assert re.fullmatch(r"\d+[+-]\d+=", r["prompt"])
        assert r["response"] == solve(r), r
        assert len(r["prompt"]) <= 32 and 1 <= len(r["response"]) <= 20
        assert r["prompt"].isascii() and r["response"].isascii()


def test_exact_match_and_per_family():
    rows = generate(2, seed=0, families=["copy", "count"])
    outs = [rows[0]["response"] + " ", "wrong", rows[2]["response"], rows[3]["response"]]
    assert exact_match(rows[0], outs[0])
    res = per_family(rows, outs)
    assert res["copy"] == {"n": 2, "exact_match": 1.0}
    assert res["count"]["exact_match"] == 0.5


def test_unknown_family_is_user_error():
    with pytest.raises(UserError, match="did you mean 'reverse'"):
        generate(1, families=["revrse"])


def test_heldout_splits_are_disjoint_by_prompt_from_training_and_each_other():
    import json
    from pathlib import Path

    from mdlm_bench.train.recipe import load_recipe
    from mdlm_bench.train.synthetic import FAMILIES, generate, heldout_rows

    root = Path(__file__).resolve().parents[1]
    train = set()
    for name in ("tiny-base", "tiny-ce", "tiny-slack-ctc"):
        r = load_recipe(root / "training" / f"{name}.yaml")
        assert r.data == "synthetic"
        train |= {x["prompt"] for x in generate(r.synthetic_per_family, r.synthetic_seed)}
    files = [json.loads(x) for f in sorted((root / "tasks" / "data").glob("synth_*.jsonl"))
             for x in f.read_text().splitlines()]
    eval_prompts = [x["prompt"] for x in files]
    dev = heldout_rows("dev", 60)
    dev_prompts = [x["prompt"] for x in dev]
    n_fam = len(list(FAMILIES))
    assert len(eval_prompts) == 200 * n_fam == len(set(eval_prompts))
    # The first 32 per family are the rows bundled before eval grew (drawn before dev); the rest avoid dev.
    assert [x for x in files if x["family"] == "copy"][:32] == heldout_rows("eval", 32, families=["copy"])
    reserved = {x["prompt"] for x in heldout_rows("dev", 100)}
    assert not set(eval_prompts) & reserved, "an eval prompt occurs in the reserved dev rows"
    assert len(dev_prompts) == len(set(dev_prompts)) == 60 * n_fam
    assert not set(eval_prompts) & train, "an eval prompt occurs in training"
    assert not set(eval_prompts) & set(dev_prompts), "an eval prompt occurs in the dev split"
    assert not set(dev_prompts) & train, "a dev prompt occurs in training"
    # Dev rows are a prefix-stable superset: the grid's 48 rows per family are the first 48 of any larger draw.
    assert heldout_rows("dev", 48, families=["spell"]) == [x for x in dev if x["family"] == "spell"][:48]
