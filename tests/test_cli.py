"""CLI surface: fast --help, generate in its three modes, ls, bf16 on CPU."""

import json
import subprocess
import sys

import pytest


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mdlm_bench", *args], capture_output=True, text=True, cwd=cwd)


def test_help_imports_no_heavy_modules():
    code = ("import sys; from mdlm_bench.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('torch', 'transformers', 'lm_eval', 'scipy', 'openai', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    r = _cli("--help")
    assert r.returncode == 0
    for cmd in ("run", "sweep", "judge", "train", "report", "generate", "ls", "init-model", "import-outputs"):
        assert cmd in r.stdout


def test_generate_json_and_files(tiny_path, tmp_path):
    r = _cli("generate", "--model", str(tiny_path), "--prompt", "copy: ab", "--gen-length", "8", "--steps", "4",
             "--block-length", "4", "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["nfe"] == 4 and rec["settings"]["steps"] == 4 and isinstance(rec["token_ids"], list)
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "a", "uid": "x"}\n{"prompt": "b", "seed": 5}\n')
    out = tmp_path / "out.jsonl"
    r = _cli("generate", "--model", str(tiny_path), "--input", str(src), "--output", str(out), "--gen-length", "8",
             "--steps", "8", "--block-length", "8", "--temperature", "1")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["uid"] for r in rows] == ["x", 1] and rows[1]["seed"] == 5


def test_generate_input_missing_field(tiny_path, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "a"}\n{"text": "b"}\n')
    r = _cli("generate", "--model", str(tiny_path), "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2 and "in.jsonl:2" in r.stderr and "prompt" in r.stderr


def test_ls_lists_everything():
    r = _cli("ls")
    assert r.returncode == 0, r.stderr
    for word in ("models", "tasks", "synth_copy", "arena-hard-v0.1", "shift", "span_shift", "pairwise", "tiny"):
        assert word in r.stdout


def test_bf16_on_cpu(tiny_path):
    import torch

    from mdlm_bench.decode.config import DecodeConfig
    from mdlm_bench.decode.sampler import generate
    from mdlm_bench.models import load_model

    m = load_model(tiny_path, dtype="bf16", device="cpu")
    assert m.dtype == torch.bfloat16
    r = generate(m, [[10, 11, 12]], DecodeConfig(gen_length=8, steps=8, block_length=8, temperature=0.5))[0]
    assert len(r.raw_ids) == 8 and m.mask_id not in r.raw_ids


def test_cuda_requested_without_gpu(tiny_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = _cli("generate", "--model", str(tiny_path), "--prompt", "a", "--device", "cuda")
    assert r.returncode == 2 and "--device cpu" in r.stderr


def _subparsers():
    import argparse

    from mdlm_bench.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


OTHER_PROGRAMS_FLAGS = {"--config_file"}  # train's help quotes an accelerate command line


def test_each_help_names_only_flags_it_accepts_and_every_flag_has_help_and_default():
    """`--help` of every subcommand: no flag named that the command does not accept (e.g. the reference
    experiment's flags under sweep), each flag with a help line, and each default stated."""
    import argparse
    import re

    bad = []
    for name, sub in _subparsers().items():
        text = sub.format_help()
        accepted = {opt for a in sub._actions for opt in a.option_strings}
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", text)) - OTHER_PROGRAMS_FLAGS
        bad += [f"{name}: help names {flag}, which it does not accept" for flag in sorted(named - accepted)]
        for a in sub._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            label = a.option_strings[0] if a.option_strings else a.dest
            if not a.help or a.help == argparse.SUPPRESS:
                bad.append(f"{name} {label}: no help line")
                continue
            flag = isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction))
            if a.option_strings and not flag and a.default not in (None, [], argparse.SUPPRESS) \
                    and "default" not in a.help.lower():
                bad.append(f"{name} {label}: default {a.default!r} not stated")
    assert not bad, "\n".join(bad)


def test_sweep_help_has_no_reference_or_single_fraction_flags():
    text = " ".join(_subparsers()["sweep"].format_help().split())
    for flag in ("--report-out", "--reference-config", "--fraction "):
        assert flag not in text, flag
    assert "--fractions" in text and "sweep block" in text
    assert "lm-eval" not in _subparsers()["generate"].format_help()  # generate runs no tasks


def test_report_sweep_flag_leaves_positional_runs_alone():
    from mdlm_bench.cli import build_parser

    args = build_parser().parse_args(["report", "--sweep", "S", "RUN_A", "RUN_B"])
    assert args.sweep == ["S"] and args.runs == ["RUN_A", "RUN_B"]
    args = build_parser().parse_args(["report", "A", "B", "--sweep", "S1", "--sweep", "S2"])
    assert args.sweep == ["S1", "S2"] and args.runs == ["A", "B"]


def test_ls_to_a_pipe_never_cuts_names():
    """Redirected, `ls` prints each table at its own width: every task name and model path whole."""
    from mdlm_bench.benchdata import BENCHES
    from mdlm_bench.models import bundled_models

    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    env.pop("COLUMNS", None)
    out = subprocess.run([sys.executable, "-m", "mdlm_bench", "ls", "tasks"], capture_output=True, text=True,
                         env=env, timeout=120).stdout
    assert "…" not in out
    for name in BENCHES:
        assert f" {name} " in out, name
    out = subprocess.run([sys.executable, "-m", "mdlm_bench", "ls", "models"], capture_output=True, text=True,
                         env=env, timeout=120).stdout
    assert "…" not in out and all(str(p) in out for p in bundled_models().values()), out


def test_progress_columns_show_a_rate_and_eta_even_for_a_task_done_in_one_step():
    import io

    from rich.console import Console

    from mdlm_bench.progress import EtaColumn, RateColumn, make_progress

    progress = make_progress(Console(file=io.StringIO(), width=100))
    task_id = progress.add_task("t", total=8)
    task = progress.tasks[0]
    assert "…" in RateColumn().render(task).plain and "eta …" in EtaColumn().render(task).plain
    progress.start_task(task_id)
    task.start_time -= 2.0  # two seconds in, half done: 2 docs/s and 2 s to go
    progress.update(task_id, completed=4)
    assert RateColumn().render(task).plain.startswith("2.0") and "eta 0:00:02" in EtaColumn().render(task).plain
    progress.update(task_id, completed=8)
    assert "docs/s" in RateColumn().render(task).plain and "-" not in RateColumn().render(task).plain
    assert EtaColumn().render(task).plain.startswith("took ")
