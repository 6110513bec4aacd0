"""`mdlm-bench run` and `sweep`: run directories, resume, digests, open-ended sets, level 0 identity."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_bench.edit_distance import edit_distance
from mdlm_bench.errors import UserError
from mdlm_bench.io import read_jsonl
from mdlm_bench.evaluate.run import RunConfig, execute
from mdlm_bench.evaluate.sweep import SweepConfig, execute_sweep
from mdlm_bench.evaluate.rows import without_timing

DEC = {"gen_length": 16, "steps": 16, "block_length": 16}


def _cfg(model, **kw):
    base = dict(model=str(model), tasks=["synth_copy"], limit=3, decoding=dict(DEC), seeds=[0])
    base.update(kw)
    return RunConfig(**base)


def test_run_directory_contents(tiny_path, tmp_path):
    out = tmp_path / "run"
    execute(_cfg(tiny_path, perturbation={"operator": "shift", "fraction": 0.2}), out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["digest"] and "torch" in cfg["provenance"]["versions"] and cfg["config"]["perturbation"]
    rows = read_jsonl(out / "generations.jsonl")
    assert len(rows) == 3
    for r in rows:
        for k in ("task", "uid", "seed", "prompt", "output", "decoding", "perturbation", "events", "nfe",
                  "digest", "metrics", "requested_fraction", "effective_fraction"):
            assert k in r, k
        assert r["metrics"]["exact_match"] in (0.0, 1.0)
    m = json.loads((out / "metrics.json").read_text())
    assert m["tasks"]["synth_copy"]["exact_match"]["n"] == 3


def test_resume_skips_done_rows_and_never_duplicates(tiny_path, tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = _cfg(tiny_path, seeds=[0, 1])
    execute(cfg, out)
    first = (out / "generations.jsonl").read_text()
    # tear the file: drop one row and leave half a line, as a kill -9 would
    lines = first.splitlines()
    (out / "generations.jsonl").write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:30])
    import mdlm_bench.decode.prompts as prompts

    calls = []
    real = prompts.generate_many

    def counting(model, ids, *a, **k):
        calls.append(len(ids))
        return real(model, ids, *a, **k)

    monkeypatch.setattr(prompts, "generate_many", counting)
    execute(cfg, out)
    assert sum(calls) == 2  # only the torn row and the dropped row are decoded again
    assert without_timing([json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines()]) == \
        without_timing([json.loads(x) for x in first.splitlines()])  # redone rows have their own wall_s


def test_other_config_refused_unless_overwrite(tiny_path, tmp_path):
    out = tmp_path / "run"
    execute(_cfg(tiny_path), out)
    before = (out / "generations.jsonl").read_text()
    with pytest.raises(UserError, match="another config"):
        execute(_cfg(tiny_path, decoding={**DEC, "remasking": "margin"}), out)
    assert (out / "generations.jsonl").read_text() == before
    execute(_cfg(tiny_path, decoding={**DEC, "remasking": "margin"}), out, overwrite=True)
    assert all(r["decoding"]["remasking"] == "margin" for r in read_jsonl(out / "generations.jsonl"))


def test_limit_and_seeds_extend_a_run(tiny_path, tmp_path):
    out = tmp_path / "run"
    execute(_cfg(tiny_path, limit=2), out)
    execute(_cfg(tiny_path, limit=3, seeds=[0, 1]), out)
    keys = [(r["uid"], r["seed"]) for r in read_jsonl(out / "generations.jsonl")]
    assert len(keys) == len(set(keys)) == 6


def test_open_ended_multi_turn(tiny_path, tmp_path, shared_data):
    out = tmp_path / "mt"
    execute(_cfg(tiny_path, tasks=["mt-bench", "arena-hard-v0.1"], limit=2, bench_dir=str(shared_data)), out)
    rows = read_jsonl(out / "generations.jsonl")
    mt = [r for r in rows if r["task"] == "mt-bench"]
    assert len(mt) == 2 and all(len(r["prompt"]) == 2 == len(r["output"]) for r in mt)
    assert {r["uid"] for r in mt} == {"81", "82"}  # MT-Bench's own question ids
    ah = [r for r in rows if r["task"] == "arena-hard-v0.1"]
    assert [r["uid"] for r in ah] == ["328c149ed45a41c0b9d6f14659e63599", "b43c07656ead4150b360294ee932b410"]
    assert not any("#turn" in r["task"] for r in rows)


def test_missing_bench_dir(tiny_path, tmp_path, monkeypatch):
    monkeypatch.delenv("MDLM_BENCH_DATA", raising=False)
    with pytest.raises(UserError, match="--bench-dir.*MDLM_BENCH_DATA"):
        execute(_cfg(tiny_path, tasks=["mt-bench"]), tmp_path / "x")


def test_unknown_task(tiny_path, tmp_path):
    with pytest.raises(UserError, match="did you mean 'synth_copy'"):
        execute(_cfg(tiny_path, tasks=["synth_cpy"]), tmp_path / "x")


def test_sweep_level_zero_is_byte_identical(tiny_path, tmp_path):
    plain = tmp_path / "plain"
    execute(_cfg(tiny_path, seeds=[0, 1]), plain)
    sw = tmp_path / "sweep"
    cfg = _cfg(tiny_path, seeds=[0, 1], perturbation={"operator": "shift", "fraction": 0.0})
    summary = execute_sweep(SweepConfig(run=cfg, fractions=[0.1, 0.3]), sw)
    base = {(r["uid"], r["seed"]): r for r in read_jsonl(plain / "generations.jsonl")}
    lvl0 = {(r["uid"], r["seed"]): r for r in read_jsonl(sw / "level-0" / "generations.jsonl")}
    # Greedy and unperturbed: level 0 decodes seed 0 only; the other seeds are identical by construction,
    # which the plain run (both seeds decoded) confirms.
    assert set(lvl0) == {k for k in base if k[1] == 0}
    for (uid, seed) in base:
        ref = lvl0[(uid, 0)]
        assert base[(uid, seed)]["output"] == ref["output"] and base[(uid, seed)]["token_ids"] == ref["token_ids"]
    assert summary["levels"][0]["seeds"] == [0] and summary["levels"][0]["seeds_identical_by_construction"] == [1]
    assert summary["levels"][1]["rows"] == 2 * summary["levels"][0]["rows"]  # both seeds where perturbed
    assert [lv["fraction"] for lv in summary["levels"]] == [0.0, 0.1, 0.3]
    assert summary["levels"][0]["edit_distance"]["mean"] == 0 and summary["levels"][0]["unchanged_rate"] == 1
    assert summary["levels"][2]["effective_fraction"] > 0.2
    assert (sw / "sweep.png").stat().st_size > 1000
    # resume: a second call decodes nothing and writes the same summary
    again = execute_sweep(SweepConfig(run=cfg, fractions=[0.1, 0.3]), sw)
    assert again == summary


def _brute_edit(a, b):
    """Shortest edit script by breadth-first search over sequences (tiny inputs only)."""
    from collections import deque

    alphabet = sorted(set(a) | set(b))
    seen, q = {tuple(a): 0}, deque([tuple(a)])
    while q:
        s = q.popleft()
        if s == tuple(b):
            return seen[s]
        nxt = [s[:i] + s[i + 1:] for i in range(len(s))]
        nxt += [s[:i] + (c,) + s[i:] for i in range(len(s) + 1) for c in alphabet]
        nxt += [s[:i] + (c,) + s[i + 1:] for i in range(len(s)) for c in alphabet]
        for t in nxt:
            if t not in seen and len(t) <= max(len(a), len(b)) + 1:
                seen[t] = seen[s] + 1
                q.append(t)


def test_edit_distance_against_search():
    cases = [([], []), ([1], []), ([1, 2, 3], [1, 3]), ([1, 2], [2, 1]), ([1, 1, 2], [2, 1, 1])]
    cases += [(list(a), list(b)) for a, b in itertools.product(itertools.product([0, 1], repeat=3), repeat=2)][:20]
    for a, b in cases:
        assert edit_distance(a, b) == _brute_edit(a, b), (a, b)
    assert edit_distance([1, 2, 3, 4], [2, 3, 4, 1]) == 2  # a one-slot displacement costs two edits


def test_cli_run_bad_inputs_exit_2(tiny_path, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "mdlm_bench", *args], capture_output=True, text=True,
                              cwd=tmp_path)

    for args, msg in [
        (["run", "--model", str(tiny_path), "--tasks", "synth_cpy"], "did you mean"),
        (["run", "--model", str(tiny_path), "--tasks", "synth_copy", "--perturbation", "shfit"], "did you mean"),
        (["run", "--model", str(tiny_path), "--tasks", "synth_copy", "--perturbation", "shift", "--fraction", "2"],
         "fraction"),
        (["run", "--model", str(tmp_path / "none"), "--tasks", "synth_copy"], "neither a directory"),
        (["sweep", "--model", str(tiny_path), "--tasks", "synth_copy"], "--perturbation"),
    ]:
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip().count("\n") == 0 and msg in r.stderr and "Traceback" not in r.stderr


def test_sweep_judges_levels_against_level_zero(tiny_path, tmp_path):
    from judge_server import JudgeServer

    from mdlm_bench.judge.config import JudgeConfig

    cfg = _cfg(tiny_path, limit=2, perturbation={"operator": "shift", "fraction": 0.0})
    with JudgeServer() as srv:
        judge = JudgeConfig(base_url=srv.url, model="fake-judge", api_key_env="none", backoff_base_s=0.01)
        summary = execute_sweep(SweepConfig(run=cfg, fractions=[0.2]), tmp_path / "sw", judge=judge)
        n_requests = len(srv.requests)
    lv = summary["levels"][1]["judge_vs_level0"]
    assert n_requests == 2 * 2  # two prompts, both orders
    assert lv["complete"] and lv["position_consistency"] is not None and 0.0 <= lv["score"] <= 1.0
    assert (tmp_path / "sw" / "level-0.2" / "judgments" / "pairwise.summary.json").exists()
    assert "judge_vs_level0" not in summary["levels"][0]


def test_reference_experiment_end_to_end(tiny_path, tmp_path, capsys, monkeypatch):
    """The no-argument run on a miniature config: sweeps, paired report, judge hint."""
    import argparse

    from rich.console import Console

    from mdlm_bench.evaluate.reference import ReferenceConfig, run_reference

    monkeypatch.delenv("MDLM_JUDGE_BASE_URL", raising=False)
    ref = ReferenceConfig(models={"a": str(tiny_path), "b": str(tiny_path)}, tasks=["synth_copy"], limit=2,
                          perturbation="shift", fractions=[0.0, 0.2], seeds=[0, 1], decoding=dict(DEC),
                          out=str(tmp_path / "ref"), report_out=str(tmp_path / "ref" / "report"))
    console = Console(file=__import__("io").StringIO(), width=200)
    assert run_reference(argparse.Namespace(), console, ref) == 0
    report = json.loads((tmp_path / "ref" / "report" / "report.json").read_text())
    labels = [(c["label_a"], c["label_b"]) for c in report["comparisons"]]
    assert labels == [("a @0%", "b @0%"), ("a @20%", "b @20%"), ("a @0%", "a @20%"), ("b @0%", "b @20%")]
    # the same checkpoint twice: CE-vs-slack comparisons are exactly equal and never significant
    assert all(b["diff"]["mean"] == 0 and not b["significant"] for b in report["comparisons"][0]["benchmarks"])
    assert (tmp_path / "ref" / "report" / "report.html").stat().st_size > 10_000
    assert "judge-based parts skipped" in console.file.getvalue()
    headline = json.loads((tmp_path / "ref" / "report" / "headline.json").read_text())
    assert [c["comparison"] for c in headline["comparisons"]] == [
        "a → b, both @0%", "a → b, both @20%", "a: 0% → 20%", "b: 0% → 20%"]
    assert headline["comparisons"][0]["diff"] == 0 and not headline["comparisons"][0]["significant"]
    assert all(c["n"] == c["prompts"] == 2 for c in headline["comparisons"])
    # Greedy and unperturbed: level 0 decodes seed 0 only, and still pairs with both seeds of level 20%.
    sweep = json.loads((tmp_path / "ref" / "a" / "sweep.json").read_text())
    assert sweep["deterministic"] and sweep["levels"][0]["seeds"] == [0]
    assert sweep["levels"][0]["seeds_identical_by_construction"] == [1] and sweep["levels"][1]["seeds"] == [0, 1]
    assert sweep["levels"][0]["rows"] == 2 and sweep["levels"][1]["rows"] == 4
    assert "content_moves" in sweep["levels"][1] and sweep["levels"][0]["content_moves"] == 0
    own = [c for c in headline["comparisons"] if c["comparison"] == "a: 0% → 20%"][0]
    assert (own["rows_a"], own["rows_b"]) == (2, 4)
    assert headline["drops_family"]["power"]["tests"] == 1 and "mdd" in headline["drops"][0]
    assert [c["comparison"] for c in headline["drops"]] == ["drop @20%: a → b"] and headline["drops"][0]["diff"] == 0
    assert [c["verdict"] for c in headline["claims"]] == ["does not hold", "does not hold"]
    # The report leads with a verdict box per claim, then the plot, the pooled table, the drops, the findings.
    assert report["drops"] == headline["drops"] and len(report["claims"]) == 2
    assert [v["verdict"] for v in report["verdicts"]] == ["does not hold", "does not hold"]
    assert [r["ref"] for r in report["verdicts"][1]["rows"]] == ["/drops/0"]
    for name in ("report.html", "report.md"):
        text = (tmp_path / "ref" / "report" / name).read_text()
        assert (text.index("Claim (a): b beats a") < text.index("Claim (b): b is more robust to shift")
                < text.index("Pooled over tasks") < text.index("Drop under shift") < text.index("Findings"))
    out = capsys.readouterr().out  # not a terminal: 100 columns, no stray blank lines, each row on one line
    assert not out.startswith("\n") and max(len(line) for line in out.splitlines()) <= 100, out[:200]
    assert any("a: 0% → 20%" in line and "n.s." in line for line in out.splitlines()), out
