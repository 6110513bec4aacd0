"""Generated bad input (hypothesis): run configs, decoding settings, perturbation specs and their sweep blocks,
training recipes, judge configs and report settings, each a valid file with one to three values made wrong (a
wrong type, an unknown key, a non-finite or out-of-range number, a file that is not a mapping).

Every example must end with exit code 2, at most 3 lines on stderr, no traceback, and every file that existed
before byte-identical afterwards. The CLI runs in-process (`mdlm_bench.cli.main`) so examples cost milliseconds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdlm_bench.cli import main

DEC = {"gen_length": 16, "steps": 16, "block_length": 16}
TRAIN = dict(model="preset:tiny", data="synthetic", synthetic_per_family=4, canvas=24, max_prompt_tokens=48,
             steps=2, batch_size=2, micro_batch_size=2, warmup_steps=1, lr=3e-3, log_every=1)
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --- what makes a value wrong for a field -----------------------------------------------------------------------
def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


WRONG: Dict[str, Callable[[Any], bool]] = {  # category -> "this value is certainly refused"
    "int": lambda v: not _is_int(v),
    "posint": lambda v: not _is_int(v) or v < 1,
    "nonnegint": lambda v: not _is_int(v) or v < 0,
    "optposint": lambda v: v is not None and (not _is_int(v) or v < 1),
    "num": lambda v: not _is_num(v),
    "nonnegnum": lambda v: not _is_num(v) or v < 0,
    "fraction": lambda v: not _is_num(v) or not 0 <= v <= 1,
    "str": lambda v: not isinstance(v, str),
    "optstr": lambda v: v is not None and not isinstance(v, str),
    "bool": lambda v: not isinstance(v, bool),
    "ints": lambda v: not isinstance(v, list) or not v or not all(_is_int(x) for x in v),
    "strs": lambda v: not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v),
    "nums": lambda v: not isinstance(v, list) or not all(_is_num(x) for x in v),
    "dict": lambda v: not isinstance(v, dict),
}

RUN_FIELDS = {"model": "str", "tasks": "strs", "decoding": "dict", "seeds": "ints", "limit": "optposint",
              "chat": "bool", "dtype": "str", "device": "str", "bench_dir": "optstr", "batch_size": "posint",
              "trust_remote_code": "bool", "allow_pickle": "bool"}
DEC_FIELDS = {"gen_length": "posint", "steps": "posint", "block_length": "posint", "temperature": "nonnegnum",
              "remasking": "str", "cfg_scale": "nonnegnum", "suppress_eos": "bool", "eos_confidence_inf": "bool",
              "record_steps": "bool"}
SPEC_FIELDS = {"operator": "str", "fraction": "fraction", "direction": "str", "distance": "posint",
               "schedule": "str", "at_step": "nonnegint", "span": "posint", "seed": "int", "name": "optstr"}
SWEEP_FIELDS = {"fractions": "nums", "seeds": "ints"}
RECIPE_FIELDS = {"loss": "str", "model": "str", "init_seed": "int", "data": "str", "synthetic_per_family": "posint",
                 "canvas": "posint", "max_prompt_tokens": "posint", "overflow": "str", "steps": "posint",
                 "batch_size": "posint", "lr": "num", "warmup_steps": "nonnegint", "weight_decay": "nonnegnum",
                 "grad_clip": "nonnegnum", "bf16": "bool", "seed": "int", "log_every": "posint",
                 "save_every": "nonnegint", "keep_state": "bool", "betas": "nums", "lora": "dict"}
JUDGE_FIELDS = {"base_url": "str", "model": "str", "api_key_env": "str", "concurrency": "posint",
                "timeout_s": "num", "max_retries": "nonnegint", "price_in_per_m": "num", "cache_dir": "optstr"}

ANY = st.one_of(
    st.text(max_size=6), st.none(), st.booleans(),
    st.integers(min_value=-10 ** 30, max_value=10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -1, 0, 10 ** 20, 1e308, -5, "0,1", "yes", "abc"]),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=3), st.floats(allow_nan=True)), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=3), st.integers(), max_size=2),
)
UNKNOWN_KEY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=10)


@st.composite
def broken(draw, base: dict, fields: Dict[str, str]):
    """`base` with 1-3 certainly-wrong changes: a bad value for a field, or an unknown key."""
    data = dict(base)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            key = draw(UNKNOWN_KEY.filter(lambda k: k not in fields and k not in base))
            data[key] = draw(ANY)
        else:
            key = draw(st.sampled_from(sorted(fields)))
            data[key] = draw(ANY.filter(WRONG[fields[key]]))
    return data


# --- the world: files that must survive every example --------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_path):
    from mdlm_bench.evaluate.run import RunConfig, execute
    from mdlm_bench.train.recipe import Recipe
    from mdlm_bench.train.trainer import train

    root = tmp_path_factory.mktemp("gen-world")
    execute(RunConfig(model=str(tiny_path), tasks=["synth_copy"], limit=2, decoding=dict(DEC), seeds=[0]),
            root / "run")
    train(Recipe(**TRAIN), root / "trained", max_steps=1, quiet=True)
    (root / "report").mkdir()
    (root / "report" / "report.json").write_text('{"kept": true}\n')
    return root


def _snapshot(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("case.")}


COUNT: Dict[str, int] = {}


def _check(world: Path, argv: List[str], capsys, target: str) -> None:
    COUNT[target] = COUNT.get(target, 0) + 1
    before = _snapshot(world)
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert rc == 2, (rc, err)
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert 1 <= len(lines) <= 3 and lines[-1].startswith("error: "), err
    after = _snapshot(world)
    assert after == before, f"changed: {[k for k in set(before) | set(after) if before.get(k) != after.get(k)]}"


def _write(world: Path, name: str, data) -> Path:
    p = world / f"case.{name}.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True))
    return p


def _run_base(world: Path, tiny_path) -> dict:
    return {"model": str(tiny_path), "tasks": ["synth_copy"], "decoding": dict(DEC), "seeds": [0], "limit": 2}


@SETTINGS
@given(data=st.data())
def test_generated_run_configs(world, tiny_path, capsys, data):
    cfg = data.draw(broken(_run_base(world, tiny_path), RUN_FIELDS))
    _check(world, ["run", "--config", _write(world, "run", cfg), "--out", world / "run"], capsys, "run config")


@SETTINGS
@given(data=st.data())
def test_generated_decoding_settings(world, tiny_path, capsys, data):
    dec = data.draw(broken(dict(DEC), DEC_FIELDS))
    cfg = {**_run_base(world, tiny_path), "decoding": dec}
    _check(world, ["run", "--config", _write(world, "dec", cfg), "--out", world / "run"], capsys, "decoding")


@SETTINGS
@given(data=st.data())
def test_generated_perturbation_specs(world, tiny_path, capsys, data):
    spec = data.draw(broken({"operator": "shift", "fraction": 0.1}, SPEC_FIELDS))
    _check(world, ["run", "--model", tiny_path, "--tasks", "synth_copy", "--limit", "2", "--gen-length", "16",
                   "--steps", "16", "--block-length", "16", "--perturbation", _write(world, "spec", spec),
                   "--out", world / "run"], capsys, "perturbation spec")


@SETTINGS
@given(data=st.data())
def test_generated_sweep_blocks(world, tiny_path, capsys, data):
    block = data.draw(broken({"fractions": [0.0, 0.1], "seeds": [0]}, SWEEP_FIELDS))
    spec = {"operator": "shift", "fraction": 0.1, "sweep": block}
    _check(world, ["sweep", "--model", tiny_path, "--tasks", "synth_copy", "--perturbation",
                   _write(world, "sweep", spec), "--out", world / "run"], capsys, "sweep block")


@SETTINGS
@given(data=st.data())
def test_generated_recipes(world, capsys, data):
    recipe = data.draw(broken(dict(TRAIN), RECIPE_FIELDS))
    _check(world, ["train", "--recipe", _write(world, "recipe", recipe), "--output", world / "trained"], capsys,
           "recipe")


@SETTINGS
@given(data=st.data())
def test_generated_judge_configs(world, capsys, data):
    cfg = data.draw(broken({"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "none"},
                           JUDGE_FIELDS))
    _check(world, ["judge", "--bench", "mt-bench", "--run", world / "run", "--judge-config",
                   _write(world, "judge", cfg), "--no-progress"], capsys, "judge config")


@SETTINGS
@given(whole=st.one_of(st.lists(st.integers(), min_size=1, max_size=3), st.text(min_size=1, max_size=8)
                       .filter(lambda s: s.strip() and not s.strip().startswith("#")), st.integers(), st.floats()),
       target=st.sampled_from(["run", "spec", "recipe", "judge"]))
def test_generated_files_that_are_not_mappings(world, tiny_path, capsys, whole, target):
    p = _write(world, "whole", whole)
    argv = {"run": ["run", "--config", p, "--out", world / "run"],
            "spec": ["run", "--model", tiny_path, "--tasks", "synth_copy", "--perturbation", p, "--out", world / "run"],
            "recipe": ["train", "--recipe", p, "--output", world / "trained"],
            "judge": ["judge", "--bench", "mt-bench", "--run", world / "run", "--judge-config", p]}[target]
    _check(world, argv, capsys, "not a mapping")


@SETTINGS
@given(flag=st.sampled_from(["--ci-level", "--alpha", "--resamples", "--permutations"]),
       value=st.one_of(st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e308", "abc", "", "1.5"]),
                       st.floats(allow_nan=True).map(repr)))
def test_generated_report_settings(world, capsys, flag, value):
    ok = {"--ci-level": lambda x: 0.5 <= x < 1, "--alpha": lambda x: 0 < x < 1,
          "--resamples": lambda x: x >= 100 and x == int(x), "--permutations": lambda x: x >= 100 and x == int(x)}
    try:
        x = float(value)
        if flag in ("--resamples", "--permutations"):
            x = float(int(value))
        if ok[flag](x):
            return  # a valid setting: not this test's business
    except ValueError:
        pass
    _check(world, ["report", world / "run", world / "run", "--out", world / "report", flag, value], capsys,
           "report setting")


FLAG_WRONG = {  # flag -> strategy of values that are certainly refused
    "--limit": st.integers(max_value=0).map(str),
    "--batch-size": st.integers(max_value=0).map(str),
    "--gen-length": st.integers(max_value=0).map(str),
    "--steps": st.integers(min_value=17, max_value=10 ** 30).map(str),  # more steps than the 16 tokens
    "--temperature": st.one_of(st.floats(max_value=-1e-9), st.sampled_from([float("nan"), float("inf")])).map(repr),
    "--cfg-scale": st.one_of(st.floats(max_value=-1e-9), st.sampled_from([float("nan"), float("inf")])).map(repr),
    "--threshold": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True),
                             st.just(float("nan"))).map(repr),
    "--fraction": st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0, exclude_min=True),
                            st.just(float("nan"))).map(repr),
    "--seeds": st.text(alphabet="ab,.- x", min_size=1, max_size=6).filter(lambda s: any(c.isalpha() for c in s)),
    "--tasks": st.text(alphabet=", ", max_size=4),
}


@SETTINGS
@given(data=st.data())
def test_generated_run_flags(world, tiny_path, capsys, data):
    flags = data.draw(st.lists(st.sampled_from(sorted(FLAG_WRONG)), min_size=1, max_size=3, unique=True))
    argv = ["run", "--model", tiny_path, "--tasks", "synth_copy", "--limit", "2", "--gen-length", "16", "--steps", "16",
            "--block-length", "16", "--perturbation", "shift", "--out", world / "fresh"]  # must stay uncreated
    for f in flags:
        argv += [f, data.draw(FLAG_WRONG[f])]
    _check(world, argv, capsys, "run flags")


# --- answer files (import-outputs) -----------------------------------------------------------------------------
TEXTLESS = st.one_of(st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.sampled_from(["x", "y"]), st.integers(), max_size=1))


@st.composite
def broken_arena_answers(draw):
    """An Arena-Hard v0.1 answer file ("choices"/"turns" rows) with one row broken in one way."""
    rows = [{"question_id": f"q{i}", "model_id": "m", "choices": [{"index": 0, "turns": [{"content": f"a{i}"}]}]}
            for i in range(3)]
    k = draw(st.integers(0, 2))
    how = draw(st.sampled_from(["choices-empty", "choices-not-list", "choice-not-object", "turns-empty",
                                "turn-not-text", "uid-missing", "uid-twice", "messages-no-answer"]))
    row = rows[k]
    if how == "choices-empty":
        row["choices"] = []
    elif how == "choices-not-list":
        row["choices"] = draw(st.one_of(st.none(), st.text(max_size=3), st.integers()))
    elif how == "choice-not-object":
        row["choices"] = [draw(TEXTLESS.filter(lambda v: not isinstance(v, dict)))]
    elif how == "turns-empty":
        row["choices"][0]["turns"] = []
    elif how == "turn-not-text":
        row["choices"][0]["turns"] = [{"content": draw(TEXTLESS)}]
    elif how == "uid-missing":
        del row["question_id"]
    elif how == "uid-twice":
        row["question_id"] = rows[(k + 1) % 3]["question_id"]
    else:
        rows[k] = {"uid": row["question_id"], "messages": [{"role": "user", "content": "q"}] +
                   draw(st.lists(st.just({"role": "assistant", "content": draw(TEXTLESS)}), max_size=1))}
    return rows


@st.composite
def broken_alpaca_outputs(draw):
    """An AlpacaEval outputs list with one record broken in one way."""
    recs = [{"instruction": f"say {i}", "output": f"{i}", "generator": "g"} for i in range(3)]
    k = draw(st.integers(0, 2))
    how = draw(st.sampled_from(["output-not-text", "output-missing", "instruction-not-text", "instruction-twice",
                                "record-not-object"]))
    if how == "output-not-text":
        recs[k]["output"] = draw(TEXTLESS)
    elif how == "output-missing":
        del recs[k]["output"]
    elif how == "instruction-not-text":
        recs[k]["instruction"] = draw(TEXTLESS)
    elif how == "instruction-twice":
        recs[k]["instruction"] = recs[(k + 1) % 3]["instruction"]
    else:
        recs[k] = draw(TEXTLESS.filter(lambda v: not isinstance(v, dict)))
    return recs


@SETTINGS
@given(rows=broken_arena_answers())
def test_generated_arena_answer_files(world, capsys, rows):
    import json

    p = world / "case.answers.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _check(world, ["import-outputs", p, "--format", "arena-hard", "--bench", "arena-hard-v0.1", "--model-name", "x",
                   "--out", world / "imported"], capsys, "arena answers")
    assert not (world / "imported").exists()


@SETTINGS
@given(recs=broken_alpaca_outputs())
def test_generated_alpaca_output_files(world, capsys, recs):
    import json

    p = world / "case.outputs.json"
    p.write_text(json.dumps(recs))
    _check(world, ["import-outputs", p, "--format", "alpaca-eval", "--model-name", "x", "--out", world / "imported"],
           capsys, "alpaca outputs")
    assert not (world / "imported").exists()


# --- judge replies: an HTTP-200 body that is no usable chat completion ------------------------------------------
@st.composite
def broken_replies(draw):
    """(body, words the error must name): a chat-completions body broken in one way."""
    import json

    good = {"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "[[A>B]]"}, "finish_reason": "stop"}]}
    how = draw(st.sampled_from(["not-json", "not-object", "no-choices", "choices-empty", "choices-not-list",
                                "no-content", "content-not-text"]))
    if how == "not-json":
        return draw(st.sampled_from(["<html>bad gateway</html>", "", "{", "ok", "{'choices': []}"])), "not JSON"
    body: Any = json.loads(json.dumps(good))
    if how == "not-object":
        return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text(max_size=3)))), \
            "no 'choices'"
    if how == "no-choices":
        del body["choices"]
        return json.dumps(body), "no 'choices'"
    if how == "choices-empty":
        body["choices"] = []
        return json.dumps(body), "'choices' is empty"
    if how == "choices-not-list":
        body["choices"] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=3)))
        return json.dumps(body), "no 'choices'"
    if how == "no-content":
        del body["choices"][0]["message"]["content"]
        return json.dumps(body), "KeyError"
    body["choices"][0]["message"]["content"] = draw(TEXTLESS)
    return json.dumps(body), "Error"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(case=broken_replies())
def test_generated_judge_replies_are_named_never_a_crash(case):
    """Every broken 200 reply is a MalformedResponse whose message names what is wrong (the judge's summary
    warning quotes it), never another exception."""
    from mdlm_bench.judge.client import MalformedResponse, parse_body

    body, words = case
    with pytest.raises(MalformedResponse) as e:
        parse_body(body)
    assert words in str(e.value), (body, str(e.value))
