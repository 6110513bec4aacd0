"""The judged protocol in one command (`mdlm-bench run --config P`): 3 tiny models x the 5 paper benchmarks and
AlpacaEval x 2 shift levels x 2 seeds on 2 prompts each, judged by a local OpenAI-compatible server with a
deterministic rule; its report against a recomputation from the judgment files, its dry-run plan against the run, kill -9
during generation and during judging, 2 processes (gloo) against 1, and lm-eval's requests over 2 ranks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from judge_server import JudgeServer  # noqa: E402
from protocol_fixtures import BENCHMARKS, hash_judge, make_bench_dir, protocol_yaml, recompute  # noqa: E402

from mdlm_bench.errors import UserError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TIMING = ("timing", "config", "plan")
N_ROWS = 3 * 2 * 2 * (5 * 2 + 3)  # models x levels x seeds x rows (2 prompts each; creative writing: 1 x 3 seeds)


def _env(url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDLM_")}
    env.update({"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "CUDA_VISIBLE_DEVICES": "", "MDLM_JUDGE_BASE_URL": url, "MDLM_JUDGE_MODEL": "fake-judge",
                "TQDM_DISABLE": "1"})
    return env


def _report(out: Path) -> dict:
    r = json.loads((out / "report" / "report.json").read_text())
    return {k: v for k, v in r.items() if k not in TIMING}


@pytest.fixture(scope="module")
def server():
    with JudgeServer(responder=hash_judge, lifetime_s=1800) as srv:
        yield srv


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("protocol")
    bench = make_bench_dir(shared_data, root / "bench")
    return root, bench


@pytest.fixture(scope="module")
def finished(setup, server):
    """One uninterrupted run of the protocol through the CLI, in this process."""
    from mdlm_bench.cli import main

    root, bench = setup
    out = root / "one"
    cfg = protocol_yaml(root / "one.yaml", bench, out)
    old = {k: os.environ.get(k) for k in ("MDLM_JUDGE_BASE_URL", "MDLM_JUDGE_MODEL")}
    os.environ.update({"MDLM_JUDGE_BASE_URL": server.url, "MDLM_JUDGE_MODEL": "fake-judge"})
    n0 = len(server.requests)
    t0 = time.perf_counter()
    try:
        assert main(["run", "--config", str(cfg)]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return {"out": out, "cfg": cfg, "bench": bench, "requests": len(server.requests) - n0,
            "wall": time.perf_counter() - t0}


# --- the config ------------------------------------------------------------------------------------------
def test_protocol_config_is_strict_and_told_apart_from_a_run_config(tmp_path):
    from mdlm_bench.config import from_dict
    from mdlm_bench.evaluate.protocol_config import ProtocolConfig, is_protocol_config, load_protocol

    good = {"models": {"a": "tiny-base", "b": "tiny-ce"}, "original": "a", "focus": "b",
            "benchmarks": {"mt": {"judge": "mt-bench"}}}
    cfg = from_dict(ProtocolConfig, good).validate()
    assert cfg.levels == [0.0, 0.01] and cfg.others() == ["a"]
    assert is_protocol_config(good) and not is_protocol_config({"model": "tiny-ce", "tasks": ["synth"]})
    bad = [({**good, "seed": [0]}, "unknown key"),
           ({**good, "focus": "c"}, "not a model label"),
           ({**good, "benchmarks": {"mt": {"judge": "mt-bench2"}}}, "did you mean 'mt-bench'"),
           ({**good, "benchmarks": {"mt": {"judge": "mt-bench", "baseline": "gpt4"}}}, "baseline 'gpt4'"),
           ({**good, "benchmarks": {"mt": {"judge": "mt-bench", "baseline": "original"}}}, "grades single"),
           ({**good, "benchmarks": {"ah": {"judge": "arena-hard-v2.0"}}}, "compares with a baseline"),
           ({**good, "levels": [1.5]}, "levels"), ({**good, "limit": 0}, "limit"),
           ({**good, "decoding": {"gen_length": 10, "block_length": 4}}, "multiple of block_length")]
    for data, msg in bad:
        with pytest.raises(UserError, match=msg):
            from_dict(ProtocolConfig, data).validate()
    paper = load_protocol(str(REPO / "reports" / "paper.yaml"))
    assert paper.focus == "llada-8b-slack-ctc" and paper.original == "llada-8b-instruct"
    assert paper.decoding == {"gen_length": 1024, "block_length": 32, "steps": 1024} and paper.levels == [0.0, 0.01]
    # a RunConfig YAML still goes the RunConfig way; a protocol config refuses run flags
    from mdlm_bench.cli import main

    (tmp_path / "p.yaml").write_text(json.dumps(good))
    assert main(["run", "--config", str(tmp_path / "p.yaml"), "--tasks", "synth_copy"]) == 2
    (tmp_path / "r.yaml").write_text("model: tiny-ce\ntasks: [synth_copy]\n")
    assert main(["run", "--config", str(tmp_path / "r.yaml"), "--dry-run"]) == 2


# --- the report ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_report_equals_a_recomputation_from_the_judgment_files(finished):
    out = finished["out"]
    rep = json.loads((out / "report" / "report.json").read_text())
    scores = recompute(out, finished["bench"])
    assert [b["benchmark"] for b in rep["benchmarks"]] == list(BENCHMARKS)
    for b in rep["benchmarks"]:
        cells = scores[b["benchmark"]]
        if BENCHMARKS[b["benchmark"]].get("baseline") == "original":  # its own baseline: a tie by definition
            assert ("base", 0.0) not in cells
            cells[("base", 0.0)] = {u: 0.5 for u in cells[("ce", 0.0)]}
        for c in b["cells"]:
            s = cells[(c["model"], c["level"])]
            assert c["n_prompts"] == len(s) >= 2
            assert c["mean"] == pytest.approx(sum(s.values()) / len(s))
        for c in b["comparisons"]:
            a, f = cells[(c["a"], c["level"])], cells[(c["b"], c["level"])]
            keys = sorted(set(a) & set(f))
            assert c["n"] == len(keys) and c["diff"] == pytest.approx(sum(f[k] - a[k] for k in keys) / len(keys))
        for c in b["drop_comparisons"]:
            m, z = c["a"], c["level"]
            keys = sorted(cells[(m, 0.0)])
            da = [cells[(m, 0.0)][k] - cells[(m, z)][k] for k in keys]
            db = [cells[("slack", 0.0)][k] - cells[("slack", z)][k] for k in keys]
            n = len(keys)
            assert c["n"] == n and c["a_drop"] == pytest.approx(sum(da) / n)
            assert c["diff"] == pytest.approx((sum(db) - sum(da)) / n)
        for d in b["drops"]:
            s0, s1 = cells[(d["model"], 0.0)], cells[(d["model"], d["level"])]
            assert d["drop"] == pytest.approx(sum(s0[k] - s1[k] for k in s0) / len(s0))
    # Holm over the whole family of each claim, across benchmarks
    from mdlm_bench.stats import correct_pvalues

    fam = [c for b in rep["benchmarks"] for c in b["comparisons"]]
    assert [c["p_holm"] for c in fam] == pytest.approx(correct_pvalues([c["p"] for c in fam])["holm"])
    assert rep["claims"][0]["family_size"] == 6 * 2 * 2 and rep["claims"][1]["family_size"] == 6 * 2 * 1
    assert "Holm over 24 paired tests" in rep["claims_text"][0]
    md = (out / "report" / "report.md").read_text()
    assert "Claim (a)" in md and "Drop under shift" in md
    # every row records its wall time, and the report totals them
    rows = [json.loads(x) for d in out.glob("*/level-*")
            for x in (d / "generations.jsonl").read_text().split("\n") if x.strip()]
    assert len(rows) == N_ROWS and all(r["wall_s"] > 0 for r in rows)
    assert rep["timing"]["decode_seconds"] == pytest.approx(sum(r["wall_s"] for r in rows))
    assert rep["forwards"]["measured"] == sum(r["nfe"] for r in rows)


@pytest.mark.slow
def test_dry_run_predicts_forwards_exactly_and_time_within_2x(finished, capsys):
    from mdlm_bench.cli import main
    from mdlm_bench.evaluate.plan import calibrate, make_plan, plan_dict
    from mdlm_bench.evaluate.protocol_config import load_protocol

    rep = json.loads((finished["out"] / "report" / "report.json").read_text())
    plan = make_plan(load_protocol(str(finished["cfg"])))
    calibrate(plan)
    d = plan_dict(plan)
    assert d["forwards_exact"] and d["forwards"] == rep["forwards"]["measured"]
    games = [json.loads(x) for f in finished["out"].glob("*/level-*/judgments/*.jsonl")
             for x in f.read_text().split("\n") if x.strip()]
    # the plan counts games; those a protocol settles without asking (empty answers) send no request
    assert d["rows"] == N_ROWS and d["judge_requests"] == len(games)
    assert finished["requests"] == sum(g.get("requested", True) for g in games) <= d["judge_requests"]
    decode = sum(s for b in d["benchmarks"] for s in b["seconds_per_model"].values())
    ratio = decode / rep["timing"]["decode_seconds"]
    print(f"dry-run decode estimate {decode:.2f} s vs measured {rep['timing']['decode_seconds']:.2f} s "
          f"(ratio {ratio:.2f}); whole estimate {d['estimated_seconds']:.1f} s, whole run {finished['wall']:.1f} s",
          file=sys.__stderr__)  # past capsys: seen with -s
    assert 0.5 <= ratio <= 2.0
    capsys.readouterr()
    out2 = finished["out"].parent / "dry"
    assert main(["run", "--config", str(finished["cfg"]), "--dry-run", "--out", str(out2)]) == 0
    printed = capsys.readouterr().out
    assert f"forwards: {d['forwards']:,} exact" in printed and "judge requests" in printed and not out2.exists()


# --- kill -9 ---------------------------------------------------------------------------------------------
def _wait(pred, proc, what, timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def _lines(p: Path) -> int:
    return p.read_bytes().count(b"\n") if p.exists() else 0


@pytest.mark.slow
def test_kill_9_during_generation_then_during_judging_then_rerun_gives_the_same_report(finished, setup):
    root, bench = setup
    out = root / "killed"
    cfg = protocol_yaml(root / "killed.yaml", bench, out)
    cmd = [sys.executable, "-m", "mdlm_bench", "run", "--config", str(cfg)]
    with JudgeServer(responder=hash_judge, latency_s=0.05, lifetime_s=900) as slow:
        env = _env(slow.url)
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        gen = out / "ce" / "level-0" / "generations.jsonl"
        _wait(lambda: _lines(gen) >= 3, proc, "ce's first rows")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = {p: p.read_text().split("\n") for p in out.glob("*/level-*/generations.jsonl")}
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        judged = out / "ce" / "level-0" / "judgments" / "mt-bench.jsonl"
        _wait(lambda: _lines(judged) >= 2, proc, "judging under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sent = len(slow.requests)
        assert not (out / "report" / "report.json").exists()
        r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert sent < finished["requests"] <= len(slow.requests) <= finished["requests"] + 16  # at most the in-flight
        for p, lines in before.items():  # rows finished before the kill are kept as they were, wall time included
            final = set(p.read_text().split("\n"))
            assert all(x in final for x in lines if x.strip() and '#turn' not in x), p
    assert _report(out) == _report(finished["out"])
    # once more: nothing is left to do, nothing is redone
    with JudgeServer(responder=hash_judge, lifetime_s=300) as idle:
        r = subprocess.run(cmd, cwd=root, env=_env(idle.url), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert idle.requests == []
    assert _report(out) == _report(finished["out"])


# --- two processes ---------------------------------------------------------------------------------------
WRAPPER = "import sys\nfrom mdlm_bench.cli import main\nsys.exit(main())\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(script: Path, args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), str(script), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_two_processes_give_the_report_of_one(finished, setup, server):
    root, bench = setup
    out = root / "two"
    cfg = protocol_yaml(root / "two.yaml", bench, out)
    (root / "wrapper.py").write_text(WRAPPER)
    n0 = len(server.requests)
    r = _torchrun(root / "wrapper.py", ["run", "--config", str(cfg)], root, _env(server.url))
    assert r.returncode == 0, r.stderr[-4000:]
    assert len(server.requests) - n0 == finished["requests"]  # judged once, on rank 0
    assert _report(out) == _report(finished["out"])


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
COUNTING = """import json, os, sys
from pathlib import Path
log = Path(sys.argv.pop(1)) / f"rank-{os.environ.get('RANK', '0')}.jsonl"
from mdlm_bench.evaluate.lm_eval_model import MDLMEvalLM
real = MDLMEvalLM.loglikelihood
def counted(self, requests, disable_tqdm=False):
    with open(log, "a") as f:
        f.write(json.dumps({"rank": self.rank, "world": self.world_size, "n": len(requests)}) + "\\n")
    return real(self, requests, disable_tqdm)
