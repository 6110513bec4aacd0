"""MT-Bench single-answer grading (1-10) of both turns, as FastChat's llm_judge does it.

Turn 1 uses single-v1 (single-math-v1 with the GPT-4 reference for math, reasoning and coding), turn 2
the multi-turn variants; prompts come from mt-bench/judge_prompts.jsonl. The rating is read with the
prompt's own output format ("[[rating]]"), first match, single brackets as fallback (FastChat's rule).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List

import numpy as np

from mdlm_bench.benchdata import expect_file, field, load_prompts, read_jsonl_strict
from mdlm_bench.errors import UserError
from mdlm_bench.judge.answers import Item
from mdlm_bench.judge.protocols.base import Game, Parsed, Protocol
from mdlm_bench.judge.scoring import bootstrap_indices
from mdlm_bench.judge.templates import fill, last_match, rating_pattern

# FastChat's judge sampling (not part of judge_prompts.jsonl)
PARAMS = {"temperature": 0.0, "max_tokens": 2048}
NAMES = {(False, 1): "single-v1", (True, 1): "single-math-v1",
         (False, 2): "single-v1-multi-turn", (True, 2): "single-math-v1-multi-turn"}


def _ratio_ci(sums: List[float], counts: List[int], level: float, rounds: int, seed: int) -> List[float]:
    """Percentile CI of sum(ratings) / n(ratings) with questions resampled; sums, counts: [n questions]."""
    s, c = np.asarray(sums, float), np.asarray(counts, float)
    idx = bootstrap_indices(s.size, rounds, seed)
    stat = s[idx].sum(axis=1) / c[idx].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    return [float(np.quantile(stat, alpha)), float(np.quantile(stat, 1.0 - alpha))]


class MTBench(Protocol):
    kind = "single"
    upstream = "lm-sys/FastChat llm_judge (judge_prompts.jsonl from BENCH_DIR)"
    needs_baseline = False
    default_ci_level = 0.95

    def __init__(self, bench, bench_dir, opts):
        super().__init__(bench, bench_dir, opts)
        if bench_dir is None:
            raise UserError("mt-bench needs the benchmark files; pass --bench-dir DIR or set MDLM_BENCH_DATA")
        path = expect_file(bench_dir, "mt-bench", "judge_prompts.jsonl")
        self.path = path
        prompts = {}
        for lineno, row in read_jsonl_strict(path):
            where = f"{path}:{lineno}"
            prompts[field(row, "name", where)] = {
                "system_prompt": field(row, "system_prompt", where, str),
                "prompt_template": field(row, "prompt_template", where, str),
                "patterns": rating_pattern(field(row, "output_format", where, str))
                if row.get("type") == "single" else None}
        missing = [n for n in NAMES.values() if n not in prompts]
        if missing:
            raise UserError(f"{path} lacks the judge prompt '{missing[0]}'; use the published judge_prompts.jsonl")
        self.judge_prompts = prompts

    def prompts(self):
        return load_prompts("mt-bench", self.bench_dir)

    def games(self, item: Item) -> List[Game]:
        if len(item.answer) < len(item.turns):
            raise UserError(f"mt-bench question {item.uid}: the run has {len(item.answer)} answer turn(s) for "
                            f"{len(item.turns)} questions; generate every turn")
        ref = item.reference
        out = []
        for turn in range(1, min(2, len(item.turns)) + 1):
            name = NAMES[(ref is not None, turn)]
            jp = self.judge_prompts[name]
            values = {"question": item.turns[0], "answer": item.answer[0],
                      "question_1": item.turns[0], "answer_1": item.answer[0]}
            if len(item.turns) > 1:
                values.update(question_2=item.turns[1], answer_2=item.answer[1])
            if ref is not None:
                values.update({f"ref_answer_{i + 1}": r for i, r in enumerate(ref)})
            msgs = [{"role": "system", "content": jp["system_prompt"]},
                    {"role": "user", "content": fill(jp["prompt_template"], values, f"{self.path} ({name})")}]
            out.append(Game(item, turn - 1, msgs, dict(PARAMS), {"judge_prompt": name, "turn": turn}))
        return out

    def parse(self, game: Game, text: str, top_logprobs) -> Parsed:
        patterns = self.judge_prompts[game.meta["judge_prompt"]]["patterns"]
        got = None
        for pattern in patterns:  # first pattern that matches, first match (FastChat)
            got = last_match(text, [pattern], pick=0)
            if got is not None:
                break
        if got is None:
            return Parsed(None, None)
        return Parsed(got, float(got))

    def settings(self):
        return {"judge_prompts": str(self.path), "sampling": PARAMS, "prompts_used": sorted(set(NAMES.values()))}

    def summarize(self, items, rows):
        level, o = self.ci_level, self.opts
        games: Dict[tuple, Dict[int, dict]] = defaultdict(dict)
        for r in rows:
            games[(r.get("task"), r["uid"], int(r["seed"]))][int(r["game"])] = r
        # FastChat show_result.display_result_single: a failed turn (score -1) is dropped alone; the average
        # is over every remaining turn judgment
        item_out, per_turn, per_cat = [], defaultdict(list), defaultdict(list)
        sums, counts = [], []
        for it in items:
            g = games.get((it.task, it.uid, it.seed), {})
            got = [g.get(t) for t in range(min(2, len(it.turns)))]
            ratings = {t: float(r["score"]) for t, r in enumerate(got)
                       if r is not None and r["status"] == "ok" and r.get("score") is not None}
            if not ratings:
                continue
            for t, v in ratings.items():
                per_turn[t + 1].append(v)
                per_cat[it.category].append(v)
            sums.append(sum(ratings.values()))
            counts.append(len(ratings))
            item_out.append({"uid": it.uid, "seed": it.seed, "score": float(np.mean(list(ratings.values()))),
                             "task": it.task, "turns_scored": len(ratings)})
        scores = [v for vs in per_turn.values() for v in vs]
        answered = [r for r in rows if r["status"] == "ok"]
        parsed = [r for r in answered if r.get("score") is not None]
        return {
            "score": float(np.mean(scores)) if scores else None,
            "ci": _ratio_ci(sums, counts, level, o.bootstrap_rounds, o.seed) if scores else [None, None],
            "ci_method": "percentile bootstrap over questions (mean over their scored turns)",
            "turns": {str(t): float(np.mean(v)) for t, v in sorted(per_turn.items())},
            "categories": {str(c): float(np.mean(v)) for c, v in sorted(per_cat.items(), key=lambda kv: str(kv[0]))},
            "parse_failure_rate": (len(answered) - len(parsed)) / len(answered) if answered else None,
            "n_items": len(item_out), "n_items_total": len(items), "items": item_out,
        }
