"""Fast-decoding settings through `run` and `generate`: recorded per row and in the digest; threads; the
synth rows decoded before lm-eval is imported equal the rows lm-eval itself asks for."""

import json
import subprocess
import sys

import pytest

from mdlm_bench.io import read_jsonl
from mdlm_bench.evaluate.run import RunConfig, execute
from mdlm_bench.evaluate.rows import without_timing

DEC = {"gen_length": 16, "steps": 16, "block_length": 8}


def _cfg(model, **dec):
    return RunConfig(model=str(model), tasks=["synth_copy", "synth_reverse"], limit=2, decoding={**DEC, **dec},
                     seeds=[0])


def test_cache_and_parallel_recorded_in_rows_and_digest(tiny_path, tmp_path):
    plain, fast = _cfg(tiny_path), _cfg(tiny_path, cache="dual", parallel="factor", factor=2.0)
    assert plain.digest() != fast.digest()
    # fields at their defaults stay out of the digest (run directories made before them keep theirs)
    assert "cache" not in plain.decode_config().digest_dict()
    execute(fast, tmp_path / "run")
    rows = read_jsonl(tmp_path / "run" / "generations.jsonl")
    assert len(rows) == 4
    for r in rows:
        assert r["decoding"]["cache"] == "dual" and r["decoding"]["parallel"] == "factor"
        assert r["decoding"]["factor"] == 2.0 and r["digest"] == fast.digest()
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["config"]["decoding"]["cache"] == "dual"


def test_synth_rows_decoded_first_equal_lm_eval_rows(tiny_path, tmp_path, monkeypatch):
    import mdlm_bench.evaluate.rows as rows
    import mdlm_bench.evaluate.tasks as tasks

    cfg = _cfg(tiny_path, cache="prefix")
    execute(cfg, tmp_path / "first")
    calls = []
    monkeypatch.setattr(rows, "predecode", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(tasks, "known", lambda names: False)  # names resolved by lm-eval's task manager too
    execute(cfg, tmp_path / "lm_eval")
    a = read_jsonl(tmp_path / "first" / "generations.jsonl")
    b = read_jsonl(tmp_path / "lm_eval" / "generations.jsonl")
    assert calls and len(a) == 4 and without_timing(a) == without_timing(b)


def test_synth_catalogue_matches_lm_eval():
    from mdlm_bench.evaluate.tasks import synth_tasks
    from mdlm_bench.evaluate.tasks import lm_eval_tasks

    cat = synth_tasks()
    names = {t.name for t in lm_eval_tasks()}
    assert {n for n in cat} <= names and len([n for n in cat if "tasks" not in cat[n]]) == 7
    assert cat["synth"]["tasks"][0] == "synth_copy"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mdlm_bench", *args], capture_output=True, text=True)


def test_generate_flags_and_threads(tiny_path):
    r = _cli("generate", "--model", str(tiny_path), "--prompt", "copy: ab", "--gen-length", "16",
             "--block-length", "8", "--cache", "prefix", "--parallel", "topk", "--parallel-k", "4",
             "--threads", "1", "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["settings"]["cache"] == "prefix" and row["settings"]["parallel_k"] == 4 and row["nfe"] == 4


@pytest.mark.parametrize("args,msg", [
    (["--threads", "0"], "--threads must be at least 1"),
    (["--cache", "dulal"], "did you mean 'dual'"),
    (["--parallel-k", "3"], "add --parallel topk"),
])
def test_bad_flags(tiny_path, args, msg):
    r = _cli("generate", "--model", str(tiny_path), "--prompt", "x", *args)
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr


def test_apply_threads():
    import torch

    from mdlm_bench.commands._common import apply_threads, default_threads

    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 and default_threads() >= 1
    finally:
        torch.set_num_threads(before)
