"""The `mdlm` lm-eval model and the synth_* tasks: simple_evaluate, lm-eval's CLI, hooks, settings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_bench.decode.config import DecodeConfig
from mdlm_bench.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "tasks"
FAMILIES = ["copy", "reverse", "sort", "count", "arithmetic", "spell", "lookup"]
SMALL = dict(gen_length=8, steps=4, block_length=8)


@pytest.fixture(scope="module")
def synth_utils():
    import importlib.util

    spec = importlib.util.spec_from_file_location("synth_utils_under_test", TASKS / "synth_utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lm(model, **kw):
    from mdlm_bench.evaluate.lm_eval import MDLMEvalLM

    return MDLMEvalLM(model=model, **{**SMALL, **kw})


def _request(context, gen_kwargs, doc_id, task="synth_copy", doc=None):
    from lm_eval.api.instance import Instance

    return Instance(request_type="generate_until", doc=doc or {"uid": f"u{doc_id}"}, arguments=(context, gen_kwargs),
                    idx=0, metadata=(task, doc_id, 1))


# --- settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("base,max_toks,gen,steps", [
    ((64, 64, 32), 16, 32, 32),  # rounded up to one block, one step per token kept
    ((128, 64, 32), 100, 128, 64),  # half a step per token
    ((64, 16, 8), 20, 24, 6),  # 3 blocks; 16/64 * 24 = 6 steps, a multiple of 3
    ((32, 8, 32), 40, 64, 16),
])
def test_max_gen_toks_sets_gen_length_and_scales_steps(base, max_toks, gen, steps):
    from mdlm_bench.decode.config import config_for_max_tokens

    cfg = config_for_max_tokens(DecodeConfig(gen_length=base[0], steps=base[1], block_length=base[2]), max_toks)
    assert (cfg.gen_length, cfg.steps, cfg.block_length) == (gen, steps, base[2])
    cfg.validate()


def test_stop_strings_cut_at_the_earliest():
    from mdlm_bench.evaluate.lm_eval import cut_at_stops

    assert cut_at_stops("abc\ndef", ["\n"]) == "abc"
    assert cut_at_stops("ab<|x|>c\nd", ["\n", "<|x|>"]) == "ab"
    assert cut_at_stops("abc", ["", "z"]) == "abc"


def test_model_args_are_typed_and_unknown_ones_named(tiny_model):
    lm = _lm(tiny_model, steps="4", temperature="0.5", threshold="none", chat="false", batch_size="3")
    assert lm.decoding.steps == 4 and lm.decoding.temperature == 0.5 and lm.decoding.threshold is None
    assert lm.chat is False and lm.batch_size == 3
    with pytest.raises(UserError, match="did you mean 'steps'"):
        _lm(tiny_model, stepz=4)
    with pytest.raises(UserError, match="chat=true or chat=false"):
        _lm(tiny_model, chat="maybe")
    with pytest.raises(UserError, match="multiple of block_length"):
        _lm(tiny_model, gen_length=10)
    dec = _lm(tiny_model, decoding={"gen_length": 16, "steps": 8, "block_length": 8}, steps=2).decoding
    assert (dec.gen_length, dec.steps) == (8, 2)  # model_args override the decoding object


# --- tasks and data ------------------------------------------------------------------------------
def test_bundled_data_is_the_eval_split_of_the_generator(synth_utils):
    for fam in FAMILIES:
        rows = [json.loads(x) for x in synth_utils.data_file(fam).read_text().splitlines()]
        assert rows == synth_utils.expected_rows(fam) and len(rows) == synth_utils.ROWS_PER_FAMILY == 200
        assert len({r["uid"] for r in rows}) == 200


def test_exact_match_strips_both_sides(synth_utils):
    assert synth_utils.process_results({"response": "abc"}, [" abc\n"]) == {"exact_match": 1.0}
    assert synth_utils.process_results({"response": " abc "}, ["abc"]) == {"exact_match": 1.0}
    assert synth_utils.process_results({"response": "abc"}, ["ab c"]) == {"exact_match": 0.0}
    assert synth_utils.process_results({"response": "12"}, ["1"]) == {"exact_match": 0.0}


def test_tasks_load_from_any_working_directory(tmp_path, monkeypatch, synth_utils):
    from lm_eval.tasks import TaskManager

    monkeypatch.chdir(tmp_path)
    tm = TaskManager(include_path=str(TASKS), include_defaults=False)
    loaded = tm.load(["synth"])
    assert sorted(loaded["tasks"]) == sorted(f"synth_{f}" for f in FAMILIES)
    for fam in FAMILIES:
        task = loaded["tasks"][f"synth_{fam}"]
        docs = list(task.test_docs())
        assert len(docs) == 200 and docs[0]["uid"] == synth_utils.expected_rows(fam)[0]["uid"]
        assert task.config.generation_kwargs["until"] == ["\n"]


# --- simple_evaluate -----------------------------------------------------------------------------
def test_simple_evaluate_on_synthetic_tasks(tiny_model, synth_utils):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from mdlm_bench.decode.prompts import encode_prompt, generate_many

    lm = _lm(tiny_model, seed=5, temperature=1.0, batch_size=2, gen_length=32, block_length=32, steps=4)
    res = lm_eval.simple_evaluate(model=lm, tasks=["synth_copy", "synth_lookup"], limit=3, log_samples=True,
                                  task_manager=TaskManager(include_path=str(TASKS), include_defaults=False))
    for task in ("synth_copy", "synth_lookup"):
        samples = res["samples"][task]
        assert len(samples) == 3
        docs = [s["doc"] for s in samples]
        outs = [s["filtered_resps"][0] for s in samples]
        assert all("uid" in d for d in docs)
        assert res["results"][task]["exact_match,none"] == pytest.approx(
            sum(synth_utils.strip_match(o, d["response"]) for o, d in zip(outs, docs)) / 3)
        # outputs are the sampler's, seeded seed + doc_id, decoded one by one, cut at the first newline
        cfg = DecodeConfig(gen_length=32, steps=4, block_length=32, temperature=1.0)  # max_gen_toks 32
        ids = [encode_prompt(tiny_model, d["prompt"]) for d in docs]
        direct = generate_many(tiny_model, ids, cfg, [5 + s["doc_id"] for s in samples], batch_size=1)
        assert outs == [r.text.split("\n")[0] for r in direct]


def test_generate_until_uses_the_row_hook(tiny_model):
    from mdlm_bench.decode.sampler import GenResult

    class Hook:
        def __init__(self):
            self.calls = []

        def lookup(self, task, doc_id, doc, context):
            return "cached out\nmore" if doc_id == 1 else None

        def decode(self, prompt_ids, keys, config):
            self.calls.append((prompt_ids, keys, config))
            return [GenResult(token_ids=[], text=f"gen {k[1]}\nrest", nfe=0, raw_ids=[]) for k in keys]

    hook = Hook()
    lm = _lm(tiny_model, row_hook=hook)
    reqs = [_request(f"copy: {c}", {"until": ["\n"], "max_gen_toks": 12}, i) for i, c in enumerate("abc")]
    from rich.progress import Progress

    with Progress():  # the caller's own live display must not clash with ours
        assert lm.generate_until(reqs) == ["gen 0", "cached out", "gen 2"]
    (prompt_ids, keys, config), = hook.calls
    assert [k[1] for k in keys] == [0, 2] and keys[0][0] == "synth_copy" and keys[0][3] == "copy: a"
    assert prompt_ids[0] == lm.prompt_ids("copy: a")
    assert (config.gen_length, config.steps) == (16, 8)  # 12 tokens -> 2 blocks of 8, half a step per token


def test_generation_does_not_depend_on_batch_composition(tiny_model):
    reqs = [_request(p, {"until": [], "max_gen_toks": 8}, i) for i, p in enumerate(["copy: ab", "x", "sort: cba"])]
    one = _lm(tiny_model, temperature=1.0, batch_size=1).generate_until(reqs)
    three = _lm(tiny_model, temperature=1.0, batch_size=3).generate_until(reqs[::-1])
    assert one == three[::-1]


def test_chat_template_applied_once(tiny_model):
    from mdlm_bench.decode.prompts import encode_prompt

    lm = _lm(tiny_model)
    templated = lm.apply_chat_template([{"role": "user", "content": "copy: ab"}])
    assert templated.endswith("<|assistant|>")
    assert lm.prompt_ids(templated) == tiny_model.tokenizer(templated, add_special_tokens=False)["input_ids"]
    assert lm.prompt_ids("copy: ab") == encode_prompt(tiny_model, "copy: ab", chat=True)
    assert _lm(tiny_model, chat=False).prompt_ids("copy: ab") == encode_prompt(tiny_model, "copy: ab", chat=False)


# --- likelihood ----------------------------------------------------------------------------------
def test_loglikelihood_is_the_mc_estimate_with_greedy_flag(tiny_model):
    from lm_eval.api.instance import Instance

    from mdlm_bench.evaluate.likelihood import greedy_config, mc_loglikelihood
    from mdlm_bench.decode.sampler import generate

    lm = _lm(tiny_model, chat=False, mc_num=8, mc_batch_size=8)
    ctx = "copy: ab"
    prompt = lm.prompt_ids(ctx)
    greedy_text = tiny_model.tokenizer.decode(generate(tiny_model, [prompt], greedy_config(3))[0].raw_ids)
    conts = [greedy_text, "zzz", " ab"]
    reqs = [Instance("loglikelihood", {}, (ctx, c), i, ("t", i, 1)) for i, c in enumerate(conts)]
    out = lm.loglikelihood(reqs)
    pairs = [lm.encode_pair(ctx, c) for c in conts]
    assert pairs[0][1] == tiny_model.tokenizer(greedy_text, add_special_tokens=False)["input_ids"]
    assert lm.encode_pair("copy: ", "ab") == lm.encode_pair("copy:", " ab")  # trailing space moves over
    expect = mc_loglikelihood(tiny_model, pairs, mc_num=8, batch_size=8, seed=0)
    assert [o[0] for o in out] == pytest.approx([e.mean for e in expect], abs=1e-4)
    assert [o[1] for o in out] == [True, False, False]


def test_loglikelihood_rolling_sums_windows(tiny_path):
    from lm_eval.api.instance import Instance

    from mdlm_bench.evaluate.likelihood import mc_loglikelihood
    from mdlm_bench.models import load_model

    m = load_model(tiny_path)
    m.model.config.max_position_embeddings = 8  # force three windows for a 20-character text
    lm = _lm(m, chat=False, mc_num=4, gen_length=8, block_length=8)
    text = "abcdefghijklmnopqrst"
    (total,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0, ("t", 0, 1))])
    ids = m.tokenizer(text)["input_ids"]
    pairs = [(ids[0:0], ids[0:8]), (ids[8:8], ids[8:16]), (ids[12:16], ids[16:20])]
    assert total == pytest.approx(sum(e.mean for e in mc_loglikelihood(m, pairs, mc_num=4)), abs=1e-4)


# --- lm-eval's command line ----------------------------------------------------------------------
def test_cli_manager_skips_builtin_tasks_only_when_all_are_included():
    import argparse

    import lm_eval.tasks

    from mdlm_bench.evaluate.lm_eval import _tasks_only_from_include_path, _without_default_tasks

    ours = argparse.Namespace(command="run", include_path=str(TASKS), tasks=["synth_copy,synth"])
    theirs = argparse.Namespace(command="run", include_path=str(TASKS), tasks=["synth_copy", "hellaswag"])
    assert _tasks_only_from_include_path(ours) and not _tasks_only_from_include_path(theirs)
    original = lm_eval.tasks.TaskManager
    with _without_default_tasks(True):
        tm = lm_eval.tasks.TaskManager(include_path=str(TASKS))
        assert "hellaswag" not in tm.all_tasks and "synth_copy" in tm.all_tasks
    assert lm_eval.tasks.TaskManager is original


def test_cli_bad_model_arg_is_one_line_exit_2(tiny_path, tmp_path, capsys):
    from mdlm_bench.evaluate.lm_eval import main

    rc = main(["--model", "mdlm", "--model_args", f"pretrained={tiny_path},stepz=4", "--tasks", "synth_copy",
               "--include_path", str(TASKS), "--limit", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "error: unknown model arg 'stepz' (did you mean 'steps'?)" in err
    assert "Traceback" not in err


def test_lm_eval_command_line_end_to_end(tiny_path, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "mdlm_bench.evaluate.lm_eval", "--model", "mdlm",
           "--model_args", f"pretrained={tiny_path},gen_length=8,steps=4,block_length=8,seed=1",
           "--tasks", "synth_copy", "--include_path", str(TASKS), "--limit", "4", "--batch_size", "4",
           "--device", "cpu", "--output_path", str(out), "--log_samples"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list(out.rglob("results_*.json"))
    samples = list(out.rglob("samples_synth_copy_*.jsonl"))
    assert len(results) == 1 and len(samples) == 1
    data = json.loads(results[0].read_text())
    assert "exact_match,none" in data["results"]["synth_copy"]
    rows = [json.loads(x) for x in samples[0].read_text().splitlines()]
    assert [r["doc"]["uid"] for r in rows] == [f"copy-s1000-{i:06d}" for i in range(4)]


# --- fidelity to LLaDA's evaluation (ML-GSAI/LLaDA@b7e6c35 eval_llada.py) ------------------------
def test_defaults_follow_llada_eval(tiny_model):
    lm = _lm(tiny_model)
    assert lm.mc_num == 128  # eval_llada.py LLaDAEvalHarness(mc_num=128)
    # raw context with the tokenizer's specials, as eval_llada.py's tokenizer(context) (no chat template)
    ctx, cont = lm.encode_pair("copy: ab", "ab")
    assert ctx == tiny_model.tokenizer("copy: ab")["input_ids"]
    assert _lm(tiny_model, loglikelihood_chat=True).encode_pair("copy: ab", "ab")[0] == \
        tiny_model.tokenizer(tiny_model.chat_prompt([{"role": "user", "content": "copy: ab"}]),
                             add_special_tokens=False)["input_ids"]


def _llada_encode_pair(tok, context, continuation):
    """eval_llada.py _encode_pair: every trailing whitespace character moves to the continuation."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok(context + continuation)["input_ids"]
    ctx = tok(context)["input_ids"]
    return ctx, whole[len(ctx):]


