"""Issue 12: directory ownership and locks, resume without pickle, the CLI error boundary, disk full, and a
hypothesis sweep of generated bad configs. Runs the CLI in-process (`mdlm_bench.cli.main`) for speed."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from mdlm_bench.cli import main
from mdlm_bench.io import read_jsonl

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from judge_server import JudgeServer  # noqa: E402
from mdlm_bench.evaluate.rows import without_timing

DEC_FLAGS = ["--gen-length", "16", "--steps", "16", "--block-length", "16"]
TRAIN = dict(model="preset:tiny", data="synthetic", synthetic_per_family=4, canvas=24, max_prompt_tokens=48,
             steps=4, batch_size=2, micro_batch_size=2, warmup_steps=1, lr=3e-3, log_every=1)


def cli(argv: List[str], capsys):
    """(exit code, stderr) of one in-process CLI call; argparse's SystemExit counts as its code."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 2
    return rc, capsys.readouterr().err


def one_line_error(rc, err, code=2):
    assert "Traceback" not in err, err
    assert rc == code, (rc, err)
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def snapshot(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_args(model, out, *extra):
    return ["run", "--model", model, "--tasks", "synth_copy", "--limit", "2", *DEC_FLAGS, "--out", out, *extra]


# --- data-loss case 4: two writers on one run directory -------------------------------------------------------------
HOLD = "import sys, time\nfrom mdlm_bench.rundir import locked\nwith locked(sys.argv[1]):\n" \
       "    print('locked', flush=True)\n    time.sleep(120)\n"


def test_second_writer_is_refused_with_the_holders_pid_and_kill_9_frees_the_lock(tmp_path, tiny_path, capsys):
    out = tmp_path / "R"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = one_line_error(*cli(run_args(tiny_path, out), capsys))
        assert f"PID {holder.pid}" in line and "being written" in line
        assert not (out / "generations.jsonl").exists() and not (out / "config.json").exists()
    finally:
        holder.kill()  # SIGKILL: the kernel drops the lock with the process
        holder.wait()
    rc, err = cli(run_args(tiny_path, out), capsys)
    assert rc == 0, err
    assert len(read_jsonl(out / "generations.jsonl")) == 2
    assert json.loads((out / ".mdlm-bench-dir.json").read_text())["mdlm_bench_dir"] == "run"
    assert not list(out.rglob(".mdlm-bench.lock")), "a clean exit leaves no lock file behind"


def test_lock_file_is_removed_on_exit_and_the_next_writer_locks_afresh(tmp_path):
    from mdlm_bench.errors import UserError
    from mdlm_bench.rundir import LOCK, locked

    with locked(tmp_path / "D"):
        assert (tmp_path / "D" / LOCK).read_text().strip() == str(os.getpid())
        with pytest.raises(UserError, match="being written"):  # a second open file description is refused
            with locked(tmp_path / "D"):
                pass
    assert not (tmp_path / "D" / LOCK).exists()
    with pytest.raises(RuntimeError):
        with locked(tmp_path / "D"):
            raise RuntimeError("a failing writer")
    assert not (tmp_path / "D" / LOCK).exists()
    with locked(tmp_path / "D"):
        assert (tmp_path / "D" / LOCK).exists()


def test_a_writer_that_started_first_wins_and_the_other_config_is_refused(tmp_path, tiny_path, capsys):
    """The digest is checked again under the lock, so the later of two racing runs cannot clear the first."""
    from mdlm_bench.evaluate.run import RunConfig, execute

    out = tmp_path / "R"
    execute(RunConfig(model=str(tiny_path), tasks=["synth_copy"], limit=2, seeds=[0],
                      decoding={"gen_length": 16, "steps": 16, "block_length": 16}), out)
    before = snapshot(out)
    line = one_line_error(*cli(run_args(tiny_path, out, "--remasking", "margin"), capsys))
    assert "another config" in line
    assert snapshot(out) == before


def test_overwrite_replaces_only_its_own_kind_and_says_so(tmp_path, tiny_path, capsys):
    out = tmp_path / "R"
    assert cli(run_args(tiny_path, out), capsys)[0] == 0
    rc, err = cli(run_args(tiny_path, out, "--remasking", "margin", "--overwrite"), capsys)
    assert rc == 0 and "--overwrite: replacing the run" in err
    assert {r["decoding"]["remasking"] for r in read_jsonl(out / "generations.jsonl")} == {"margin"}


def test_overwrite_as_offered_replaces_a_run_with_a_damaged_config(tmp_path, tiny_path, capsys):
    out = tmp_path / "R"
    assert cli(run_args(tiny_path, out), capsys)[0] == 0
    (out / "config.json").write_text('{"kind": "run", "digest": ')
    line = one_line_error(*cli(run_args(tiny_path, out), capsys))
    assert "--overwrite" in line
    rc, err = cli(run_args(tiny_path, out, "--overwrite"), capsys)
    assert rc == 0, err
    assert json.loads((out / "config.json").read_text())["kind"] == "run"


def test_a_training_output_stays_a_loadable_checkpoint_with_its_marker(tmp_path):
    from mdlm_bench.models import load_model
    from mdlm_bench.rundir import dir_kind
    from mdlm_bench.train.recipe import Recipe
    from mdlm_bench.train.trainer import train

    train(Recipe(**TRAIN), tmp_path / "t", max_steps=1, quiet=True)
    assert dir_kind(tmp_path / "t") == "train"
    assert load_model(tmp_path / "t").vocab_size > 0


# --- security: resume reads no pickle ----------------------------------------------------------------------------


class _Evil:
    """Unpickling this creates the file at `path` (stands for arbitrary code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _plant(state: Path, marker: Path) -> None:
    import pickle

    for name in ("random_states_0.pkl", "optimizer.bin", "scheduler.bin", "pytorch_model.bin", "custom_checkpoint_0.pkl"):
        (state / name).write_bytes(pickle.dumps(_Evil(marker)))


def test_resume_ignores_planted_pickles_and_refuses_pickled_state_without_the_flag(tmp_path, capsys):
    out, marker = tmp_path / "t", tmp_path / "PWNED"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(TRAIN))
    assert cli(["train", "--recipe", recipe, "--output", out, "--max-steps", "2", "--quiet"], capsys)[0] == 0
    state = out / "state"
    assert not [p.name for p in state.iterdir() if p.suffix in (".pkl", ".bin", ".pt")], "state must hold no pickle"
    saved = json.loads((state / "trainer_state.json").read_text())
    assert saved["format"] == "mdlm-bench-state-v1" and saved["step"] == 2

    _plant(state, marker)  # our own format: the pickles are never opened
    rc, err = cli(["train", "--recipe", recipe, "--output", out, "--resume", "--quiet"], capsys)
    assert rc == 0, err
    assert not marker.exists()
    assert [r["step"] for r in read_jsonl(out / "train_log.jsonl")] == [1, 2, 3, 4]

    # a state in accelerate's pickled format: refused without --allow-pickle, before anything is opened
    saved = json.loads((out / "state" / "trainer_state.json").read_text())
    del saved["format"]
    (out / "state" / "trainer_state.json").write_text(json.dumps(saved))
    _plant(out / "state", marker)
    before = snapshot(out)
    line = one_line_error(*cli(["train", "--recipe", recipe, "--output", out, "--resume", "--quiet"], capsys))
    assert "pickled" in line and "--allow-pickle" in line
    assert not marker.exists()
    assert snapshot(out) == before


# --- disk full ---------------------------------------------------------------------------------------------------


def test_disk_full_fails_cleanly_and_a_rerun_resumes_to_the_same_rows(tmp_path, tiny_path, capsys, monkeypatch):
    from mdlm_bench import io

    args = ["run", "--model", tiny_path, "--tasks", "synth_copy,synth_reverse", "--limit", "3", "--seeds", "0,1",
            "--batch-size", "1", *DEC_FLAGS]
    assert cli([*args, "--out", tmp_path / "straight"], capsys)[0] == 0
    straight = read_jsonl(tmp_path / "straight" / "generations.jsonl")

    budget = {"left": 2500}  # a disk that fills up after K bytes of rows, mid-way through a line
    real = io.JsonlAppender.write_many

    def write_many(self, rows):
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if len(data) > budget["left"]:
            self._f.write(data[:budget["left"]])
            self._f.flush()
            budget["left"] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        budget["left"] -= len(data)
        real(self, rows)

    monkeypatch.setattr(io.JsonlAppender, "write_many", write_many)
    out = tmp_path / "full"
    rc, err = cli([*args, "--out", out], capsys)
    assert rc == 4 and "Traceback" not in err
    line = err.strip().splitlines()[-1]  # after the progress lines of a run that had started
    assert line.startswith("error: ") and "no space left" in line and "generations.jsonl" in line and "run the same command again" in line
    partial = (out / "generations.jsonl").read_bytes()
    assert 0 < partial.count(b"\n") < len(straight) and not partial.endswith(b"\n")  # a torn last line

    monkeypatch.setattr(io.JsonlAppender, "write_many", real)
    rc, err = cli([*args, "--out", out], capsys)
    assert rc == 0, err
    assert without_timing(read_jsonl(out / "generations.jsonl")) == without_timing(straight)  # every row, in order, equal to the straight run


# --- the CLI boundary ------------------------------------------------------------------------------------------


def test_unexpected_exception_prints_traceback_and_asks_for_a_bug_report(monkeypatch, capsys):
    from mdlm_bench.commands import ls

    def boom(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(ls, "main", boom)
    rc, err = cli(["ls", "models"], capsys)
    assert rc == 70 and "Traceback" in err and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].startswith("error: internal error (ZeroDivisionError)")
    assert "report" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("exc,code,words", [
    (OSError(errno.EACCES, "Permission denied", "/x/y"), 3, ["Permission denied", "/x/y"]),
    (OSError(errno.ENOSPC, "No space left on device", "/x/z"), 4, ["no space left", "/x/z"]),
    (UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte"), 2, ["UTF-8"]),
    (json.JSONDecodeError("Expecting value", "{", 1), 2, ["JSON", "line 1"]),
    (yaml.YAMLError("bad"), 2, ["YAML"]),
])
def test_known_error_classes_give_one_line_and_their_exit_code(monkeypatch, capsys, exc, code, words):
    from mdlm_bench.commands import ls

    def fail(args):
        raise exc

    monkeypatch.setattr(ls, "main", fail)
    line = one_line_error(*cli(["ls", "models"], capsys), code=code)
    for w in words:
        assert w in line, line


def test_safetensors_error_class_is_known(monkeypatch, capsys):
    from safetensors import SafetensorError

    from mdlm_bench.commands import ls

    def fail(args):
        raise SafetensorError("Error while deserializing header: header too small")

    monkeypatch.setattr(ls, "main", fail)
    assert "safetensors" in one_line_error(*cli(["ls", "models"], capsys))


# --- a judge that answers 200 without a completion ---------------------------------------------------------------


@pytest.mark.parametrize("fault", ["garbage", "empty"])
def test_every_game_failing_names_the_cause(tmp_path, capsys, monkeypatch, fault):
    monkeypatch.setenv("MDLM_TEST_KEY", "sk-test")
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        (d / "generations.jsonl").write_text("".join(json.dumps(
            {"task": "t", "uid": str(i), "seed": 0, "prompt": f"p{i}", "output": f"o{i} quality=5"}) + "\n"
            for i in range(2)))
    with JudgeServer(script=[fault] * 200, lifetime_s=60) as srv:
        rc, err = cli(["judge", "--bench", "pairwise", "--run", tmp_path / "a", "--baseline", tmp_path / "b",
                       "--judge-base-url", srv.url, "--judge-model", "m", "--judge-api-key-env", "MDLM_TEST_KEY",
                       "--max-retries", "0", "--no-progress", "--timeout", "3"], capsys)
    assert rc == 1 and "Traceback" not in err
    warning = [x for x in err.splitlines() if x.startswith("warning:")][-1]
    assert "every one" in warning and "chat completion" in warning, warning
    cause = {"garbage": "HTTP 200 but the body is not JSON", "empty": "HTTP 200 but 'choices' is empty"}[fault]
    assert cause in warning, warning


def test_directories_made_before_markers_existed_keep_working(tmp_path):
    """A committed report, an old run and an old training output are recognised by their files."""
    import shutil

    from mdlm_bench.errors import UserError
    from mdlm_bench.rundir import claim_dir

    assert claim_dir(REPO / "reports" / "reference", "report") is True
    run = tmp_path / "old-run"
    run.mkdir()
    (run / "generations.jsonl").write_text("")
    (run / "config.json").write_text('{"kind": "run", "digest": "x"}')
    assert claim_dir(run, "run") is True
    with pytest.raises(UserError, match="holds a run directory"):
        claim_dir(run, "report")
    foreign = tmp_path / "photos"
    shutil.copytree(REPO / "tests", foreign / "t", ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.raises(UserError, match="did not write"):
        claim_dir(foreign, "run", overwrite=True)


def test_a_rerun_says_how_many_rows_it_reused_and_run_shows_decoded_text(tmp_path, tiny_path, capsys):
    out = tmp_path / "R"
    capsys.readouterr()
    assert main([str(a) for a in run_args(tiny_path, out)]) == 0
    first = capsys.readouterr()
    assert "reused" not in first.err
    assert "decoded examples" in first.out and "  output: " in first.out and "synth_copy #" in first.out
    assert main([str(a) for a in run_args(tiny_path, out)]) == 0
    again = capsys.readouterr()
    assert "reused 2 of 2 rows" in " ".join(again.err.split()) and "decoded 0" in again.err
