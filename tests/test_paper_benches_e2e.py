"""End to end, offline: the bundled tiny model generates for fixtures of the paper's five benchmarks
(Arena-Hard v2.0 hard-prompt and creative-writing, MT-Bench, WildBench, Creative-Writing-Bench v3); every
bench is judged through the loopback server (one judge process killed with SIGKILL and resumed), and the
report compares the two runs on each judged bench, paired by prompt."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from judge_server import JudgeServer  # noqa: E402
from paper_fixtures import make_creative_writing, make_wildbench, paper_judge  # noqa: E402
from test_judge_protocols import DATA, make_bench  # noqa: E402

from mdlm_bench import cli  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not DATA.is_dir(), reason=f"published benchmark files not found at {DATA}")]
TASKS = ["arena-hard-v2.0-hard-prompt", "arena-hard-v2.0-creative-writing", "mt-bench", "wildbench",
         "creative-writing-bench"]
# bench -> needs --baseline (the unperturbed run)
JUDGED = {"arena-hard-v2.0-hard-prompt": True, "arena-hard-v2.0-creative-writing": True, "mt-bench": False,
          "wildbench-score": False, "wildbench-reward": True, "creative-writing-v3": False}


def _judge(bench, run, url, bench_dir, base, *extra):
    argv = ["judge", "--bench", bench, "--run", str(run), "--judge-base-url", url, "--judge-model", "fake-judge",
            "--judge-api-key-env", "none", "--no-progress", "--bench-dir", str(bench_dir), "--bootstrap-rounds",
            "100", "--bt-rounds", "5", *extra]
    return argv + (["--baseline", str(base)] if JUDGED[bench] else [])


def test_five_paper_benchmarks_generate_judge_resume_report(tiny_path, tmp_path, monkeypatch):
    monkeypatch.delenv("MDLM_BENCH_DATA", raising=False)
    bench = make_bench(tmp_path / "bench", n=2)
    make_wildbench(bench, n=2)
    make_creative_writing(bench, n=1)
    runs = {}
    for name, extra in (("orig", []), ("shift", ["--perturbation", "shift", "--fraction", "0.3"])):
        runs[name] = tmp_path / name
        assert cli.main(["run", "--model", str(tiny_path), "--tasks", ",".join(TASKS), "--bench-dir", str(bench),
                         "--gen-length", "8", "--steps", "8", "--block-length", "8", "--out", str(runs[name]),
                         *extra]) == 0
    rows = [json.loads(line) for line in (runs["shift"] / "generations.jsonl").open()]
    count = {t: sum(r["task"] == t for r in rows) for t in TASKS}
    assert count == {"arena-hard-v2.0-hard-prompt": 1, "arena-hard-v2.0-creative-writing": 1, "mt-bench": 2,
                     "wildbench": 2, "creative-writing-bench": 3}  # one prompt x 3 iterations
    assert not any("<SEED>" in r["prompt"] for r in rows if r["task"] == "creative-writing-bench")

    run, base = runs["shift"], runs["orig"]
    with JudgeServer(responder=paper_judge, latency_s=0.3) as srv:
        # kill -9 the judge midway through MT-Bench (4 games), then resume with the same command
        rows_path = run / "judgments" / "mt-bench.jsonl"
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        proc = subprocess.Popen([sys.executable, "-m", "mdlm_bench", *_judge("mt-bench", run, srv.url, bench, base,
                                                                             "--concurrency", "1")],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (rows_path.exists() and rows_path.read_text().strip()):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 1 <= len(rows_path.read_text().splitlines()) < 4
        srv.latency_s = 0.0
        for b in JUDGED:
            assert cli.main(_judge(b, run, srv.url, bench, base)) == 0, b
        for b in ("mt-bench", "wildbench-score", "creative-writing-v3"):  # single grading of the baseline run too
            assert cli.main(_judge(b, base, srv.url, bench, base)) == 0, b
    mt = [json.loads(line) for line in rows_path.open()]
    assert len(mt) == 4 and len({r["key"] for r in mt}) == 4 and all(r["status"] == "ok" for r in mt)
    for b in JUDGED:
        s = json.loads((run / "judgments" / f"{b}.summary.json").read_text())
        assert s["complete"] and s["failed_games"] == 0 and s["n_items"] == s["n_items_total"] > 0, b
        assert "ci" in s and s["provenance"] and s["bench"] == b and s["upstream"], b
        if b in ("wildbench-score", "wildbench-reward", "creative-writing-v3"):
            assert s["score"] is not None and len(s["upstream"].split("@")[1]) == 40, b  # pinned commit
    assert cli.main(["report", str(base), str(run), "--out", str(tmp_path / "rep"), "--resamples", "200",
                     "--permutations", "200", "--label", "orig", "shift"]) == 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    judged = {j["bench"] for j in rep["judge"]}
    assert set(JUDGED) <= judged
    text = json.dumps(rep["comparisons"])
    for b in ("wildbench-score", "creative-writing-v3", "mt-bench"):
        assert f"judge:{b}" in text
