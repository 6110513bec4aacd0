"""Readers of published benchmark files: real files in place (skipped if absent) and tiny fixtures."""

import hashlib
import json
from pathlib import Path

import pytest

from mdlm_bench import benchdata
from mdlm_bench.errors import UserError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"published benchmark files not found at {DATA}")


@needs_data
@pytest.mark.parametrize("bench,n", [("arena-hard-v0.1", 500), ("arena-hard-v2.0", 750),
                                     ("arena-hard-v2.0-hard-prompt", 500), ("arena-hard-v2.0-creative-writing", 250),
                                     ("mt-bench", 80), ("alpaca-eval", 805)])
def test_real_files_load_with_the_published_counts(bench, n):
    prompts = benchdata.load_prompts(bench, DATA)
    assert len(prompts) == n
    assert len({p["uid"] for p in prompts}) == n
    for p in prompts:
        assert isinstance(p["uid"], str) and p["turns"] and all(isinstance(t, str) for t in p["turns"])
        assert set(p) == {"uid", "turns", "category", "reference", "extra"}


@needs_data
def test_mt_bench_references_only_for_math_reasoning_coding():
    prompts = benchdata.load_prompts("mt-bench", DATA)
    for p in prompts:
        assert len(p["turns"]) == 2
        if p["category"] in ("math", "reasoning", "coding"):
            assert p["reference"] and len(p["reference"]) == 2
        else:
            assert p["reference"] is None
    q101 = next(p for p in prompts if p["uid"] == "101")
    assert q101["reference"][0].startswith("If you have just overtaken the second person")


@needs_data
def test_alpaca_uid_is_the_sha256_of_the_instruction():
    prompts = benchdata.load_prompts("alpaca-eval", DATA)
    first = json.loads((DATA / "alpaca-eval" / "gpt4_1106_preview_outputs.json").read_text())[0]
    assert prompts[0]["uid"] == hashlib.sha256(first["instruction"].encode()).hexdigest()[:16]
    assert prompts[0]["extra"]["baseline_output"] == first["output"] and prompts[0]["extra"]["index"] == 0


@needs_data
def test_arena_hard_v2_split_by_category():
    hard = benchdata.load_prompts("arena-hard-v2.0-hard-prompt", DATA)
    assert {p["category"] for p in hard} == {"hard_prompt"}
    assert {p["extra"]["subcategory"] for p in hard} == {"coding", "math"}


def test_resolve_bench_dir_flag_env_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("MDLM_BENCH_DATA", raising=False)
    with pytest.raises(UserError, match="--bench-dir.*MDLM_BENCH_DATA"):
        benchdata.resolve_bench_dir(None)
    assert benchdata.resolve_bench_dir(str(tmp_path)) == tmp_path
    monkeypatch.setenv("MDLM_BENCH_DATA", str(tmp_path))
    assert benchdata.resolve_bench_dir(None) == tmp_path
    with pytest.raises(UserError, match="does not exist"):
        benchdata.resolve_bench_dir(str(tmp_path / "nope"))


def test_missing_file_names_the_expected_path(tmp_path):
    with pytest.raises(UserError, match=str(tmp_path / "arena-hard-v0.1" / "question.jsonl")):
        benchdata.load_prompts("arena-hard-v0.1", tmp_path)


def test_missing_field_names_file_and_line(tmp_path):
    d = tmp_path / "arena-hard-v0.1"
    d.mkdir()
    (d / "question.jsonl").write_text(
        json.dumps({"uid": "a", "category": "c", "prompt": "p"}) + "\n" + json.dumps({"uid": "b", "category": "c"}) + "\n")
    with pytest.raises(UserError, match=r"question.jsonl:2: missing field 'prompt'"):
        benchdata.load_prompts("arena-hard-v0.1", tmp_path)
    (d / "question.jsonl").write_text("{not json\n")
    with pytest.raises(UserError, match=r"question.jsonl:1: not valid JSON"):
        benchdata.load_prompts("arena-hard-v0.1", tmp_path)


def test_unknown_bench_suggests_the_close_name(tmp_path):
    with pytest.raises(UserError, match="did you mean 'mt-bench'"):
        benchdata.load_prompts("mt-bnch", tmp_path)


