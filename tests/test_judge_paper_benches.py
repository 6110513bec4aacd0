"""WildBench (WB-Score, WB-Reward) and Creative-Writing-Bench v3 through `mdlm-bench judge` and the scripted
loopback server, with hand-computed expectations; and WildBench generation conditioned on the given history."""

import json
import random
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from judge_server import JudgeServer  # noqa: E402
from paper_fixtures import make_creative_writing, make_wildbench, paper_judge  # noqa: E402

from mdlm_bench import cli  # noqa: E402
from mdlm_bench.benchdata import load_prompts  # noqa: E402
from mdlm_bench.judge import wildbench_rules as wb  # noqa: E402

QUALITY = [8, 6, 3, 9, 7, 4]  # the run's answer quality per WildBench prompt (the judge reads the marker)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("MDLM_BENCH_DATA", raising=False)


def _write(run: Path, task: str, prompts, outputs):
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "generations.jsonl", "w") as f:
        for p, out in zip(prompts, outputs):
            row = {"task": task, "uid": p["uid"], "seed": 0, "prompt": p["turns"][0], "output": out}
            f.write(json.dumps(row) + "\n")
    return run


def _args(bench, run, url, *extra):
    return ["judge", "--bench", bench, "--run", str(run), "--judge-base-url", url, "--judge-model", "fake-judge",
            "--judge-api-key-env", "none", "--no-progress", "--timeout", "3", *extra]


def _summary(run, bench):
    return json.loads((run / "judgments" / f"{bench}.summary.json").read_text())


def test_wb_score_end_to_end_hand_computed(tmp_path):
    bench = make_wildbench(tmp_path / "bench")
    prompts = load_prompts("wildbench", bench)
    outs = [f"Answer quality={q}" for q in QUALITY[:5]] + ["  "]  # the last answer is empty
    run = _write(tmp_path / "run", "wildbench", prompts, outs)
    with JudgeServer(responder=paper_judge) as srv:
        assert cli.main(_args("wildbench-score", run, srv.url, "--bench-dir", str(bench))) == 0
        sent = srv.payloads()
    assert len(sent) == 5  # the empty answer is scored 1 without a request
    msg = sent[0]["messages"]
    assert len(msg) == 1 and msg[0]["role"] == "user" and sent[0]["temperature"] == 0.0
    assert sent[0]["max_tokens"] == 1024 and sent[0]["response_format"] == {"type": "json_object"}
    first = next(p["messages"][0]["content"] for p in sent if "quality=8" in p["messages"][0]["content"])
    assert "USER: Hello 0\n\nASSISTANT: GIVEN-ASSISTANT-REPLY-0\n\n" in first and "- Check 0a\n- Check 0b\n" in first
    s = _summary(run, "wildbench-score")
    scores = QUALITY[:5] + [1]
    assert s["mean_score"] == pytest.approx(sum(scores) / 6)
    assert s["adjusted_score"] == pytest.approx((sum(scores) / 6 - 5) * 2)
    # groups from primary + secondary tags; the empty answer (wb5) is left out of the groups
    per = {}
    for i, p in enumerate(prompts[:5]):
        for g in wb.groups([p["extra"]["primary_tag"]] + p["extra"]["secondary_tags"]):
            per.setdefault(g, []).append(scores[i])
    cats = {g: (sum(v) / len(v) - 5) * 2 for g, v in per.items()}
    assert s["categories"] == pytest.approx(cats)
    assert s["score"] == pytest.approx(sum(cats[g] * wb.WEIGHTS[g] for g in cats) / 4.75)
    assert s["ci"][0] <= s["score"] <= s["ci"][1] and s["n_items"] == 6 and s["complete"]
    assert s["upstream"].startswith("allenai/WildBench@") and s["failed_games"] == 0