@pytest.mark.parametrize("context,continuation", [("copy: ab\n", "ab"), ("copy:\t \n", "ab"), ("copy: ab", " ab"),
                                                  ("  ", "x")])
def test_encode_pair_moves_all_trailing_whitespace(tiny_model, context, continuation):
    ctx, cont = _lm(tiny_model).encode_pair(context, continuation)
    ref_ctx, ref_cont = _llada_encode_pair(tiny_model.tokenizer, context, continuation)
    assert (ctx, cont) == (ref_ctx, ref_cont)


def test_pad_to_canvas_pads_with_eos_and_is_read_from_the_checkpoint(tiny_model, tmp_path):
    import dataclasses

    from mdlm_bench.models.mdlm import MDLM

    eos = tiny_model.eos_ids[0]
    lm = _lm(tiny_model, pad_to="canvas", canvas=6)
    assert lm.pad_continuation([7, 8]) == [7, 8, eos, eos, eos, eos]
    assert lm.pad_continuation(list(range(10, 17))) == list(range(10, 17))  # longer than the canvas: unpadded
    assert _lm(tiny_model).pad_to == "none"  # a checkpoint without a recorded canvas
    meta = dataclasses.replace(tiny_model.meta, pad_to="canvas", canvas=5)
    m = MDLM(tiny_model.model, tiny_model.tokenizer, meta, name="x")
    assert _lm(m).pad_continuation([7]) == [7, eos, eos, eos, eos]
    assert _lm(m, pad_to="none").pad_continuation([7]) == [7]
    with pytest.raises(UserError, match="pad_to"):
        _lm(tiny_model, pad_to="canvass")
    with pytest.raises(UserError, match="canvas=N"):
        _lm(tiny_model, pad_to="canvas")
    for name in ("tiny-ce", "tiny-slack-ctc"):  # the bundled models record their training canvas
        meta = json.loads((REPO / "mdlm_bench" / "assets" / "models" / name / "mdlm_bench.json").read_text())
        train = json.loads((REPO / "mdlm_bench" / "assets" / "models" / name / "train_config.json").read_text())
        assert (meta["pad_to"], meta["canvas"]) == ("canvas", train["recipe"]["canvas"])


