"""Fixtures of the judged-protocol tests: a benchmark directory in the upstream layouts holding the shortest
real prompts of ../shared/data (tiny models decode them fast), a deterministic judge rule, the protocol
config, and an independent recomputation of per-prompt scores from the judgment files."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Dict

from judge_server import _prompt_text
from paper_fixtures import make_creative_writing, make_wildbench

PAIRWISE = ("[[A>>B]]", "[[A>B]]", "[[A=B]]", "[[B>A]]", "[[B>>A]]")


def hash_judge(payload):
    """A verdict read off the SHA-256 of the request's messages: deterministic, differs across answers."""
    text = json.dumps(payload.get("messages"), sort_keys=True, ensure_ascii=False)
    h = int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)
    first = _prompt_text(payload)
    if first.startswith("WB-SCORE-FIXTURE"):  # WildBench fixture templates (tests/paper_fixtures.py)
        return json.dumps({"strengths": "s", "weaknesses": "w", "score": str(h % 10 + 1)}), None
    if first.startswith("CW-FIXTURE"):
        names = re.findall(r"^- (.+)$", first.split("Criteria:", 1)[1], re.M)
        return "[Notes]\nfine.\n\n[Ratings]\n" + "\n".join(f"{n}: {(h >> (5 * i)) % 21}"
                                                             for i, n in enumerate(names)) + "\n", None
    if payload.get("logprobs"):
        p = 0.05 + 0.9 * (h % 997) / 996
        top = sorted([("m", math.log(p)), ("M", math.log(1 - p)), ("The", -30.0)], key=lambda t: -t[1])
        return top[0][0], top
    if "[[rating]]" in text:
        return f"Judged. Rating: [[{h % 10 + 1}]]", None
    return f"Judged. My final verdict is {PAIRWISE[h % 5]}", None


def _shortest(rows, n, length):
    return sorted(rows, key=length)[:n]


def make_bench_dir(shared: Path, dest: Path, n: int = 2) -> Path:
    """dest/<bench>/... with the n shortest prompts of each set, files otherwise as published."""
    ah = dest / "arena-hard-v2.0"
    ah.mkdir(parents=True)
    rows = [json.loads(x) for x in (shared / "arena-hard-v2.0" / "question.jsonl").read_text().split("\n") if x.strip()]
    keep = []
    for cat in ("hard_prompt", "creative_writing"):
        keep += _shortest([r for r in rows if r["category"] == cat], n, lambda r: len(r["prompt"]))
    (ah / "question.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep))
    for f in ("judge_config.yaml", "judge_settings.json"):
        shutil.copy(shared / "arena-hard-v2.0" / f, ah / f)
    mt = dest / "mt-bench"
    mt.mkdir()
    qs = [json.loads(x) for x in (shared / "mt-bench" / "question.jsonl").read_text().split("\n") if x.strip()]
    picked = _shortest(qs, n, lambda r: sum(len(t) for t in r["turns"]))
    (mt / "question.jsonl").write_text("".join(json.dumps(r) + "\n" for r in picked))
    for f in ("reference_answer_gpt-4.jsonl", "judge_prompts.jsonl"):
        shutil.copy(shared / "mt-bench" / f, mt / f)
    ae = dest / "alpaca-eval"
    ae.mkdir()
    recs = json.loads((shared / "alpaca-eval" / "gpt4_1106_preview_outputs.json").read_text())
    (ae / "gpt4_1106_preview_outputs.json").write_text(json.dumps(_shortest(recs, n, lambda r: len(r["instruction"]))))
    for f in ("weighted_alpaca_eval_gpt4_turbo.yaml", "alpaca_eval_clf.txt"):
        shutil.copy(shared / "alpaca-eval" / f, ae / f)
    make_wildbench(dest, n=n)  # WildBench v2 and Creative-Writing-Bench v3 layouts, our own template text
    make_creative_writing(dest, n=1)  # one prompt, three seed iterations
    return dest


BENCHMARKS = {
    "ah-hard-prompt": {"judge": "arena-hard-v2.0-hard-prompt", "baseline": "original"},
    "ah-creative-writing": {"judge": "arena-hard-v2.0-creative-writing", "baseline": "original"},
    "mt-bench": {"judge": "mt-bench"},
    "wildbench": {"judge": "wildbench-score"},
    "creative-writing-v3": {"judge": "creative-writing-v3"},
    "alpaca-eval": {"judge": "alpaca-eval", "baseline": "published"},
}
SCALE = {"creative-writing-v3": 5.0}  # EQ-Bench's creative score: the 0-20 piece mean x 5
DECODING = {"gen_length": 8, "steps": 8, "block_length": 8}


def protocol_yaml(path: Path, bench_dir: Path, out: Path) -> Path:
    import yaml

    cfg = {"models": {"base": "tiny-base", "ce": "tiny-ce", "slack": "tiny-slack-ctc"}, "original": "base",
           "focus": "slack", "benchmarks": BENCHMARKS, "levels": [0.0, 0.25], "seeds": [0, 1],
           "decoding": DECODING, "batch_size": 8, "bench_dir": str(bench_dir), "judge": {"api_key_env": "none"},
           "out": str(out)}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def recompute(out: Path, bench_dir: Path) -> Dict[str, Dict[tuple, Dict[str, float]]]:
    """bench label -> (model, level) -> uid -> score, from the judgment files alone (arena-hard v2.0: the mean
    of both games, a prompt dropped unless both have a verdict; MT-Bench: the mean of the rated turns;
    AlpacaEval and WB-Score: the one game's score; Creative-Writing v3: its piece score x 5), averaged over seeds."""
    out_scores: Dict[str, Dict[tuple, Dict[str, float]]] = {}
    for label, spec in BENCHMARKS.items():
        cells = {}
        for run in sorted(out.glob("*/level-*")):
            model, level = run.parent.name, float(run.name[len("level-"):])
            path = run / "judgments" / f"{spec['judge']}.jsonl"
            if not path.exists():
                continue
            games: Dict[tuple, list] = {}
            for r in (json.loads(x) for x in path.read_text().split("\n") if x.strip()):
                games.setdefault((r["uid"], r["seed"]), []).append(r)
            per_uid: Dict[str, list] = {}
            for (uid, seed), gs in games.items():
                scores = [g["score"] for g in gs if g["status"] == "ok" and g.get("score") is not None]
                if spec["judge"].startswith("arena-hard") and len(scores) < 2:
                    continue
                if scores:
                    per_uid.setdefault(uid, []).append(SCALE.get(spec["judge"], 1.0) * sum(scores) / len(scores))
            cells[(model, level)] = {u: sum(v) / len(v) for u, v in per_uid.items()}
        out_scores[label] = cells
    return out_scores