def test_wb_reward_sides_margin_and_empty_rules(tmp_path):
    bench = make_wildbench(tmp_path / "bench")
    prompts = load_prompts("wildbench", bench)
    long = "x " * 400  # 800 characters longer than the baseline: a plain win by it is a tie at K=500
    outs = ["m quality=7", "m quality=9", f"m quality=6 {long}", "", "m quality=5", "m quality=3"]
    base = ["b quality=5", "b quality=5", "b quality=5", "b quality=5", "b quality=5", "b quality=5"]
    run = _write(tmp_path / "run", "wildbench", prompts, outs)
    bdir = _write(tmp_path / "base", "wildbench", prompts, base)
    with JudgeServer(responder=paper_judge) as srv:
        assert cli.main(_args("wildbench-reward", run, srv.url, "--bench-dir", str(bench), "--baseline",
                              str(bdir))) == 0
        sent = srv.payloads()
    assert len(sent) == 5  # the empty answer gets upstream's verdict without a request
    # eval.py: random.seed(42), then random.random() < 0.5 per row decides that the model is A
    random.seed(42)
    sides = [random.random() < 0.5 for _ in prompts]
    rows = {r["uid"]: r for r in map(json.loads, (run / "judgments" / "wildbench-reward.jsonl").open())}
    assert [rows[p["uid"]]["model_is_a"] for p in prompts] == sides
    assert rows["wb3"]["verdict"] == ("B++" if sides[3] else "A++") and rows["wb3"]["requested"] is False
    s = _summary(run, "wildbench-reward")
    # outcomes: +2 -> win_much, +4 -> win_much, +1 but 800 chars longer -> tie, empty -> excluded (0),
    # 0 -> tie, -2 -> lose_much
    assert s["outcomes"] == {"win_much": 2, "win": 0, "tie": 2, "lose": 0, "lose_much": 1}
    assert s["excluded_pairs"] == 1 and s["score"] == pytest.approx((1 + 1 - 1) / 6)
    with JudgeServer(responder=paper_judge) as srv:  # K = -1: no margin; every judgment comes from the cache
        assert cli.main(_args("wildbench-reward", run, srv.url, "--bench-dir", str(bench), "--baseline",
                              str(bdir), "--length-margin", "-1")) == 0
        assert not srv.payloads()
    s = _summary(run, "wildbench-reward")
    assert s["outcomes"]["win"] == 1 and s["score"] == pytest.approx((1 + 1 + 0.5 - 1) / 6)
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps([{"session_id": p["uid"], "output": [b], "generator": "orig"}
                               for p, b in zip(prompts, base)]))
    with JudgeServer(responder=paper_judge) as srv:
        assert cli.main(_args("wildbench-reward", run, srv.url, "--bench-dir", str(bench), "--baseline",
                              str(ref), "--length-margin", "-1")) == 0
    assert _summary(run, "wildbench-reward")["baseline"] == "file:ref.json (orig)"


def test_creative_writing_v3_end_to_end_hand_computed(tmp_path):
    bench = make_creative_writing(tmp_path / "bench", n=2)
    prompts = load_prompts("creative-writing-bench", bench)
    assert len(prompts) == 2 * 3 and not any("<SEED>" in p["turns"][0] for p in prompts)
    qs = [12, 16, 8, 18, 10, None]
    outs = [f"A story quality={q}" if q is not None else "   " for q in qs]
    run = _write(tmp_path / "run", "creative-writing-bench", prompts, outs)
    with JudgeServer(responder=paper_judge) as srv:
        assert cli.main(_args("creative-writing-v3", run, srv.url, "--bench-dir", str(bench))) == 0
        sent = srv.payloads()
    assert len(sent) == 5 and sent[0]["max_tokens"] == 1000 and sent[0]["temperature"] == 0.0
    text = sent[0]["messages"][0]["content"]
    # the judge sees the base prompt (core/conversation.py formats with base_prompt), the criteria as '- ' lines
    assert "about <SEED>." in text and "- Vivid scenes\n- Logic\n- Stilted" in text
    assert "Lower is better: Stilted" in text
    s = _summary(run, "creative-writing-v3")
    # each piece: criteria q, q and inverted 20 - q -> mean (2q + 20 - q) / 3; the empty piece is not judged
    pieces = [(2 * q + 20 - q) / 3 for q in qs if q is not None]
    assert s["overall_score_0_20"] == round(sum(pieces) / 5, 2)
    assert s["score"] == round(sum(pieces) / 5 * 5, 2) and s["skipped_empty"] == 1 and s["n_items"] == 5
    assert s["ci"][0] - 0.005 <= s["score"] <= s["ci"][1] + 0.005 and s["ci"][0] < s["ci"][1]
    assert s["parse_failure_rate"] == 0.0