MC_TASK = """task: copy_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
target_delimiter: ""
metric_list:
  - metric: acc
metadata:
  version: 1.0
"""


def test_multiple_choice_on_a_fixed_canvas_model_needs_canvas_padding(tmp_path):
    """A copy task the bundled tiny-ce never saw, with truncated copies as distractors. Scored alone, a
    continuation's bound falls with every token, so the shorter wrong answers win; padded like the model's
    training canvas (answer, EOS, EOS...), the correct copy wins every item."""
    import random
    import string

    import lm_eval
    from lm_eval.tasks import TaskManager

    from mdlm_bench.evaluate.lm_eval import MDLMEvalLM
    from mdlm_bench.models import load_model

    rng = random.Random(2024)
    alphabet = string.ascii_lowercase + string.digits
    rows = []
    for i in range(6):
        w = "".join(rng.choice(alphabet) for _ in range(rng.randint(4, 7)))
        wrong = [w[:-1], w[:-2]]
        choices = [w] + wrong
        rng.shuffle(choices)
        rows.append({"prompt": f"copy: {w}", "choices": choices, "gold": choices.index(w)})
    data = tmp_path / "copy_choice.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "copy_choice.yaml").write_text(MC_TASK.format(data=data))
    model = load_model(REPO / "mdlm_bench" / "assets" / "models" / "tiny-ce")
    acc = {}
    for pad_to in ("canvas", "none"):
        lm = MDLMEvalLM(model=model, loglikelihood_chat=True, mc_num=16, mc_batch_size=48, pad_to=pad_to)
        assert lm.pad_to == pad_to
        res = lm_eval.simple_evaluate(model=lm, tasks=["copy_choice"], log_samples=True,
                                      task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False))
        acc[pad_to] = res["results"]["copy_choice"]["acc,none"]
        gold = [s["resps"][s["doc"]["gold"]][0][0] for s in res["samples"]["copy_choice"]]
        if pad_to == "canvas":
            assert min(gold) > -3.0  # nats for the correct copy, answer and EOS canvas together
    assert acc["canvas"] == 1.0 and acc["none"] <= 0.5
    assert MDLMEvalLM(model=model).pad_to == "canvas"  # the default comes from mdlm_bench.json
