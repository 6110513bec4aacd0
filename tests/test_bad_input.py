"""Every bad input the project names, through the real CLI (`python -m mdlm_bench ...` in a subprocess).

Each case must end with exit code 2, exactly one line on stderr starting with 'error: ' (and nothing on
stdout), no traceback, and no change to any existing run data: the module builds a small world of real
run directories, a training run, a report directory and benchmark files first, and every case checks
that world byte for byte afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Sequence

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from fixtures_runs import write_run as write_scored_run  # noqa: E402
from judge_server import JudgeServer  # noqa: E402

DATA = REPO.parent / "shared" / "data"
DEC = {"gen_length": 16, "steps": 16, "block_length": 16}
DEC_FLAGS = ["--gen-length", "16", "--steps", "16", "--block-length", "16"]
TRAIN = dict(model="preset:tiny", data="synthetic", synthetic_per_family=4, canvas=24, max_prompt_tokens=48,
             steps=2, batch_size=2, micro_batch_size=2, warmup_steps=1, lr=3e-3, log_every=1)
KEY_VAR = "MDLM_BAD_INPUT_TEST_KEY"


class World(NamedTuple):
    root: Path
    tiny: Path
    server_url: str
    protected: List[Path]  # every file that a bad input must leave untouched

    def p(self, rel: str) -> str:
        return str(self.root / rel)


def _dream_without_mask(path: Path) -> Path:
    """A Dream-layout checkpoint whose tokenizer has no mask token and whose config names none."""
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    vocab = {"<unk>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate("abcdefghij ")}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<eos>")
    torch.manual_seed(0)
    qcfg = Qwen2Config(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    model = Qwen2ForCausalLM(qcfg)
    path.mkdir(parents=True)
    cfg = {**qcfg.to_dict(), "model_type": "Dream", "architectures": ["DreamModel"]}
    cfg.pop("mask_token_id", None)
    (path / "config.json").write_text(json.dumps(cfg, default=str))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / "model.safetensors"))
    tok.save_pretrained(path)
    return path


def _judge_run(run_dir: Path, bench: str, prompts, skip=()) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "generations.jsonl", "w") as f:
        for p in prompts:
            if p["uid"] not in skip:
                f.write(json.dumps({"task": bench, "uid": p["uid"], "seed": 0, "prompt": p["turns"][0],
                                    "output": "an answer quality=5"}) + "\n")
    return run_dir


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_path) -> World:
    import yaml

    from mdlm_bench.evaluate.run import RunConfig, execute
    from mdlm_bench.train.recipe import load_recipe
    from mdlm_bench.train.trainer import train

    root = tmp_path_factory.mktemp("world")
    # a finished run directory (the data most commands must not damage)
    execute(RunConfig(model=str(tiny_path), tasks=["synth_copy"], limit=2, decoding=dict(DEC), seeds=[0]),
            root / "run")
    (root / "empty").mkdir()
    shutil.copytree(root / "run", root / "run_badcfg")
    (root / "run_badcfg" / "config.json").write_text('{"kind": "run", "digest": ')  # e.g. a hand edit gone wrong
    _dream_without_mask(root / "nomask")
    # generate inputs
    (root / "prompts.jsonl").write_text('{"prompt": "abc"}\n')
    (root / "bad_prompts.jsonl").write_text('{"prompt": "abc"}\n{"text": "no prompt field"}\n')
    # run configs and perturbation specs
    (root / "cfg_unknown.yaml").write_text(f"model: {tiny_path}\nmodle: typo\n")
    (root / "cfg_list.yaml").write_text("- synth_copy\n")
    (root / "op.yaml").write_text("operator: shfit\nfraction: 0.1\n")
    (root / "window.yaml").write_text("operator: shift\nfraction: 0.1\nschedule: window\nwindow: [0.5, 1.5]\n")
    (root / "broken.yaml").write_text("operator: [shift\nfraction: 0.1\n")
    (root / "spec_key.yaml").write_text("operator: shift\nfracton: 0.1\n")
    # report inputs: scored runs on different tasks, and of different metric types
    write_scored_run(root / "rep_a", {"t": {"em": [1, 0, 1]}})
    write_scored_run(root / "rep_b", {"u": {"em": [1, 0, 1]}})
    write_scored_run(root / "rep_cont", {"t": {"em": [1, 0, 1]}}, types={"em": "continuous"})
    write_scored_run(root / "rep_bin", {"t": {"em": [1, 0, 1]}}, types={"em": "binary"})
    (root / "report").mkdir()
    (root / "report" / "report.json").write_text('{"kept": true}\n')
    # a training run, a bad recipe and bad training data
    (root / "recipe.yaml").write_text(yaml.safe_dump(TRAIN))
    (root / "recipe_other.yaml").write_text(yaml.safe_dump({**TRAIN, "lr": 1e-2}))
    (root / "recipe_keys.yaml").write_text(yaml.safe_dump({**TRAIN, "learning_rate": 0.1}))
    (root / "train_bad.jsonl").write_text('{"prompt": "a", "response": "b"}\n{"prompt": "a"}\n{"response": "x"}\n')
    (root / "recipe_data.yaml").write_text(yaml.safe_dump({**TRAIN, "data": str(root / "train_bad.jsonl")}))
    train(load_recipe(root / "recipe.yaml", {}), root / "trained", max_steps=1, quiet=True)
    # open-ended benchmark files (subsets of the published ones) and judge inputs
    if DATA.is_dir():
        from test_judge_protocols import make_bench

        from mdlm_bench.benchdata import load_prompts

        bench = make_bench(root / "bench")
        broken = root / "bench_broken"
        shutil.copytree(bench, broken)
        q = broken / "arena-hard-v0.1" / "question.jsonl"
        lines = q.read_text().splitlines()
        row = json.loads(lines[1])
        del row["prompt"]
        lines[1] = json.dumps(row)
        q.write_text("\n".join(lines) + "\n")
        execute(RunConfig(model=str(tiny_path), tasks=["arena-hard-v0.1"], limit=1, decoding=dict(DEC), seeds=[0],
                          bench_dir=str(bench)), root / "ah_run")
        prompts = load_prompts("arena-hard-v0.1", bench)
        _judge_run(root / "j_run", "arena-hard-v0.1", prompts)
        _judge_run(root / "j_base", "arena-hard-v0.1", prompts)
        _judge_run(root / "j_partial", "arena-hard-v0.1", prompts, skip={prompts[0]["uid"], prompts[1]["uid"]})
        _judge_run(root / "j_other", "arena-hard-v0.1", prompts, skip={prompts[3]["uid"]})
    _issue12_world(root, tiny_path)
    protected = sorted(p for p in root.rglob("*") if p.is_file())
    with JudgeServer(lifetime_s=600) as srv:
        yield World(root, Path(tiny_path), srv.url, protected)
        assert len(srv.requests) == 0, "a bad input reached the judge endpoint"


def _damaged_checkpoints(root: Path, tiny: Path) -> None:
    """Copies of the tiny checkpoint, each damaged in one way a download or a hand edit can damage it."""
    def copy(name, damage):
        d = root / name
        shutil.copytree(tiny, d)
        damage(d)

    def edit_json(name, fn):
        def damage(d):
            p = d / name
            p.write_text(json.dumps(fn(json.loads(p.read_text()))))
        return damage

    weights = lambda d: d / "model.safetensors"  # noqa: E731
    copy("ckpt", lambda d: None)
    copy("ck_truncated", lambda d: weights(d).write_bytes(weights(d).read_bytes()[:1000]))
    copy("ck_zero_bytes", lambda d: weights(d).write_bytes(b""))
    copy("ck_cfg_invalid", lambda d: (d / "config.json").write_text("{not json"))
    copy("ck_cfg_list", lambda d: (d / "config.json").write_text("[1, 2]"))
    copy("ck_cfg_no_hidden", edit_json("config.json", lambda c: {k: v for k, v in c.items() if k != "hidden_size"}))
    copy("ck_no_mask_id", edit_json("mdlm_bench.json", lambda c: {k: v for k, v in c.items() if k != "mask_token_id"}))
    copy("ck_mask_oov", edit_json("mdlm_bench.json", lambda c: {**c, "mask_token_id": 10 ** 6}))
    copy("ck_meta_type", edit_json("mdlm_bench.json", lambda c: {**c, "mask_token_id": "2"}))


def _issue12_world(root: Path, tiny: Path) -> None:
    """Inputs of the issue-12 sweep: typed-config mistakes, damaged files, paths under files."""
    import yaml

    _damaged_checkpoints(root, tiny)
    run_cfg = json.loads((root / "run" / "config.json").read_text())["config"]
    base = {k: run_cfg[k] for k in ("model", "tasks", "decoding", "seeds", "limit")}
    configs = {
        "cfg_gen_word": {**base, "decoding": {**DEC, "gen_length": "sixteen"}},
        "cfg_limit_word": {**base, "limit": "two"},
        "cfg_seeds_str": {**base, "seeds": "0,1"},  # otherwise R's own config
        "cfg_tasks_str": {**base, "tasks": "synth_copy"},
        "cfg_tasks_empty": {**base, "tasks": []},
        "cfg_batch_float": {**base, "batch_size": 1.5},
        "cfg_chat_str": {**base, "chat": "yes"},
    }
    for name, cfg in configs.items():
        (root / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    specs = {"spec_fraction_yes": "operator: shift\nfraction: yes\n",
             "spec_distance_null": "operator: shift\nfraction: 0.1\ndistance: null\n",
             "spec_operator_int": "operator: 5\nfraction: 0.1\n",
             "spec_sweep_abc": "operator: shift\nfraction: 0.1\nsweep:\n  fractions: abc\n",
             "spec_window_str": "operator: shift\nfraction: 0.1\nschedule: window\nwindow: late\n"}
    for name, text in specs.items():
        (root / f"{name}.yaml").write_text(text)
    (root / "recipe_lr_nan.yaml").write_text(yaml.safe_dump(TRAIN).replace("lr: 0.003", "lr: .nan"))
    (root / "recipe_warmup_neg.yaml").write_text(yaml.safe_dump({**TRAIN, "warmup_steps": -5}))
    (root / "recipe_steps_str.yaml").write_text(yaml.safe_dump({**TRAIN, "steps": "100"}))
    (root / "prompts_latin1.jsonl").write_bytes('{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    (root / "prompts_seed_x.jsonl").write_text('{"prompt": "abc", "seed": "x"}\n')
    (root / "alpaca_latin1.json").write_bytes('[{"instruction": "caf\xe9", "output": "x"}]'.encode("latin-1"))
    (root / "alpaca_ok.json").write_text('[{"instruction": "say hi", "output": "hi", "generator": "g"}]')
    (root / "ah_latin1.jsonl").write_bytes((json.dumps({"uid": "u1", "messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": {"answer": "A"}}]}) + "\n")
        .replace("q", "caf\xe9").encode("latin-1"))
    (root / "ah_no_choices.jsonl").write_text(json.dumps({"uid": "u1", "messages": [
        {"role": "user", "content": "q"}], "choices": []}) + "\n")
    # issue 23: answer and output files with empty choices or turns, null outputs, duplicates
    v01 = lambda uid, choices: json.dumps({"question_id": uid, "model_id": "m", "choices": choices}) + "\n"  # noqa: E731
    (root / "ah_v01_empty_choices.jsonl").write_text(v01("q1", []))
    (root / "ah_v01_empty_turns.jsonl").write_text(v01("q1", [{"index": 0, "turns": []}]))
    (root / "ah_v01_null_turn.jsonl").write_text(v01("q1", [{"index": 0, "turns": [{"content": None}]}]))
    (root / "ah_v01_duplicate.jsonl").write_text(v01("q1", [{"index": 0, "turns": [{"content": "a"}]}]) +
                                                 v01("q1", [{"index": 0, "turns": [{"content": "b"}]}]))
    (root / "alpaca_null_output.json").write_text('[{"instruction": "say hi", "output": null, "generator": "g"}]')
    (root / "alpaca_duplicate.json").write_text('[{"instruction": "say hi", "output": "hi", "generator": "g"}, '
                                                '{"instruction": "say hi", "output": "hello", "generator": "g"}]')
    (root / "a_file").write_text("not a directory\n")
    (root / "judge_list.yaml").write_text("- base_url\n- model\n")
    (root / "judge_types.yaml").write_text("base_url: http://127.0.0.1:9/v1\nmodel: m\nconcurrency: many\n")
    for name in ("unscored_a", "unscored_b"):
        _judge_run(root / name, "t", [{"uid": "1", "turns": ["p"]}, {"uid": "2", "turns": ["q"]}])


class Case(NamedTuple):
    argv: Callable[[World], Sequence[str]]
    expect: Sequence[str]  # substrings of the one error line
    needs_data: bool = False


def _gen(*extra):
    return lambda w: ["generate", "--model", str(w.tiny), "--prompt", "abc",
                      *[e(w) if callable(e) else e for e in extra]]


def _run(*extra, model=None):
    return lambda w: ["run", "--model", model or str(w.tiny), "--tasks", "synth_copy", "--limit", "2", *DEC_FLAGS,
                      "--out", w.p("fresh-run"), *[e(w) if callable(e) else e for e in extra]]


def _judge(bench, run, *extra):
    return lambda w: ["judge", "--bench", bench, "--run", w.p(run), "--judge-base-url", w.server_url,
                      "--judge-model", "fake-judge", "--judge-api-key-env", KEY_VAR, "--no-progress",
                      "--timeout", "3", *[e(w) if callable(e) else e for e in extra]]


def _rel(name):
    return lambda w: w.p(name)


CASES: Dict[str, object] = {
    # --- generate ---------------------------------------------------------------------------------
    "generate-missing-model": Case(lambda w: ["generate", "--model", w.p("no-such-model"), "--prompt", "abc"],
                                   ["neither a directory nor a bundled model"]),
    "generate-not-a-checkpoint": Case(lambda w: ["generate", "--model", w.p("empty"), "--prompt", "abc"],
                                      ["not a model checkpoint"]),
    "generate-gen-not-multiple-of-block": Case(_gen("--gen-length", "16", "--block-length", "5"),
                                               ["multiple of block_length"]),
    "generate-steps-not-multiple-of-blocks": Case(_gen("--gen-length", "16", "--block-length", "8", "--steps", "3"),
                                                  ["multiple of the number of blocks"]),
    "generate-beyond-positions": Case(_gen("--gen-length", "512", "--block-length", "512", "--steps", "4"),
                                      ["exceeds the model's 512 positions"]),
    "generate-tokenizer-without-mask": Case(lambda w: ["generate", "--model", w.p("nomask"), "--prompt", "abc"],
                                            ["no mask token", "mask_token_id"]),
    "generate-unknown-remasking": Case(_gen("--remasking", "low_confidense"), ["did you mean 'low_confidence'"]),
    "generate-unknown-dtype": Case(_gen("--dtype", "fp64"), ["unknown dtype 'fp64'"]),
    "generate-input-missing": Case(lambda w: ["generate", "--model", str(w.tiny), "--input", w.p("nope.jsonl"),
                                              "--output", w.p("gen-out.jsonl")], ["does not exist"]),
    "generate-input-line-without-prompt": Case(
        lambda w: ["generate", "--model", str(w.tiny), "--input", w.p("bad_prompts.jsonl"), "--output",
                   w.p("gen-out.jsonl")], ["bad_prompts.jsonl:2", "'prompt'"]),
    "generate-input-without-output": Case(lambda w: ["generate", "--model", str(w.tiny), "--input",
                                                     w.p("prompts.jsonl")], ["--output"]),
    "generate-batch-size-0": Case(_gen("--batch-size", "0"), ["batch"]),
    # --- run --------------------------------------------------------------------------------------
    "run-unknown-task": Case(lambda w: ["run", "--model", str(w.tiny), "--tasks", "synth_cpy", "--out", w.p("x")],
                             ["did you mean 'synth_copy'"]),
    "run-missing-bench-dir": Case(lambda w: ["run", "--model", str(w.tiny), "--tasks", "mt-bench", "--out", w.p("x")],
                                  ["--bench-dir", "MDLM_BENCH_DATA"]),
    "run-bench-dir-does-not-exist": Case(lambda w: ["run", "--model", str(w.tiny), "--tasks", "mt-bench",
                                                    "--bench-dir", w.p("no-bench"), "--out", w.p("x")],
                                         ["does not exist", "--bench-dir"]),
    "run-data-file-missing-field": Case(
        lambda w: ["run", "--model", str(w.tiny), "--tasks", "arena-hard-v0.1", "--limit", "1", *DEC_FLAGS,
                   "--bench-dir", w.p("bench_broken"), "--out", w.p("fresh-ah")],
        ["question.jsonl:2", "missing field 'prompt'"], needs_data=True),
    "run-data-file-missing-field-existing-run": Case(
        lambda w: ["run", "--model", str(w.tiny), "--tasks", "arena-hard-v0.1", "--limit", "1", *DEC_FLAGS,
                   "--bench-dir", w.p("bench_broken"), "--out", w.p("ah_run")],
        ["question.jsonl:2", "missing field 'prompt'"], needs_data=True),
    "run-other-config-without-overwrite": Case(
        lambda w: ["run", "--model", str(w.tiny), "--tasks", "synth_copy", "--limit", "2", *DEC_FLAGS,
                   "--remasking", "margin", "--out", w.p("run")], ["another config", "--overwrite"]),
    "run-unreadable-config-json": Case(
        lambda w: ["run", "--model", str(w.tiny), "--tasks", "synth_copy", "--limit", "2", *DEC_FLAGS,
                   "--out", w.p("run_badcfg")], ["config.json"]),
    "run-missing-model": Case(_run(model="/nonexistent/model"), ["neither a directory"]),
    "run-not-a-checkpoint": Case(lambda w: ["run", "--model", w.p("empty"), "--tasks", "synth_copy",
                                                  "--out", w.p("x")], ["not a model checkpoint"]),
    "run-bad-seeds": Case(_run("--seeds", "a,b"), ["--seeds must be comma-separated integers"]),
    "run-limit-0": Case(_run("--limit", "0"), ["limit"]),
    "run-unknown-remasking": Case(_run("--remasking", "margn"), ["did you mean 'margin'"]),
    "run-config-unknown-key": Case(lambda w: ["run", "--config", w.p("cfg_unknown.yaml")], ["unknown key(s) modle"]),
    "run-config-not-a-mapping": Case(lambda w: ["run", "--config", w.p("cfg_list.yaml")], ["must be a YAML mapping"]),
    "run-config-missing": Case(lambda w: ["run", "--config", w.p("nope.yaml")], ["does not exist"]),
    "run-fraction-without-perturbation": Case(_run("--fraction", "0.1"), ["--fraction needs --perturbation"]),
    "run-limit-not-an-int": Case(_run("--limit", "abc"), ["invalid int value"]),
    # --- perturbation specs -----------------------------------------------------------------------
    "perturbation-fraction-above-1": Case(_run("--perturbation", "shift", "--fraction", "1.5"), ["[0, 1]", "1.5"]),
    "perturbation-fraction-negative": Case(_run("--perturbation", "shift", "--fraction", "-0.1"), ["[0, 1]"]),
    "perturbation-unknown-operator": Case(_run("--perturbation", _rel("op.yaml")), ["did you mean 'shift'"]),
    "perturbation-window-outside-0-1": Case(_run("--perturbation", _rel("window.yaml")), ["window", "0.5, 1.5"]),
    "perturbation-missing-spec-file": Case(_run("--perturbation", _rel("nope.yaml")), ["not found"]),
    "perturbation-unknown-bundled-name": Case(_run("--perturbation", "shfit"), ["did you mean 'shift'"]),
    "perturbation-malformed-yaml": Case(_run("--perturbation", _rel("broken.yaml")), ["not valid YAML", "line"]),
    "perturbation-unknown-key": Case(_run("--perturbation", _rel("spec_key.yaml")), ["unknown key(s) fracton"]),
    "sweep-without-perturbation": Case(lambda w: ["sweep", "--model", str(w.tiny), "--tasks", "synth_copy"],
                                       ["--perturbation"]),
    "sweep-fraction-outside-0-1": Case(lambda w: ["sweep", "--model", str(w.tiny), "--tasks", "synth_copy",
                                                  "--perturbation", "shift", "--fractions", "0,2",
                                                  "--out", w.p("sw")], ["outside [0, 1]"]),
    "sweep-fractions-not-numbers": Case(lambda w: ["sweep", "--model", str(w.tiny), "--tasks", "synth_copy",
                                                   "--perturbation", "shift", "--fractions", "a,b",
                                                   "--out", w.p("sw")], ["comma-separated numbers"]),
    # --- report -----------------------------------------------------------------------------------
    "report-no-overlapping-items": Case(lambda w: ["report", w.p("rep_a"), w.p("rep_b"), "--out",
                                              w.p("report")], ["share no (task, uid) prompts"]),
    "report-run-without-generations": Case(lambda w: ["report", w.p("rep_a"), w.p("empty"), "--out", w.p("report")],
                                           ["no scored rows"]),
    "report-mixed-metric-types": Case(lambda w: ["report", w.p("rep_cont"), w.p("rep_bin"), "--out",
                                            w.p("report")], ["is continuous in", "but binary in"]),
    "report-missing-run": Case(lambda w: ["report", w.p("rep_a"), w.p("nope"), "--out", w.p("report")],
                               ["does not exist"]),
    "report-ci-level": Case(lambda w: ["report", w.p("rep_a"), w.p("rep_a"), "--ci-level", "1.5", "--out",
                                       w.p("report")], ["ci_level"]),
    # --- judge ------------------------------------------------------------------------------------
    "judge-unreachable-endpoint": Case(
        lambda w: ["judge", "--bench", "arena-hard-v0.1", "--run", w.p("j_run"), "--baseline", w.p("j_base"),
                   "--bench-dir", w.p("bench"), "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-model", "m",
                   "--judge-api-key-env", KEY_VAR, "--no-progress"], ["cannot reach", "127.0.0.1:9"], True),
    "judge-missing-key-variable": Case(
        _judge("arena-hard-v0.1", "j_run", "--baseline", _rel("j_base"), "--bench-dir", _rel("bench"),
               "--judge-api-key-env", "MDLM_UNSET_KEY_VARIABLE"), ["MDLM_UNSET_KEY_VARIABLE"], True),
    "judge-run-lacks-generations-for-bench": Case(
        _judge("arena-hard-v0.1", "j_partial", "--baseline", _rel("j_base"), "--bench-dir", _rel("bench")),
        ["2 of 6"], True),
    "judge-baseline-different-prompt-set": Case(
        _judge("arena-hard-v0.1", "j_run", "--baseline", _rel("j_other"), "--bench-dir", _rel("bench")),
        ["different prompt set"], True),
    "judge-unknown-bench": Case(_judge("mt-bnch", "j_run"), ["did you mean 'mt-bench'"]),
    "judge-no-endpoint": Case(lambda w: ["judge", "--bench", "mt-bench", "--run", w.p("run"), "--judge-model", "m"],
                              ["--judge-base-url", "MDLM_JUDGE_BASE_URL"]),
    # --- train ------------------------------------------------------------------------------------
    "train-recipe-unknown-key": Case(lambda w: ["train", "--recipe", w.p("recipe_keys.yaml"), "--output",
                                                w.p("t-new")], ["learning_rate"]),
    "train-data-lines-missing-fields": Case(lambda w: ["train", "--recipe", w.p("recipe_data.yaml"), "--output",
                                                       w.p("t-new")], ["line(s) 2, 3"]),
    "train-resume-foreign-dir": Case(lambda w: ["train", "--recipe", w.p("recipe_other.yaml"), "--output",
                                                w.p("trained"), "--resume"], ["different recipe"]),
    "train-existing-without-resume": Case(lambda w: ["train", "--recipe", w.p("recipe.yaml"), "--output",
                                                     w.p("trained")], ["--resume"]),
    "train-resume-nothing-there": Case(lambda w: ["train", "--recipe", w.p("recipe.yaml"), "--output",
                                                  w.p("run"), "--resume"], ["holds a run directory"]),
    "train-missing-recipe": Case(lambda w: ["train", "--recipe", w.p("nope.yaml"), "--output", w.p("t-new")],
                                 ["does not exist"]),
    # --- the rest of the CLI ------------------------------------------------------------------------
    "ls-unknown-listing": Case(lambda w: ["ls", "modles"], ["did you mean 'models'"]),
    "init-model-into-a-run-dir": Case(lambda w: ["init-model", w.p("run")], ["holds a run directory", "OUT_DIR"]),
    "init-model-unknown-preset": Case(lambda w: ["init-model", w.p("m-new"), "--preset", "tiyn"],
                                      ["did you mean 'tiny'"]),
    "import-outputs-missing-file": Case(lambda w: ["import-outputs", w.p("nope.json"), "--format", "alpaca-eval",
                                                   "--model-name", "x", "--out", w.p("imp")], ["does not exist"]),
    "import-outputs-into-a-run-dir": Case(lambda w: ["import-outputs", w.p("prompts.jsonl"), "--format",
                                                     "arena-hard", "--bench", "arena-hard-v0.1", "--model-name", "x",
                                                     "--out", w.p("run")], ["holds a run directory"]),
    "make-data-per-family-0": Case(lambda w: ["make-data", "--output", w.p("run/generations.jsonl"),
                                              "--per-family", "0"], ["--per-family"]),
    "unknown-command": Case(lambda w: ["rnu"], ["invalid choice"]),
    # --- issue 12: data loss (each once wrote into a directory another command owns) -------------------------
    "loss1-train-into-a-run-dir": Case(lambda w: ["train", "--recipe", w.p("recipe.yaml"), "--output", w.p("run"),
                                                  "--max-steps", "1"], ["holds a run directory"]),
    "loss2-import-into-a-checkpoint": Case(lambda w: ["import-outputs", w.p("alpaca_ok.json"), "--format",
                                                      "alpaca-eval", "--model-name", "x", "--out", w.p("ckpt")],
                                           ["holds a model directory"]),
    "loss3-run-config-seeds-string-on-R": Case(lambda w: ["run", "--config", w.p("cfg_seeds_str.yaml"), "--out",
                                                          w.p("run")], ["cfg_seeds_str.yaml", "'seeds'", "list"]),
    "loss5-generate-into-a-run": Case(_gen("--output", _rel("run/generations.jsonl"), *DEC_FLAGS),
                                      ["lies inside a run directory"]),
    "loss6-run-into-a-checkpoint": Case(lambda w: ["run", "--model", str(w.tiny), "--tasks", "synth_copy",
                                                   *DEC_FLAGS, "--out", w.p("ckpt")], ["holds a model directory"]),
    "loss6-run-into-a-checkpoint-overwrite": Case(lambda w: ["run", "--model", str(w.tiny), "--tasks", "synth_copy",
                                                             *DEC_FLAGS, "--out", w.p("ckpt"), "--overwrite"],
                                                  ["holds a model directory", "--overwrite never replaces"]),
    "report-into-a-run-dir": Case(lambda w: ["report", w.p("rep_a"), w.p("rep_a"), "--out", w.p("run")],
                                  ["holds a run directory"]),
    "sweep-into-a-run-dir": Case(lambda w: ["sweep", "--model", str(w.tiny), "--tasks", "synth_copy", *DEC_FLAGS,
                                            "--perturbation", "shift", "--out", w.p("run")], ["holds a run directory"]),
    "init-model-force-into-a-run-dir": Case(lambda w: ["init-model", w.p("run"), "--force"],
                                            ["holds a run directory"]),
    "judge-a-checkpoint": Case(_judge("mt-bench", "ckpt"), ["is a model directory"]),
    # --- issue 12: typed configs ------------------------------------------------------------------------------
    "typed-gen-length-sixteen": Case(lambda w: ["run", "--config", w.p("cfg_gen_word.yaml"), "--out", w.p("x")],
                                     ["cfg_gen_word.yaml", "gen_length", "integer"]),
    "typed-limit-two": Case(lambda w: ["run", "--config", w.p("cfg_limit_word.yaml"), "--out", w.p("x")],
                            ["cfg_limit_word.yaml", "'limit'", "integer"]),
    "typed-tasks-string": Case(lambda w: ["run", "--config", w.p("cfg_tasks_str.yaml"), "--out", w.p("x")],
                               ["'tasks'", "list"]),
    "typed-tasks-empty-list": Case(lambda w: ["run", "--config", w.p("cfg_tasks_empty.yaml"), "--out", w.p("x")],
                                   ["no tasks"]),
    "typed-batch-size-float": Case(lambda w: ["run", "--config", w.p("cfg_batch_float.yaml"), "--out", w.p("x")],
                                   ["'batch_size'", "integer"]),
    "typed-chat-string": Case(lambda w: ["run", "--config", w.p("cfg_chat_str.yaml"), "--out", w.p("x")],
                              ["'chat'", "true or false"]),
    "typed-fraction-yes": Case(_run("--perturbation", _rel("spec_fraction_yes.yaml")),
                               ["spec_fraction_yes.yaml", "'fraction'", "number"]),
    "typed-distance-null": Case(_run("--perturbation", _rel("spec_distance_null.yaml")), ["'distance'", "integer"]),
    "typed-operator-5": Case(_run("--perturbation", _rel("spec_operator_int.yaml")), ["'operator'", "string"]),
    "typed-window-string": Case(_run("--perturbation", _rel("spec_window_str.yaml")), ["'window'", "list"]),
    "typed-sweep-fractions-abc": Case(lambda w: ["sweep", "--model", str(w.tiny), "--tasks", "synth_copy",
                                                 "--perturbation", w.p("spec_sweep_abc.yaml"), "--out", w.p("sw")],
                                      ["spec_sweep_abc.yaml", "'fractions'", "list"]),
    "typed-recipe-lr-nan": Case(lambda w: ["train", "--recipe", w.p("recipe_lr_nan.yaml"), "--output", w.p("t-new")],
                                ["recipe_lr_nan.yaml", "'lr'", "finite"]),
    "typed-recipe-warmup-negative": Case(lambda w: ["train", "--recipe", w.p("recipe_warmup_neg.yaml"), "--output",
                                                    w.p("t-new")], ["'warmup_steps'", "greater than or equal to 0"]),
    "typed-recipe-steps-string": Case(lambda w: ["train", "--recipe", w.p("recipe_steps_str.yaml"), "--output",
                                                 w.p("t-new")], ["'steps'", "integer"]),
    "typed-run-temperature-nan": Case(_run("--temperature", "nan"), ["temperature", "finite"]),
    "typed-run-cfg-scale-nan": Case(_run("--cfg-scale", "nan"), ["cfg_scale", "finite"]),
    "typed-generate-temperature-nan": Case(_gen("--temperature", "nan"), ["temperature", "finite"]),
    "typed-generate-cfg-scale-inf": Case(_gen("--cfg-scale", "inf"), ["cfg_scale", "finite"]),
    "typed-steps-above-gen-length": Case(_gen("--steps", "64", "--gen-length", "16", "--block-length", "16"),
                                         ["steps (64) exceeds gen_length (16)"]),
    "typed-tasks-flag-empty": Case(lambda w: ["run", "--model", str(w.tiny), "--tasks", "", "--out", w.p("x")],
                                   ["names no task"]),
    "typed-tasks-flag-comma": Case(lambda w: ["run", "--model", str(w.tiny), "--tasks", ",", "--out", w.p("x")],
                                   ["names no task"]),
    "typed-judge-config-list": Case(_judge("mt-bench", "j_run", "--judge-config", _rel("judge_list.yaml")),
                                    ["judge_list.yaml", "must be a YAML mapping"]),
    "typed-judge-config-wrong-type": Case(
        lambda w: ["judge", "--bench", "mt-bench", "--run", w.p("run"), "--judge-config", w.p("judge_types.yaml")],
        ["judge_types.yaml", "'concurrency'", "integer"]),
    "typed-meta-mask-id-string": Case(lambda w: ["generate", "--model", w.p("ck_meta_type"), "--prompt", "a"],
                                      ["mdlm_bench.json", "'mask_token_id'", "integer"]),
    # --- issue 12: damaged files and paths (each once ended in a traceback) ------------------------------------
    "tb-truncated-safetensors": Case(lambda w: ["generate", "--model", w.p("ck_truncated"), "--prompt", "a"],
                                     ["ck_truncated", "SafetensorError"]),
    "tb-zero-byte-safetensors": Case(lambda w: ["generate", "--model", w.p("ck_zero_bytes"), "--prompt", "a"],
                                     ["ck_zero_bytes", "SafetensorError"]),
    "tb-config-json-invalid": Case(lambda w: ["generate", "--model", w.p("ck_cfg_invalid"), "--prompt", "a"],
                                   ["config.json", "not valid"]),
    "tb-config-json-list": Case(lambda w: ["generate", "--model", w.p("ck_cfg_list"), "--prompt", "a"],
                                ["config.json", "JSON list"]),
    "tb-config-json-no-hidden-size": Case(lambda w: ["generate", "--model", w.p("ck_cfg_no_hidden"), "--prompt", "a"],
                                          ["could not load the checkpoint", "ck_cfg_no_hidden"]),
    "tb-meta-without-mask-id": Case(lambda w: ["generate", "--model", w.p("ck_no_mask_id"), "--prompt", "a"],
                                    ["mask_token_id -1", "missing or outside the vocabulary"]),
    "tb-meta-mask-id-out-of-vocab": Case(lambda w: ["generate", "--model", w.p("ck_mask_oov"), "--prompt", "a"],
                                         ["mask_token_id 1000000", "outside the vocabulary"]),
    "tb-prompts-not-utf8": Case(lambda w: ["generate", "--model", str(w.tiny), "--input", w.p("prompts_latin1.jsonl"),
                                           "--output", w.p("gen-out.jsonl")], ["prompts_latin1.jsonl:1", "UTF-8"]),
    "tb-answers-not-utf8": Case(lambda w: ["import-outputs", w.p("alpaca_latin1.json"), "--format", "alpaca-eval",
                                           "--model-name", "x", "--out", w.p("imp")], ["alpaca_latin1.json", "utf-8"]),
    "tb-arena-answers-not-utf8": Case(lambda w: ["import-outputs", w.p("ah_latin1.jsonl"), "--format", "arena-hard",
                                                 "--bench", "arena-hard-v0.1", "--model-name", "x", "--out",
                                                 w.p("imp")], ["ah_latin1.jsonl:1", "UTF-8"]),
    "tb-input-seed-x": Case(lambda w: ["generate", "--model", str(w.tiny), "--input", w.p("prompts_seed_x.jsonl"),
                                       "--output", w.p("gen-out.jsonl")], ["prompts_seed_x.jsonl:1", "'seed'"]),
    "tb-arena-answer-empty-choices": Case(lambda w: ["import-outputs", w.p("ah_no_choices.jsonl"), "--format",
                                                     "arena-hard", "--bench", "arena-hard-v0.1", "--model-name", "x",
                                                     "--out", w.p("imp")], ["ah_no_choices.jsonl:1"]),
    "tb-judge-url-no-scheme": Case(_judge("mt-bench", "j_run", "--judge-base-url", "http//x"), ["not an http(s) URL"]),
    "tb-judge-url-bad-ipv6": Case(_judge("mt-bench", "j_run", "--judge-base-url", "http://[::1"),
                                  ["not an http(s) URL"]),
    "tb-judge-url-bad-port": Case(_judge("mt-bench", "j_run", "--judge-base-url", "http://127.0.0.1:99999/v1"),
                                  ["bad port"]),
    # --- issue 23: the last bad inputs ---------------------------------------------------------------------
    "ah-answers-v01-empty-choices": Case(lambda w: ["import-outputs", w.p("ah_v01_empty_choices.jsonl"), "--format",
                                                    "arena-hard", "--bench", "arena-hard-v0.1", "--model-name", "x",
                                                    "--out", w.p("imp")], ["ah_v01_empty_choices.jsonl:1", "'choices'"]),
    "ah-answers-v01-empty-turns": Case(lambda w: ["import-outputs", w.p("ah_v01_empty_turns.jsonl"), "--format",
                                                  "arena-hard", "--bench", "arena-hard-v0.1", "--model-name", "x",
                                                  "--out", w.p("imp")], ["ah_v01_empty_turns.jsonl:1", "no turns"]),
    "ah-answers-v01-null-turn": Case(lambda w: ["import-outputs", w.p("ah_v01_null_turn.jsonl"), "--format",
                                                "arena-hard", "--bench", "arena-hard-v0.1", "--model-name", "x",
                                                "--out", w.p("imp")], ["ah_v01_null_turn.jsonl:1", "text content"]),
    "ah-answers-duplicate-uid": Case(lambda w: ["import-outputs", w.p("ah_v01_duplicate.jsonl"), "--format",
                                                "arena-hard", "--bench", "arena-hard-v0.1", "--model-name", "x",
                                                "--out", w.p("imp")], ["ah_v01_duplicate.jsonl:2", "answered twice"]),
    "alpaca-outputs-null-output": Case(lambda w: ["import-outputs", w.p("alpaca_null_output.json"), "--format",
                                                  "alpaca-eval", "--model-name", "x", "--out", w.p("imp")],
                                       ["alpaca_null_output.json: record 0", "'output' is null"]),
    "alpaca-outputs-duplicate-instruction": Case(lambda w: ["import-outputs", w.p("alpaca_duplicate.json"), "--format",
                                                            "alpaca-eval", "--model-name", "x", "--out", w.p("imp")],
                                                 ["record 1", "same instruction as record 0"]),
    "ls-tasks-bench-dir-missing": Case(lambda w: ["ls", "tasks", "--bench-dir", w.p("no-bench")],
                                       ["--bench-dir", "does not exist"]),
    "ls-tasks-bench-dir-a-file": Case(lambda w: ["ls", "tasks", "--bench-dir", w.p("a_file")],
                                      ["--bench-dir", "is a file"]),
    "make-data-families-empty": Case(lambda w: ["make-data", "--output", w.p("md.jsonl"), "--families", ""],
                                     ["--families", "names no family"]),
    "make-data-families-commas": Case(lambda w: ["make-data", "--output", w.p("md.jsonl"), "--families", ",,"],
                                      ["--families", "names no family"]),
    "report-a-single-run": Case(lambda w: ["report", w.p("rep_a"), "--out", w.p("rep-new")],
                                ["nothing to compare", "--sweep"]),
    "model-a-preset-name": Case(lambda w: ["generate", "--model", "tiny", "--prompt", "a"],
                                ["preset", "mdlm-bench init-model DIR --preset tiny"]),
    "model-a-hub-id-offline": Case(lambda w: ["generate", "--model", "GSAI-ML/LLaDA-8B-Instruct", "--prompt", "a"],
                                   ["huggingface-cli download GSAI-ML/LLaDA-8B-Instruct", "--model DIR"]),
    "report-two-unscored-runs": Case(lambda w: ["report", w.p("unscored_a"), w.p("unscored_b"), "--out",
                                                w.p("rep-new")], ["no scored rows"]),
}
# --out that is a file, or lies under a file, for every command that writes a directory or file
for _where, _rel_out in (("is-a-file", "a_file"), ("under-a-file", "a_file/sub")):
    for _name, _argv in {
        "run": lambda w, o: ["run", "--model", str(w.tiny), "--tasks", "synth_copy", *DEC_FLAGS, "--out", o],
        "sweep": lambda w, o: ["sweep", "--model", str(w.tiny), "--tasks", "synth_copy", *DEC_FLAGS,
                               "--perturbation", "shift", "--out", o],
        "report": lambda w, o: ["report", w.p("rep_a"), w.p("rep_a"), "--out", o],
        "train": lambda w, o: ["train", "--recipe", w.p("recipe.yaml"), "--output", o],
        "import-outputs": lambda w, o: ["import-outputs", w.p("alpaca_ok.json"), "--format", "alpaca-eval",
                                        "--model-name", "x", "--out", o],
        "init-model": lambda w, o: ["init-model", o],
        "generate": lambda w, o: ["generate", "--model", str(w.tiny), "--prompt", "a", "--output", o + "/x.jsonl"],
        "make-data": lambda w, o: ["make-data", "--output", o + "/x.jsonl", "--per-family", "1"],
    }.items():
        CASES[f"out-{_where}-{_name}"] = Case(lambda w, f=_argv, r=_rel_out: f(w, w.p(r)),
                                              ["which is a file" if _where == "under-a-file" or _name in
                                               ("generate", "make-data") else "is a file"])


def _snapshot(paths: Sequence[Path]) -> Dict[Path, bytes]:
    return {p: p.read_bytes() if p.exists() else None for p in paths}


# `python -m mdlm_bench` costs seconds of imports (torch, transformers, lm-eval) per call. The fork server
# below imports them once, then forks one child per case that runs the mdlm_bench module as __main__ with
# its own argv, cwd, environment, stdout and stderr, exactly as the interpreter would run `-m mdlm_bench`:
# an uncaught exception prints its traceback and exits 1, SystemExit gives the exit code.
FORK_SERVER = r"""
import json, os, runpy, sys, traceback
import torch, transformers, lm_eval, lm_eval.evaluator, accelerate, yaml, rich.console  # noqa: F401
import mdlm_bench.cli, mdlm_bench.evaluate.run, mdlm_bench.models, mdlm_bench.evaluate.tasks, mdlm_bench.report  # noqa: F401
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = [req["prog"], *req["argv"]]
            try:
                runpy.run_module("mdlm_bench", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def _env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MDLM_BENCH_DATA", "MDLM_JUDGE_BASE_URL", "MDLM_JUDGE_MODEL", "MDLM_UNSET_KEY_VARIABLE")}
    env.update({"PYTHONPATH": str(REPO), KEY_VAR: "sk-test", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "COLUMNS": "200"})
    return env


@pytest.fixture(scope="module")
def cli(world, tmp_path_factory):
    logs = tmp_path_factory.mktemp("cli-logs")
    proc = subprocess.Popen([sys.executable, "-c", FORK_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=_env(), text=True, cwd=world.root)
    assert json.loads(proc.stdout.readline()) == {"ready": True}
    count = [0]

    def run(argv: Sequence[str]) -> Result:
        count[0] += 1
        out, err = logs / f"{count[0]}.out", logs / f"{count[0]}.err"
        proc.stdin.write(json.dumps({"argv": list(argv), "cwd": str(world.root), "env": _env(),
                                     "prog": str(REPO / "mdlm_bench" / "__main__.py"),
                                     "stdout": str(out), "stderr": str(err)}) + "\n")
        proc.stdin.flush()
        rc = json.loads(proc.stdout.readline())["rc"]
        return Result(rc, out.read_text(), err.read_text())

    yield run
    proc.stdin.close()
    proc.wait(timeout=30)


def _check(case: Case, p: Result) -> None:
    err = p.stderr.strip()
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert err.startswith("error: ") and "\n" not in err, f"not one line:\n{p.stderr}"
    assert p.stdout == "", f"stdout should stay empty:\n{p.stdout!r}"
    for s in case.expect:
        assert s in err, (s, err)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_one_line_exit_2_nothing_damaged(world: World, cli, case: Case):
    if case.needs_data and not DATA.is_dir():
        pytest.skip(f"published benchmark files not found at {DATA}")
    before = _snapshot(world.protected)
    result = cli([str(a) for a in case.argv(world)])
    after = _snapshot(world.protected)
    changed = [str(k.relative_to(world.root)) for k in before if before[k] != after[k]]
    assert not changed, f"bad input changed existing files: {changed}\n{result.stderr[-2000:]}"
    _check(case, result)


@pytest.mark.parametrize("name", ["run-config-unknown-key", "ls-unknown-listing"])
def test_real_interpreter_entry_point(world: World, name: str):
    """The fork server stands in for `python -m mdlm_bench`; two cases run through a real interpreter too."""
    case = CASES[name]
    p = subprocess.run([sys.executable, "-m", "mdlm_bench", *[str(a) for a in case.argv(world)]], cwd=world.root,
                       env=_env(), capture_output=True, text=True, timeout=120)
    _check(case, Result(p.returncode, p.stdout, p.stderr))
