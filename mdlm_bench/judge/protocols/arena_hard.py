"""Arena-Hard (v0.1; v2.0 hard-prompt and creative-writing): two swapped pairwise games per prompt.

Everything the judge sees comes from the benchmark folder: judge_config.yaml (template, regex, sampling,
v0.1 system prompt and baseline) and, for v2.0, judge_settings.json (system prompt and baseline per
category). Game 0 puts the baseline in position A, game 1 puts the run's model there, as upstream.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from mdlm_bench.benchdata import expect_file, load_prompts
from mdlm_bench.config import load_yaml
from mdlm_bench.errors import UserError
from mdlm_bench.judge import scoring
from mdlm_bench.judge.answers import Item, arena_hard_baseline_file, read_answer_file
from mdlm_bench.judge.protocols.base import Game, Parsed, Protocol
from mdlm_bench.judge.templates import fill, verdict_labels

# arena-hard v0.1 asks again with this message when a reply carries no verdict (gen_judgment.py)
CONTINUE = "continue your judgment and finish by outputting a final verdict label"


def _need(cfg: Any, key: str, path: Path) -> Any:
    if not isinstance(cfg, dict) or key not in cfg:
        raise UserError(f"{path}: missing setting '{key}'; use the benchmark's published judge config")
    return cfg[key]


def parse_verdict(text: str, patterns: List[str], model_is_a: bool, allowed=None) -> Parsed:
    """One pairwise verdict from a judge reply. Two or more distinct labels = no verdict and no follow-up
    (arena-hard v0.1 gen_judgment.get_score returns None for them); a label the scorer does not know
    (e.g. 'A<B' for v0.1) = no verdict."""
    labels = verdict_labels(text, patterns)
    if len(labels) > 1:
        return Parsed(None, None, 1, {"conflicting_labels": labels}, final=True)
    label = labels[0] if labels else None
    got = scoring.label_score(label, model_is_a, allowed)
    if got is None:  # a label the scorer ignores still ends the judgment (get_score found one)
        return Parsed(None, None, 1, {"raw_label": label}, final=label is not None)
    return Parsed(label, got[0], got[1])


def _outcome(score: float) -> int:
    return 1 if score > 0.5 else (-1 if score < 0.5 else 0)


def _score_battles(y: List[float], model_txt: List[str], base_txt: List[str], level: float, rounds: int,
                   bt_rounds: int, style: str, seed: int, rule: str) -> Dict[str, Any]:
    yv = np.asarray(y, float)
    out: Dict[str, Any] = {"score": float(yv.mean()) if yv.size else None,
                           "ci": list(scoring.bootstrap_mean_ci(yv, level, rounds, seed)) if yv.size else [None, None],
                           "n_battles": int(yv.size)}
    counter, counter_name = scoring.token_counter(rule) if style != "none" else (None, None)  # tokenizer only if used
    feats = scoring.style_features(model_txt, base_txt, style, rule, counter) if yv.size and style != "none" else None
    bt = scoring.bradley_terry(yv, feats, level, bt_rounds, seed, rule)
    bt["style_control"] = style
    if style != "none":
        bt["style_rule"] = f"arena-hard {rule}"
        bt["token_counter"] = counter_name
    out["bt"] = bt
    return out


def summarize_pairwise(items: List[Item], rows: List[dict], level: float, rounds: int, bt_rounds: int,
                       style: str, seed: int, drop: str = "prompt", rule: str = "v2.0",
                       by_category: bool = False) -> Dict[str, Any]:
    """Arena-Hard-style scoring of two-game items.

    drop="prompt": an item counts only when both games gave a verdict (v2.0 show_result.load_judgments);
    drop="game": a failed game is dropped alone (v0.1 show_result.get_battles_from_row). by_category:
    every category is scored on its own (v2.0 reports per category, each against its own baseline) and
    the headline score is None unless there is one category; the pooled figure is a labelled extra.
    The parse-failure rate counts games.
    """
    games: Dict[tuple, Dict[int, dict]] = defaultdict(dict)
    for r in rows:
        games[(r.get("task"), r["uid"], int(r["seed"]))][int(r["game"])] = r
    answered = [r for r in rows if r["status"] == "ok"]
    parsed = [r for r in answered if r.get("score") is not None]
    ok = lambda r: r is not None and r["status"] == "ok" and r.get("score") is not None  # noqa: E731
    pooled: Dict[str, list] = {"y": [], "m": [], "b": []}
    cats: Dict[Any, Dict[str, list]] = defaultdict(lambda: {"y": [], "m": [], "b": []})
    item_out, agree = [], []
    for it in items:
        g = games.get((it.task, it.uid, it.seed), {})
        pair = [g.get(0), g.get(1)]
        if all(ok(r) for r in pair):
            agree.append(_outcome(float(pair[0]["score"])) == _outcome(float(pair[1]["score"])))
        elif drop == "prompt" or not any(ok(r) for r in pair):
            continue
        kept = [r for r in pair if ok(r)]
        s = [float(r["score"]) for r in kept]
        item_out.append({"uid": it.uid, "seed": it.seed, "score": float(np.mean(s)), "task": it.task,
                         "games": len(kept)})
        for r in kept:
            w = int(r.get("weight") or 1)
            for dest in (pooled, cats[it.category]):
                dest["y"].extend([float(r["score"])] * w)
                dest["m"].extend(["\n\n".join(it.answer)] * w)
                dest["b"].extend(["\n\n".join(it.baseline or [])] * w)
    outcomes = [_outcome(float(r["score"])) for r in parsed]
    conflicts = sum(1 for r in answered if (r.get("info") or {}).get("conflicting_labels"))
    args = (level, rounds, bt_rounds, style, seed, rule)
    all_scored = _score_battles(pooled["y"], pooled["m"], pooled["b"], *args)
    out: Dict[str, Any] = {
        "score": all_scored["score"], "ci": all_scored["ci"],
        "wins": outcomes.count(1), "ties": outcomes.count(0), "losses": outcomes.count(-1),
        "counted_per": "game", "failed_verdicts_drop": drop,
        "position_consistency": float(np.mean(agree)) if agree else None,
        "parse_failure_rate": (len(answered) - len(parsed)) / len(answered) if answered else None,
        "conflicting_verdicts": conflicts,
        "n_items": len(item_out), "n_items_total": len(items), "n_battles": all_scored["n_battles"],
        "bt": all_scored["bt"], "items": item_out,
    }
    if by_category and len(cats) > 1:
        out["categories"] = {str(c): _score_battles(v["y"], v["m"], v["b"], *args)
                             for c, v in sorted(cats.items(), key=lambda kv: str(kv[0]))}
        out["headline"] = "per category (each against its own baseline, as arena-hard v2.0 reports)"
        out["pooled_extra"] = {"score": out.pop("score"), "ci": out.pop("ci"), "bt": out.pop("bt"),
                               "label": "pooled over categories with different baselines; arena-hard never "
                                        "reports this figure"}
        out["score"], out["ci"], out["bt"] = None, [None, None], None
    elif len(cats) > 1:
        out["categories"] = {str(c): {"score": float(np.mean(v["y"])),
                                      "ci": list(scoring.bootstrap_mean_ci(v["y"], level, rounds, seed)),
                                      "n_battles": len(v["y"])}
                             for c, v in sorted(cats.items(), key=lambda kv: str(kv[0]))}
    return out


class ArenaHard(Protocol):
    kind = "pairwise"
    upstream = "lmarena/arena-hard-auto (judge files from BENCH_DIR)"
    default_ci_level = 0.90  # v2.0 reports 5th-95th percentiles; v0.1 reported 2.5th-97.5th (set below)

    def __init__(self, bench, bench_dir, opts):
        super().__init__(bench, bench_dir, opts)
        if bench_dir is None:
            raise UserError(f"{bench} needs the benchmark files; pass --bench-dir DIR or set MDLM_BENCH_DATA")
        self.folder = "arena-hard-v0.1" if bench == "arena-hard-v0.1" else "arena-hard-v2.0"
        path = expect_file(bench_dir, self.folder, "judge_config.yaml")
        cfg = load_yaml(path, "judge config")
        self.config_path = path
        self.params = {"temperature": _need(cfg, "temperature", path), "max_tokens": _need(cfg, "max_tokens", path)}
        if self.folder == "arena-hard-v0.1":
            templates = _need(cfg, "prompt_template", path)
            self.templates = templates if isinstance(templates, list) else [templates]
            self.patterns = [_need(cfg, "regex_pattern", path)]
            self.system = {None: _need(cfg, "system_prompt", path)}
            self.baselines = {None: _need(cfg, "baseline_model", path)}
            self.attempts = int(cfg.get("number_of_judgment_attempts") or 1)
            self.upper = False
            self.default_ci_level = 0.95
        else:
            self.templates = [_need(cfg, "prompt_template", path)]
            self.patterns = list(_need(cfg, "regex_patterns", path))
            spath = expect_file(bench_dir, self.folder, "judge_settings.json")
            with open(spath, encoding="utf-8") as f:
                settings = json.load(f)
            cats = _need(settings, "categories", spath)
            self.system = {c: _need(v, "system_prompt", spath) for c, v in cats.items()}
            self.baselines = {c: _need(v, "baseline", spath) for c, v in cats.items()}
            self.attempts = 1
            self.upper = True  # v2.0 matches its regexes on the upper-cased reply

    def run_tasks(self) -> List[str]:
        return [self.bench] if self.bench == self.folder else [self.bench, self.folder]

    def prompts(self) -> List[dict]:
        return load_prompts(self.bench, self.bench_dir)

    def _key(self, category: Optional[str]) -> Optional[str]:
        if None in self.system:
            return None
        if category not in self.system:
            raise UserError(f"no judge settings for category '{category}' in {self.folder}/judge_settings.json; "
                            f"use the published settings file")
        return category

    def published_baseline(self, prompts):
        answers: Dict[str, List[str]] = {}
        names = sorted({self.baselines[self._key(p["category"])] for p in prompts})
        for name in names:
            try:
                path = arena_hard_baseline_file(self.bench_dir, self.folder, name)
            except UserError:
                raise UserError(f"published baseline answers '{self.folder}/model_answer/{name}.jsonl' are not in "
                                f"{self.bench_dir}; add them, or pass --baseline RUN_DIR") from None
            answers.update(read_answer_file(path))
        return "published:" + "+".join(names), answers

    def games(self, item: Item) -> List[Game]:
        key = self._key(item.category)
        question = item.turns[0]
        out = []
        for index, model_is_a in ((0, False), (1, True)):
            a, b = (item.answer, item.baseline) if model_is_a else (item.baseline, item.answer)
            values = {"question_1": question, "answer_1": a[0], "answer_2": b[0],
                      "QUESTION": question, "ANSWER_A": a[0], "ANSWER_B": b[0]}
            msgs = [{"role": "system", "content": self.system[key]}]
            msgs += [{"role": "user", "content": fill(t, values, str(self.config_path))} for t in self.templates]
            out.append(Game(item, index, msgs, dict(self.params), {"model_is_a": model_is_a},
                            CONTINUE if self.attempts > 1 else None, self.attempts))
        return out

    def parse(self, game: Game, text: str, top_logprobs) -> Parsed:
        allowed = scoring.V01_LABELS if self.folder == "arena-hard-v0.1" else None
        return parse_verdict(text.upper() if self.upper else text, self.patterns, game.meta["model_is_a"], allowed)

    def settings(self):
        return {"judge_config": str(self.config_path), "sampling": self.params, "regex": self.patterns,
                "attempts": self.attempts, "baselines": {str(k): v for k, v in self.baselines.items()},
                "verdict_rule": "two or more distinct labels in a reply = no verdict (arena-hard v0.1 get_score)",
                "failed_game_rule": ("drop the game (v0.1 get_battles_from_row)" if self.folder == "arena-hard-v0.1"
                                     else "drop the prompt (v2.0 load_judgments)")}

    def summarize(self, items, rows):
        o = self.opts
        v01 = self.folder == "arena-hard-v0.1"
        return summarize_pairwise(items, rows, self.ci_level, o.bootstrap_rounds, o.bt_rounds, o.style_control, o.seed,
                                  drop="game" if v01 else "prompt", rule="v0.1" if v01 else "v2.0",
                                  by_category=not v01)