def test_wildbench_published_rows(tmp_path):
    # allenai/WildBench@d6b8dcaf src/eval.py compose_eval_item: the history is conversation_input[:-1] as given
    # (assistant turns included), the query is its last turn; only that reply is generated
    d = tmp_path / "wildbench"
    d.mkdir()
    rows = [{"session_id": "s1", "conversation_input": [{"role": "user", "content": "hi"},
                                                        {"role": "assistant", "content": "hello"},
                                                        {"role": "user", "content": "plan a trip"}],
             "checklist": ["Is it a plan?"], "primary_tag": "Planning", "references": {"gpt-4": "Day 1..."}},
            {"session_id": "s2", "conversation_input": [{"role": "user", "content": "2+2?"}], "checklist": [],
             "primary_tag": "Math"}]
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = benchdata.load_prompts("wildbench", tmp_path)
    assert [p["uid"] for p in got] == ["s1", "s2"]
    assert got[0]["turns"] == ["plan a trip"] and got[0]["category"] == "Planning"
    assert got[0]["extra"]["history"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert got[0]["reference"] == ["Day 1..."] and got[0]["extra"]["checklist"] == ["Is it a plan?"]
    assert got[1]["reference"] is None and got[1]["turns"] == ["2+2?"] and got[1]["extra"]["history"] == []
    (d / "test.jsonl").write_text(json.dumps({"session_id": "s3"}) + "\n")
    with pytest.raises(UserError, match=r"test.jsonl:1: missing field 'conversation_input'"):
        benchdata.load_prompts("wildbench", tmp_path)
    (d / "test.jsonl").write_text(json.dumps({**rows[0], "conversation_input": rows[0]["conversation_input"][:2]}))
    with pytest.raises(UserError, match="must end with a user turn"):
        benchdata.load_prompts("wildbench", tmp_path)


def test_wildbench_missing_folder_names_the_path(tmp_path):
    with pytest.raises(UserError, match="wildbench"):
        benchdata.load_prompts("wildbench", tmp_path)


def test_creative_writing_bench_prompts_json(tmp_path):
    # EQ-bench/creative-writing-bench@e7ab0091 core/benchmark.py: iteration i (1..N) uses
    # seed_modifiers[(i - 1) % len(seed_modifiers)] in place of <SEED>; prompts without modifiers are skipped
    d = tmp_path / "creative-writing-bench"
    d.mkdir()
    data = {"1": {"title": "Lighthouse", "category": "fiction", "writing_prompt": "Write about <SEED>. Go.",
                  "seed_modifiers": ["fog", "storm"]},
            "2": {"title": "Letters", "writing_prompt": "<SEED> An epistolary story.", "seed_modifiers": ["war"]},
            "3": {"title": "No seeds", "writing_prompt": "Plain."}}
    (d / "creative_writing_prompts_v3.json").write_text(json.dumps(data))
    got = benchdata.load_prompts("creative-writing-bench", tmp_path)
    assert benchdata.CW_ITERATIONS == 3 and len(got) == 2 * 3  # P prompts with seeds x N iterations
    assert [(p["uid"], p["turns"][0], p["category"]) for p in got] == [
        ("1#it1", "Write about fog. Go.", "fiction"), ("1#it2", "Write about storm. Go.", "fiction"),
        ("1#it3", "Write about fog. Go.", "fiction"), ("2#it1", "war An epistolary story.", None),
        ("2#it2", "war An epistolary story.", None), ("2#it3", "war An epistolary story.", None)]
    assert not any("<SEED>" in p["turns"][0] for p in got)
    e = got[1]["extra"]
    assert (e["prompt_id"], e["iteration"], e["seed_modifier"], e["title"]) == ("1", 2, "storm", "Lighthouse")
    assert e["base_prompt"] == "Write about <SEED>. Go."
    assert len(benchdata.creative_writing_rows(data, d, iterations=5)) == 10
    data["4"] = {"title": "No prompt"}
    (d / "creative_writing_prompts_v3.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="prompt '4': missing field 'writing_prompt'"):
        benchdata.load_prompts("creative-writing-bench", tmp_path)
