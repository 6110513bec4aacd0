"""The trainer end to end on a tiny preset: outputs, exact resume, bad input, schedule, slack token."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_bench.cli import main as cli
from mdlm_bench.io import read_jsonl
from mdlm_bench.train.recipe import Recipe
from mdlm_bench.train.trainer import lr_lambda, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = dict(model="preset:tiny", data="synthetic", synthetic_per_family=8, canvas=24, max_prompt_tokens=48,
            steps=6, batch_size=4, micro_batch_size=2, warmup_steps=2, lr=3e-3, log_every=1)


def write_recipe(path: Path, **kw) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({**TINY, **kw}))
    return path


def losses(out: Path):
    return [r["loss"] for r in read_jsonl(out / "train_log.jsonl")]


def test_slack_ctc_run_writes_model_log_plot_and_config(tmp_path):
    from mdlm_bench.models import load_model

    out = tmp_path / "out"
    s = train(Recipe(**TINY, loss="slack_ctc", slack_insert_rate=0.2), out, quiet=True)
    assert s["steps"] == 6
    log = read_jsonl(out / "train_log.jsonl")
    assert [r["step"] for r in log] == list(range(1, 7))
    assert all(math.isfinite(r["loss"]) and r["tokens_per_s"] > 0 for r in log)
    assert (out / "loss.png").stat().st_size > 1000
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["recipe"]["loss"] == "slack_ctc" and "versions" in cfg["provenance"]
    m = load_model(out)
    assert m.slack_id is not None and m.tokenizer.convert_ids_to_tokens(m.slack_id) == "<slack>"
    assert (m.meta.pad_to, m.meta.canvas, m.meta.canvas_pad_with) == ("canvas", 24, "eos")  # for lm-eval's pad_to
    assert (out / "state" / "trainer_state.json").is_file()


def test_exact_resume_matches_straight_run(tmp_path):
    rec = Recipe(**TINY, loss="slack_ctc", slack_insert_rate=0.2, save_every=2)
    train(rec, tmp_path / "straight", quiet=True)
    assert {p.name for p in (tmp_path / "straight" / "checkpoints").iterdir()} == {"step-2", "step-4"}
    train(rec, tmp_path / "split", max_steps=3, quiet=True)
    assert len(losses(tmp_path / "split")) == 3
    train(rec, tmp_path / "split", resume=True, quiet=True)
    assert losses(tmp_path / "split") == losses(tmp_path / "straight")


def test_loss_decreases_ce(tmp_path):
    rec = Recipe(**{**TINY, "steps": 40, "batch_size": 8, "micro_batch_size": 8, "synthetic_per_family": 4},
                 loss="ce")
    train(rec, tmp_path / "o", quiet=True)
    log = losses(tmp_path / "o")
    assert sum(log[-5:]) / 5 < 0.6 * sum(log[:5]) / 5


def test_lr_schedule_warmup_then_cosine():
    f = lr_lambda(Recipe(steps=110, warmup_steps=10, min_lr_ratio=0.1))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1)


def run_cli(args, capsys):
    rc = cli(args)
    err = capsys.readouterr().err.strip()
    return rc, err


def test_bad_recipe_key_exit_2(tmp_path, capsys):
    r = write_recipe(tmp_path / "r.yaml", learning_rate=0.1)
    rc, err = run_cli(["train", "--recipe", str(r), "--output", str(tmp_path / "o")], capsys)
    assert rc == 2 and err.count("\n") == 0 and "learning_rate" in err
    assert not (tmp_path / "o").exists()


def test_bad_data_lines_exit_2(tmp_path, capsys):
    d = tmp_path / "d.jsonl"
    d.write_text('{"prompt": "a", "response": "b"}\n{"prompt": "a"}\n{"response": "x"}\n')
    r = write_recipe(tmp_path / "r.yaml", data=str(d))
    rc, err = run_cli(["train", "--recipe", str(r), "--output", str(tmp_path / "o")], capsys)
    assert rc == 2 and "line(s) 2, 3" in err and err.count("\n") == 0


def test_canvas_overflow_exit_2_then_skip(tmp_path, capsys):
    d = tmp_path / "d.jsonl"
    d.write_text('{"prompt": "a", "response": "bb"}\n{"prompt": "a", "response": "' + "x" * 40 + '"}\n')
    r = write_recipe(tmp_path / "r.yaml", data=str(d), steps=1)
    rc, err = run_cli(["train", "--recipe", str(r), "--output", str(tmp_path / "o")], capsys)
    assert rc == 2 and "do not fit" in err and "overflow" in err
    r2 = write_recipe(tmp_path / "r2.yaml", data=str(d), steps=1, overflow="skip")
    rc, _ = run_cli(["train", "--recipe", str(r2), "--output", str(tmp_path / "o2"), "--quiet"], capsys)  # no eval: not synthetic
    assert rc == 0
    assert json.loads((tmp_path / "o2" / "train_config.json").read_text())["data"]["skipped"] == 1


def test_foreign_resume_exit_2_leaves_checkpoint_untouched(tmp_path, capsys):
    out = tmp_path / "o"
    r = write_recipe(tmp_path / "r.yaml", steps=4)
    assert run_cli(["train", "--recipe", str(r), "--output", str(out), "--max-steps", "2", "--quiet",
                    "--eval-per-family", "0"], capsys)[0] == 0
    assert not (out / "eval.json").exists()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    other = write_recipe(tmp_path / "other.yaml", steps=4, lr=1e-2)
    rc, err = run_cli(["train", "--recipe", str(other), "--output", str(out), "--resume"], capsys)
    assert rc == 2 and "different recipe" in err and err.count("\n") == 0
    rc, err = run_cli(["train", "--recipe", str(r), "--output", str(out)], capsys)
    assert rc == 2 and "--resume" in err
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before == after
    rc, err = run_cli(["train", "--recipe", str(r), "--output", str(tmp_path / "fresh"), "--resume"], capsys)
    assert rc == 2 and "no resumable state" in err


def test_lora_trains_and_saves_merged(tmp_path):
    pytest.importorskip("peft")
    from mdlm_bench.models import load_model

    out = tmp_path / "lora"
    train(Recipe(**{**TINY, "steps": 2}, lora={"r": 4, "alpha": 8}), out, quiet=True)
    m = load_model(out)
    assert not any("lora" in k for k in m.model.state_dict())
    assert math.isfinite(losses(out)[-1])


def test_make_data_command(tmp_path, capsys):
    out = tmp_path / "syn.jsonl"
    rc = cli(["make-data", "--output", str(out), "--per-family", "3", "--seed", "2"])
    assert rc == 0
    rows = read_jsonl(out)
    assert len(rows) == 21 and {"uid", "family", "prompt", "response"} == set(rows[0])


def test_help_is_fast_to_import():
    code = "import sys, mdlm_bench.commands.train, mdlm_bench.commands.make_data; print('torch' in sys.modules)"
    outp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert outp.strip() == "False"


def test_cli_run_on_synthetic_writes_eval(tmp_path, capsys):
    r = write_recipe(tmp_path / "r.yaml", steps=2)
    rc, _ = run_cli(["train", "--recipe", str(r), "--output", str(tmp_path / "o"), "--quiet",
                     "--eval-per-family", "2"], capsys)
    assert rc == 0
    ev = json.loads((tmp_path / "o" / "eval.json").read_text())
    assert ev["results"]["all"]["n"] == 14 and 0.0 <= ev["results"]["all"]["exact_match"] <= 1.0
    assert set(ev["results"]) == {"copy", "reverse", "sort", "count", "arithmetic", "spell", "lookup", "all"}