MDLMEvalLM.loglikelihood = counted
from mdlm_bench.evaluate.lm_eval import main
sys.exit(main())
"""


@pytest.mark.slow
def test_lm_eval_splits_loglikelihood_requests_over_two_processes(tmp_path):
    rows = [{"prompt": f"copy: w{i}x", "choices": [f"w{i}x", f"w{i}", "zz"], "gold": 0} for i in range(6)]
    (tmp_path / "copy_choice.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "copy_choice.yaml").write_text(MC_TASK.format(data=tmp_path / "copy_choice.jsonl"))
    (tmp_path / "count.py").write_text(COUNTING)
    env = _env("http://127.0.0.1:9/v1")
    model = REPO / "mdlm_bench" / "assets" / "models" / "tiny-ce"
    results = {}
    for n in (1, 2):
        logs = tmp_path / f"logs{n}"
        logs.mkdir()
        args = [str(logs), "--model", "mdlm", "--model_args", f"pretrained={model},mc_num=4,mc_batch_size=16",
                "--tasks", "copy_choice", "--include_path", str(tmp_path), "--device", "cpu",
                "--output_path", str(tmp_path / f"res{n}")]
        if n == 1:
            r = subprocess.run([sys.executable, str(tmp_path / "count.py"), *args], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=600)
        else:
            r = _torchrun(tmp_path / "count.py", args, tmp_path, env)
        assert r.returncode == 0, r.stderr[-4000:]
        calls = {f.stem: [json.loads(x) for x in f.read_text().splitlines()] for f in logs.glob("rank-*.jsonl")}
        results[n] = calls
        res = next((tmp_path / f"res{n}").rglob("results_*.json"))
        results[f"acc{n}"] = json.loads(res.read_text())["results"]["copy_choice"]["acc,none"]
    assert results[1] == {"rank-0": [{"rank": 0, "world": 1, "n": 18}]}
    assert results[2] == {"rank-0": [{"rank": 0, "world": 2, "n": 9}], "rank-1": [{"rank": 1, "world": 2, "n": 9}]}
    assert results["acc2"] == results["acc1"]
