"""Creative-Writing-Bench v3 rubric scoring: one judge request per (prompt, iteration) piece, criteria scored
0-20, lower-is-better criteria inverted, piece = mean of its criteria, benchmark = mean of pieces (0-20),
reported x5 on 0-100 as the leaderboard does.

Rules from EQ-bench/creative-writing-bench@e7ab00917c96aeae577e3eeea15eba882be9d5e0: core/scoring.py
(parse_judge_scores_creative, invert_if_negative, compute_creative_scores,
compute_single_benchmark_score_creative) and core/conversation.py (the judge request). That repository
has no license, so nothing of it ships here: the judging prompt and the criteria lists are read from
BENCH_DIR/creative-writing-bench/ at run time. The pairwise Elo stage of upstream is not built.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Dict, List, Sequence

import numpy as np

from mdlm_bench.benchdata import expect_file, load_prompts
from mdlm_bench.errors import UserError
from mdlm_bench.judge.answers import Item
from mdlm_bench.judge.protocols.base import Game, Parsed, Protocol
from mdlm_bench.judge.protocols.wildbench import ci_over_prompts

UPSTREAM = "EQ-bench/creative-writing-bench@e7ab00917c96aeae577e3eeea15eba882be9d5e0"
FOLDER = "creative-writing-bench"
FILES = {"criteria": "creative_writing_criteria.txt", "negative": "negative_criteria.txt",
         "prompt": "creative_writing_judging_prompt.txt"}
SLOTS = ("writing_prompt", "test_model_response", "creative_writing_criteria", "lower_is_better_criteria")
PARAMS = {"temperature": 0.0, "max_tokens": 1000}  # core/conversation.py judge call
SCORE_MAX = 20.0
SCALE = 5.0  # core/scoring.py: eqbench_creative_score = 0..20 average x 5
_PLAIN = re.compile(r"(.*?):\s*(?:Score\s+)?(-?\d+(?:\.\d+)?)")
_BRACKET = re.compile(r"(.*?):\s*\[(-?\d+(?:\.\d+)?)\]")


def parse_scores(text: str) -> Dict[str, float]:
    """{criterion: score} from 'Name: 12', 'Name: Score 12' and 'Name: [12]' lines (the bracket form read
    second, so it wins for a name both forms match); scores above 20 are dropped."""
    out: Dict[str, float] = {}
    for pattern in (_PLAIN, _BRACKET):
        for name, value in pattern.findall(text):
            if float(value) <= SCORE_MAX:
                out[name.strip()] = float(value)
    return out


def piece_score(scores: Dict[str, float], negative: Sequence[str]):
    """Mean of the criteria with lower-is-better ones inverted (20 - s), values above 20 after inversion
    dropped; None when nothing is left (the piece does not count)."""
    vals = [SCORE_MAX - v if k in negative else v for k, v in scores.items()]
    vals = [v for v in vals if v <= SCORE_MAX]
    return sum(vals) / len(vals) if vals else None


def benchmark_score(pieces: Sequence[float]) -> Dict[str, float]:
    avg = sum(pieces) / len(pieces) if pieces else 0.0
    return {"overall_score": round(avg, 2), "eqbench_creative_score": round(avg * SCALE, 2)}


def _lines(path) -> List[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


class CreativeWriting(Protocol):
    kind = "single"
    upstream = UPSTREAM
    needs_baseline = False

    def __init__(self, bench, bench_dir, opts):
        super().__init__(bench, bench_dir, opts)
        if bench_dir is None:
            raise UserError(f"{bench} needs the benchmark files; pass --bench-dir DIR or set MDLM_BENCH_DATA")
        self.paths = {k: expect_file(bench_dir, FOLDER, v) for k, v in FILES.items()}
        self.criteria = _lines(self.paths["criteria"])
        self.negative = _lines(self.paths["negative"])
        self.template = self.paths["prompt"].read_text(encoding="utf-8")
        missing = [s for s in SLOTS if "{" + s + "}" not in self.template]
        if missing:
            raise UserError(f"{self.paths['prompt']} has no placeholder {{{missing[0]}}}; use the published "
                            f"{FILES['prompt']}")

    def run_tasks(self) -> List[str]:
        return ["creative-writing-bench"]

    def prompts(self):
        return load_prompts("creative-writing-bench", self.bench_dir)

    def games(self, item: Item) -> List[Game]:
        text = item.answer[-1].strip()  # upstream stores the generation stripped
        base = (item.extra or {}).get("base_prompt", item.turns[0])  # the judge sees the prompt before <SEED>
        try:
            prompt = self.template.format(writing_prompt=base, test_model_response=text,
                                          creative_writing_criteria="\n".join("- " + c for c in self.criteria),
                                          lower_is_better_criteria=", ".join(self.negative))
        except (KeyError, IndexError, ValueError) as e:
            raise UserError(f"{self.paths['prompt']}: not a str.format template ({e}); use the published "
                            f"file") from None
        # an empty generation is not judged (conversation.py): a fixed empty judgment, no request
        return [Game(item, 0, [{"role": "user", "content": prompt}], dict(PARAMS), {},
                     fixed="" if not text else None)]

    def parse(self, game: Game, text: str, top_logprobs) -> Parsed:
        if game.fixed is not None:
            return Parsed("skipped: empty generation", None, info={"skipped": "empty generation"}, final=True)
        scores = parse_scores(text)
        s = piece_score(scores, self.negative)
        return Parsed(None, None) if s is None else Parsed(f"{s:.4g}", s, info={"criteria": scores})

    def settings(self):
        return {**{k: str(p) for k, p in self.paths.items()}, "sampling": PARAMS, "upstream": UPSTREAM,
                "negative_criteria": self.negative, "scale": f"0-20 piece mean x {SCALE:g}", "elo": "not built"}

    def summarize(self, items, rows):
        games = {(r.get("task"), r["uid"], int(r["seed"])): r for r in rows}
        out = []
        per_cat: Dict[str, List[float]] = defaultdict(list)
        for it in items:
            r = games.get((it.task, it.uid, it.seed))
            if r is None or r["status"] != "ok" or r.get("score") is None:
                continue
            e = it.extra or {}
            s = float(r["score"])
            # the uid of the prompt (not the iteration): CIs resample prompts with all their iterations
            out.append({"uid": it.uid, "seed": it.seed, "task": it.task, "score": s * SCALE, "piece_score": s,
                        "prompt_id": e.get("prompt_id", it.uid), "iteration": e.get("iteration")})
            if it.category:
                per_cat[str(it.category)].append(s * SCALE)
        o, level = self.opts, self.ci_level
        by_prompt = [{**x, "uid": x["prompt_id"]} for x in out]
        ci = ci_over_prompts(by_prompt, lambda xs: float(np.mean([x["piece_score"] for x in xs])) * SCALE,
                             level, o.bootstrap_rounds, o.seed)
        b = benchmark_score([x["piece_score"] for x in out])
        answered = [r for r in rows if r["status"] == "ok" and not (r.get("info") or {}).get("skipped")]
        return {
            "score": b["eqbench_creative_score"] if out else None, "ci": ci,
            "score_name": "Creative Writing v3 (0-100)",
            "headline": "Creative Writing v3 rubric score (0-100): mean piece score (0-20) x 5",
            "overall_score_0_20": b["overall_score"] if out else None,
            "categories": {c: float(np.mean(v)) for c, v in sorted(per_cat.items())},
            "ci_method": "percentile bootstrap over prompts (all their iterations together)",
            "parse_failure_rate": (sum(r.get("score") is None for r in answered) / len(answered)) if answered else None,
            "skipped_empty": sum(1 for r in rows if (r.get("info") or {}).get("skipped")),
            "n_items": len(out), "n_items_total": len(items), "upstream": UPSTREAM, "items": out,
        }