def test_bad_input_one_line_exit_2(tmp_path, capsys):
    bench = make_wildbench(tmp_path / "bench")
    prompts = load_prompts("wildbench", bench)
    run = _write(tmp_path / "run", "wildbench", prompts, ["a"] * 6)
    (bench / "wildbench" / "eval_template.score.v2.md").write_text("no placeholders")
    for argv, want in ((_args("wildbench-score", run, "http://127.0.0.1:9/v1", "--bench-dir", str(bench)),
                        "placeholder"),
                       (_args("wildbench-reward", run, "http://127.0.0.1:9/v1", "--bench-dir", str(bench)),
                        "--baseline"),
                       (_args("creative-writing-v3", run, "http://127.0.0.1:9/v1", "--bench-dir", str(bench)),
                        "creative-writing-bench")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and want in err
    make_wildbench(tmp_path / "bench")  # templates back
    bad = tmp_path / "ref.json"
    bad.write_text(json.dumps([{"id": "wb0", "output": "x"}]))
    before = sorted(p.name for p in run.rglob("*"))
    for extra, want in ((["--baseline", str(bad)], "lacks 'session_id'"),
                        (["--baseline", str(tmp_path / "nowhere")], "does not exist")):
        assert cli.main(_args("wildbench-reward", run, "http://127.0.0.1:9/v1", "--bench-dir", str(bench),
                              *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and want in err, err
    assert sorted(p.name for p in run.rglob("*")) == before  # nothing written, nothing lost


def test_wildbench_generation_is_conditioned_on_the_given_history(tiny_path, tmp_path, monkeypatch):
    from mdlm_bench.decode import prompts as dp
    from mdlm_bench.evaluate.run import RunConfig, execute
    from mdlm_bench.io import read_jsonl
    from mdlm_bench.models import load_model

    bench = make_wildbench(tmp_path / "bench", n=2)
    seen = []
    real = dp.generate_many

    def spy(model, prompt_ids, *a, **kw):
        seen.extend(list(map(list, prompt_ids)))
        return real(model, prompt_ids, *a, **kw)

    monkeypatch.setattr(dp, "generate_many", spy)
    cfg = RunConfig(model=str(tiny_path), tasks=["wildbench"], seeds=[0], bench_dir=str(bench),
                    decoding={"gen_length": 8, "steps": 8, "block_length": 8})
    execute(cfg, tmp_path / "run")
    rows = read_jsonl(tmp_path / "run" / "generations.jsonl")
    assert [r["uid"] for r in rows] == ["wb0", "wb1"] and all(isinstance(r["output"], str) for r in rows)
    model = load_model(tiny_path)
    want = model.tokenizer(model.chat_prompt([
        {"role": "user", "content": "Hello 0"}, {"role": "assistant", "content": "GIVEN-ASSISTANT-REPLY-0"},
        {"role": "user", "content": "Now question 0?"}]), add_special_tokens=False)["input_ids"]
    assert want in seen and len(seen) == 2  # one generated reply per prompt: the final one
    text = model.tokenizer.decode(want)
    assert text.index("Hello 0") < text.index("GIVEN-ASSISTANT-REPLY-0") < text.index("Now question 0?")


def test_sweep_judges_every_level_on_paper_benches_and_report_pairs_them(tiny_path, tmp_path):
    from mdlm_bench.evaluate.run import RunConfig
    from mdlm_bench.evaluate.sweep import SweepConfig, execute_sweep, level_dir
    from mdlm_bench.judge.config import JudgeConfig

    bench = make_creative_writing(make_wildbench(tmp_path / "bench", n=2), n=1)
    run = RunConfig(model=str(tiny_path), tasks=["wildbench", "creative-writing-bench"], seeds=[0],
                    bench_dir=str(bench), decoding={"gen_length": 8, "steps": 8, "block_length": 8},
                    perturbation={"operator": "shift", "fraction": 0.0})
    benches = ["wildbench-score", "wildbench-reward", "creative-writing-v3"]
    with JudgeServer(responder=paper_judge) as srv:
        judge = JudgeConfig(base_url=srv.url, model="fake-judge", api_key_env="none", backoff_base_s=0.01)
        summary = execute_sweep(SweepConfig(run=run, fractions=[0.3], judge_benches=benches), tmp_path / "sw",
                                judge=judge)
    lv0, lv1 = summary["levels"]
    assert set(lv0["judged"]) == {"wildbench-score", "creative-writing-v3"}  # single grading on level 0 too
    assert set(lv1["judged"]) == set(benches) and all(v["complete"] for v in lv1["judged"].values())
    assert "level-0" in lv1["judged"]["wildbench-reward"]["baseline"]
    with pytest.raises(Exception, match="did you mean 'wildbench-score'"):
        SweepConfig(run=run, fractions=[0.3], judge_benches=["wildbench-scor"]).validate()
    out = tmp_path / "rep"
    assert cli.main(["report", str(level_dir(tmp_path / "sw", 0.0)), str(level_dir(tmp_path / "sw", 0.3)),
                     "--out", str(out), "--resamples", "200", "--permutations", "200"]) == 0
    text = json.dumps(json.loads((out / "report.json").read_text())["comparisons"])
    assert "judge:wildbench-score" in text and "judge:creative-writing-v3" in text


def test_ls_judges_lists_them_with_what_each_needs(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert cli.main(["ls", "judges"]) == 0
    out = capsys.readouterr().out
    for name, need in (("wildbench-score", "eval_template.score.v2.md"),
                       ("wildbench-reward", "--baseline RUN_DIR|FILE"),
                       ("creative-writing-v3", "negative_criteria.txt")):
        lines = out.splitlines()
        start = next(i for i, ln in enumerate(lines) if f"│ {name} " in ln)
        rows = [lines[start]] + [ln for ln in lines[start + 1:]][:8]
        end = next((k for k, ln in enumerate(rows[1:], 1) if not ln.startswith("│  ")), len(rows))
        block = "".join(ln.split("│")[3] for ln in rows[:end] if ln.count("│") >= 4)  # the needs column
        assert "".join(need.split()) in "".join(block.split()), (name, block)
