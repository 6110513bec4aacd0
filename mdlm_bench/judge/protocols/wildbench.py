"""WildBench v2: WB-Score (one answer graded 1-10 against the task's checklist) and WB-Reward (one pairwise
game against a baseline, sides drawn as upstream draws them), scored as the leaderboard scores them.

Rules: mdlm_bench/judge/wildbench_rules.py. Templates: BENCH_DIR/wildbench/eval_template.{score,pairwise}.v2.md
(allenai/WildBench evaluation/). The run's rows hold only the final reply (generated after the given history).
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from mdlm_bench.benchdata import expect_file, load_hub, load_prompts, read_json_strict, read_jsonl_strict
from mdlm_bench.errors import UserError
from mdlm_bench.judge import wildbench_rules as wb
from mdlm_bench.judge.answers import Item
from mdlm_bench.judge.protocols.base import Game, Parsed, Protocol
from mdlm_bench.judge.scoring import bootstrap_indices

TEMPLATES = {"score": ("eval_template.score.v2.md", ("history", "user_query", "model_output", "checklist")),
             "pairwise": ("eval_template.pairwise.v2.md",
                          ("history", "user_query", "candidate_A", "candidate_B", "checklist"))}


def _template(bench_dir: Optional[Path], mode: str, bench: str) -> tuple:
    if bench_dir is None:
        raise UserError(f"{bench} needs the benchmark files; pass --bench-dir DIR or set MDLM_BENCH_DATA")
    name, slots = TEMPLATES[mode]
    path = expect_file(bench_dir, "wildbench", name)
    text = path.read_text(encoding="utf-8")
    missing = [s for s in slots if "{$" + s + "}" not in text]
    if missing:
        raise UserError(f"{path} has no placeholder {{${missing[0]}}}; use allenai/WildBench's evaluation/{name}")
    return path, text


def wildbench_prompts(bench_dir: Path) -> List[dict]:
    """The v2 rows: BENCH_DIR/wildbench/*.jsonl|*.json, else the pinned hub copy (as `mdlm-bench run` reads them)."""
    folder = Path(bench_dir) / "wildbench"
    if any(folder.glob("*.jsonl")) or any(folder.glob("*.json")):
        return load_prompts("wildbench", bench_dir)
    return load_hub("wildbench")


def _tags(item: Item) -> List[str]:
    e = item.extra or {}
    tags = [e.get("primary_tag") or item.category] + list(e.get("secondary_tags") or [])
    try:
        return wb.groups(t for t in tags if t is not None)
    except KeyError as err:
        raise UserError(f"wildbench prompt {item.uid}: unknown task tag {err}; use the published v2 rows") from None


def ci_over_prompts(items: List[dict], stat: Callable[[List[dict]], Optional[float]], level: float, rounds: int,
                    seed: int) -> List[Optional[float]]:
    """Percentile CI of stat(items) with prompts (uids, all their seeds together) resampled."""
    by_uid: Dict[str, List[dict]] = defaultdict(list)
    for it in items:
        by_uid[it["uid"]].append(it)
    groups = list(by_uid.values())
    if not groups:
        return [None, None]
    vals = [stat([x for j in idx for x in groups[j]]) for idx in bootstrap_indices(len(groups), rounds, seed)]
    vals = [v for v in vals if v is not None]
    if not vals:
        return [None, None]
    a = (1.0 - level) / 2.0
    return [float(np.quantile(vals, a)), float(np.quantile(vals, 1.0 - a))]


def _by_key(rows: List[dict]) -> Dict[tuple, dict]:
    return {(r.get("task"), r["uid"], int(r["seed"])): r for r in rows}


def _parse_failures(rows: List[dict]) -> Optional[float]:
    answered = [r for r in rows if r["status"] == "ok"]
    return sum(r.get("score") is None for r in answered) / len(answered) if answered else None


class WildBenchScore(Protocol):
    kind = "single"
    upstream = wb.UPSTREAM
    needs_baseline = False

    def __init__(self, bench, bench_dir, opts):
        super().__init__(bench, bench_dir, opts)
        self.path, self.template = _template(bench_dir, "score", bench)

    def run_tasks(self) -> List[str]:
        return ["wildbench"]

    def prompts(self):
        return wildbench_prompts(self.bench_dir)

    def games(self, item: Item) -> List[Game]:
        e, answer = item.extra or {}, item.answer[-1]
        prompt = wb.score_prompt(self.template, e.get("history") or [], item.turns[-1], answer,
                                 e.get("checklist") or [])
        fixed = wb.empty_score_reply() if answer.strip() == "" else None
        return [Game(item, 0, [{"role": "user", "content": prompt}], dict(wb.PARAMS), {}, fixed=fixed)]

    def parse(self, game: Game, text: str, top_logprobs) -> Parsed:
        s = wb.read_score(text)
        return Parsed(None, None) if s is None else Parsed(f"{s:g}", s)

    def settings(self):
        return {"template": str(self.path), "sampling": wb.PARAMS, "max_words": wb.MAX_WORDS, "upstream": wb.UPSTREAM,
                "empty_answer": "score 1 without a request (eval.py)", "weights": wb.WEIGHTS}

    def summarize(self, items, rows):
        games = _by_key(rows)
        out = []
        for it in items:
            r = games.get((it.task, it.uid, it.seed))
            if r is None or r["status"] != "ok" or r.get("score") is None:
                continue
            kept = not wb.excluded(wb.shorten(it.answer[-1]).strip())
            out.append({"uid": it.uid, "seed": it.seed, "task": it.task, "score": float(r["score"]),
                        "category": it.category, "groups": _tags(it), "in_task_scores": kept})

        def table(xs):
            return wb.score_table([x["score"] for x in xs], [x["in_task_scores"] for x in xs],
                                  [x["groups"] for x in xs])

        def macro(xs):
            return table(xs)["task_macro_score"]

        t = table(out) if out else {}
        o, level = self.opts, self.ci_level
        ci = lambda f: ci_over_prompts(out, f, level, o.bootstrap_rounds, o.seed)  # noqa: E731
        return {
            "score": t.get("task_macro_score"), "ci": ci(macro), "score_name": "WB-Score (task macro)",
            "headline": "WB-Score: task macro of the adjusted (s - 5) * 2 group scores (leaderboard weights)",
            "mean_score": t.get("score"), "adjusted_score": t.get("adjusted_score"),
            "adjusted_score_ci": ci(lambda xs: (float(np.mean([x["score"] for x in xs])) - 5.0) * 2.0),
            "categories": t.get("task_categorized_scores", {}),
            "ci_method": "percentile bootstrap over prompts",
            "parse_failure_rate": _parse_failures(rows), "n_items": len(out), "n_items_total": len(items),
            "upstream": wb.UPSTREAM, "items": out,
        }


class WildBenchReward(Protocol):
    kind = "pairwise"
    upstream = wb.UPSTREAM
    baseline_file = True

    def __init__(self, bench, bench_dir, opts):
        super().__init__(bench, bench_dir, opts)
        self.path, self.template = _template(bench_dir, "pairwise", bench)
        self.k = int(opts.length_margin)
        self._sides: Dict[str, bool] = {}

    def run_tasks(self) -> List[str]:
        return ["wildbench"]

    def prompts(self):
        ps = wildbench_prompts(self.bench_dir)
        rng = random.Random(wb.ASSIGNMENT_SEED)  # one draw per benchmark row, in file order (eval.py)
        self._sides = {p["uid"]: rng.random() < 0.5 for p in ps}  # True: the model under test is A
        return ps

    def published_baseline(self, prompts):
        base = self.opts.baseline
        if base in (None, "published"):
            raise UserError("wildbench-reward compares with a baseline: pass --baseline RUN_DIR (e.g. the original "
                            "model's run) or --baseline FILE (reference outputs [{session_id, output}])")
        path = Path(base)
        rows = read_json_strict(path) if path.suffix == ".json" else [r for _, r in read_jsonl_strict(path)]
        if not isinstance(rows, list):
            raise UserError(f"{path}: expected a list of {{session_id, output, generator}} records; fix the file")
        answers: Dict[str, List[str]] = {}
        for i, r in enumerate(rows):
            if not isinstance(r, dict) or "session_id" not in r or "output" not in r:
                raise UserError(f"{path}: record {i} lacks 'session_id' or 'output'; use WildBench's output format")
            out = r["output"][0] if isinstance(r["output"], list) else r["output"]  # eval.py takes output[0]
            answers[str(r["session_id"])] = [str(out)]
        gen = next((r.get("generator") for r in rows if isinstance(r, dict) and r.get("generator")), None)
        return f"file:{path.name}" + (f" ({gen})" if gen else ""), answers

    def games(self, item: Item) -> List[Game]:
        e = item.extra or {}
        model_is_a = self._sides[item.uid]
        m, b = item.answer[-1], item.baseline[-1]
        a_txt, b_txt = (m, b) if model_is_a else (b, m)
        prompt = wb.pairwise_prompt(self.template, e.get("history") or [], item.turns[-1], a_txt, b_txt,
                                    e.get("checklist") or [])
        return [Game(item, 0, [{"role": "user", "content": prompt}], dict(wb.PARAMS), {"model_is_a": model_is_a},
                     fixed=wb.empty_pairwise_reply(a_txt, b_txt))]

    def parse(self, game: Game, text: str, top_logprobs) -> Parsed:
        choice = wb.read_choice(text)
        if choice is None:
            return Parsed(None, None)
        side, _ = wb.CHOICES[choice]
        score = 0.5 if side is None else float((side == "A") == game.meta["model_is_a"])
        return Parsed(choice, score)

    def settings(self):
        return {"template": str(self.path), "sampling": wb.PARAMS, "max_words": wb.MAX_WORDS, "upstream": wb.UPSTREAM,
                "length_margin_K": self.k, "assignment_seed": wb.ASSIGNMENT_SEED, "weights": wb.WEIGHTS,
                "excluded": "pairs with a truncated or empty answer count in the total, not in any outcome"}

    def summarize(self, items, rows):
        games = _by_key(rows)
        out = []
        for it in items:
            r = games.get((it.task, it.uid, it.seed))
            if r is None or r["status"] != "ok" or r.get("verdict") not in wb.CHOICES:
                continue
            ms, bs = wb.shown(it.answer[-1]).strip(), wb.shown(it.baseline[-1]).strip()
            res = None if wb.excluded(ms) or wb.excluded(bs) else \
                wb.outcome(r["verdict"], bool(r["model_is_a"]), len(ms), len(bs), self.k)
            reward = wb.OUTCOME_REWARD[res] if res else 0.0
            # score in [0, 1] with 0.5 a tie, as for every pairwise judge (report's sign test); linear in reward
            out.append({"uid": it.uid, "seed": it.seed, "task": it.task, "choice": r["verdict"], "outcome": res,
                        "reward": reward, "score": (reward + 1.0) / 2.0, "groups": _tags(it)})

        def table(xs):
            return wb.reward_table([x["outcome"] for x in xs], [x["groups"] for x in xs])

        t = table(out) if out else {o: 0 for o in wb.OUTCOME_REWARD}
        o, level = self.opts, self.ci_level
        ci = lambda f: ci_over_prompts(out, f, level, o.bootstrap_rounds, o.seed)  # noqa: E731
        return {
            "score": t.get("reward"), "ci": ci(lambda xs: table(xs)["reward"]),
            "score_name": f"WB-Reward (K={self.k})",
            "headline": f"WB-Reward (K={self.k}): +1 / +0.5 / 0 / -0.5 / -1 per pair, mean over judged pairs",
            "task_macro_reward": t.get("task_macro_reward"),
            "task_macro_reward_ci": ci(lambda xs: table(xs)["task_macro_reward"]),
            "categories": t.get("task_categorized_rewards", {}),
            "wins": t["win_much"] + t["win"], "ties": t["tie"], "losses": t["lose"] + t["lose_much"],
            "outcomes": {k: t[k] for k in wb.OUTCOME_REWARD}, "excluded_pairs": sum(x["outcome"] is None for x in out),
            "position_consistency": None, "length_margin_K": self.k,
            "item_score": "(reward + 1) / 2: 1 = A++ for the model, 0.5 = tie or excluded, 0 = the baseline's A++",
            "ci_method": "percentile bootstrap over prompts",
            "parse_failure_rate": _parse_failures(rows), "n_items": len(out), "n_items_total": len(items),
            "upstream": wb.UPSTREAM, "items": out,
        }
