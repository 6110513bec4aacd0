"""AlpacaEval 2 with the weighted GPT-4-turbo judge: one game per instruction, output order randomised
(seeded by the instruction), preference read from the top_logprobs of the two labels ('m', 'M').

Prompt and sampling come from alpaca-eval/weighted_alpaca_eval_gpt4_turbo.yaml and the prompt file it
names. When the endpoint returns no logprobs the one-token reply is read as a discrete label, and the
summary says so.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from mdlm_bench.benchdata import expect_file, load_prompts
from mdlm_bench.config import load_yaml
from mdlm_bench.errors import UserError
from mdlm_bench.judge import scoring
from mdlm_bench.judge.lc_data import LcData, find_lc_data
from mdlm_bench.judge.answers import Item
from mdlm_bench.judge.length_control import N_SPLITS, length_controlled_winrate
from mdlm_bench.judge.protocols.base import Game, Parsed, Protocol
from mdlm_bench.judge.templates import chatml_messages, fill

CONFIG = "weighted_alpaca_eval_gpt4_turbo.yaml"
SAMPLING_KEYS = ("max_tokens", "temperature", "logprobs", "top_logprobs")


# alpaca_eval's PairwiseAnnotator switches output_1/output_2 with RandomSwitchTwoColumnsProcessor, column
# "is_switched_outputs", seeded on the instruction and the annotator seed (0)
SWITCH_COLUMN, ANNOTATOR_SEED = "is_switched_outputs", 0


def is_switched(instruction: str) -> bool:
    """Whether the run's output goes first, by alpaca_eval's rule (utils.random_seeded_choice with the seed
    string "is_switched_outputs" + instruction + "0"), so that orders match the leaderboard's item by item."""
    return random.Random(SWITCH_COLUMN + instruction + str(ANNOTATOR_SEED)).choices([False, True], k=1)[0]


class AlpacaEval(Protocol):
    kind = "pairwise"
    upstream = "tatsu-lab/alpaca_eval (weighted_alpaca_eval_gpt4_turbo, length_controlled_v1)"
    default_ci_level = 0.95

    def __init__(self, bench, bench_dir, opts):
        super().__init__(bench, bench_dir, opts)
        if bench_dir is None:
            raise UserError("alpaca-eval needs the benchmark files; pass --bench-dir DIR or set MDLM_BENCH_DATA")
        path = expect_file(bench_dir, "alpaca-eval", CONFIG)
        raw = load_yaml(path, "AlpacaEval judge config")
        if not isinstance(raw, dict) or len(raw) != 1:
            raise UserError(f"{path}: expected one annotator section; use the published config")
        cfg = next(iter(raw.values()))
        try:
            template_name = Path(cfg["prompt_template"]).name
            kwargs = cfg["completions_kwargs"]
            parser = cfg["completion_parser_kwargs"]
            self.numerator = str(parser["numerator_token"])
            self.labels = [str(t) for t in parser["denominator_tokens"]]
        except (KeyError, TypeError) as e:
            raise UserError(f"{path}: missing setting {e}; use the published config") from None
        self.config_path = path
        self.template_path = expect_file(bench_dir, "alpaca-eval", template_name)
        self.messages = chatml_messages(self.template_path.read_text(encoding="utf-8"), str(self.template_path))
        self.params = {k: kwargs[k] for k in SAMPLING_KEYS if k in kwargs}
        self._lc: Optional[LcData] = None

    def prompts(self):
        prompts = load_prompts("alpaca-eval", self.bench_dir)
        self._lc = find_lc_data(self.bench_dir, self.opts.difficulty_file)
        if self._lc.difficulty is not None:
            lacking = [p["extra"]["index"] for p in prompts if p["extra"]["index"] not in self._lc.difficulty]
            if lacking:
                raise UserError(f"{self._lc.sources[0]} has no difficulty for {len(lacking)} of {len(prompts)} "
                                f"instructions (e.g. index {lacking[0]}); use the files matching this AlpacaEval "
                                f"version")
        return prompts

    def published_baseline(self, prompts):
        gens = {p["extra"].get("baseline_generator") for p in prompts}
        return "published:" + "+".join(sorted(str(g) for g in gens)), \
            {p["uid"]: [str(p["extra"]["baseline_output"])] for p in prompts}

    def games(self, item: Item) -> List[Game]:
        if item.answer[0] == item.baseline[0]:
            return []  # identical outputs: no request, preference 1.5 (pairwise_evaluator.py)
        instruction = item.turns[0]
        switched = is_switched(instruction)
        out1, out2 = (item.answer[0], item.baseline[0]) if switched else (item.baseline[0], item.answer[0])
        values = {"instruction": instruction, "output_1": out1, "output_2": out2}
        msgs = [{"role": m["role"], "content": fill(m["content"], values, str(self.template_path))}
                for m in self.messages]
        model_token = self.labels[0] if switched else self.labels[1]
        return [Game(item, 0, msgs, dict(self.params), {"model_token": model_token, "switched": switched})]

    def parse(self, game: Game, text: str, top_logprobs) -> Parsed:
        model_token = game.meta["model_token"]
        if top_logprobs:
            # exact token match, later duplicates win, as alpaca_eval's logprob_parser; neither label = NaN
            lp = {str(tok): float(logprob) for tok, logprob in top_logprobs
                  if str(tok) in self.labels + [self.numerator]}
            if not lp:
                return Parsed(None, None, 1, {"mode": "logprob", "nan": True}, final=True)
            denom = np.logaddexp.reduce([lp.get(t, -math.inf) for t in self.labels])
            p_num = math.exp(lp.get(self.numerator, -math.inf) - denom)
            p_model = p_num if model_token == self.numerator else 1.0 - p_num
            return Parsed(f"P({self.numerator})={p_num:.4f}", p_model, 1, {"mode": "logprob"})
        label = text.strip()
        if label in self.labels:
            return Parsed(label, 1.0 if label == model_token else 0.0, 1, {"mode": "discrete"})
        return Parsed(None, None, 1, {"mode": "logprob" if top_logprobs else "discrete"})

    def settings(self):
        return {"judge_config": str(self.config_path), "prompt_file": str(self.template_path),
                "sampling": self.params, "labels": self.labels,
                "order": "alpaca_eval's: random.Random('is_switched_outputs' + instruction + '0').choices([False, "
                         "True]); True = run first",
                "identical_outputs": "no request, preference 1.5"}

    def summarize(self, items, rows):
        level = self.ci_level
        by_key = {(r.get("task"), r["uid"], int(r["seed"])): r for r in rows}
        prefs, item_out, modes = [], [], []
        lc_pref, lc_len_m, lc_len_b, lc_index = [], [], [], []
        n_identical = n_nan = 0
        for it in items:
            if it.answer[0] == it.baseline[0]:
                score, mode = 0.5, "identical"
                n_identical += 1
            else:
                r = by_key.get((it.task, it.uid, it.seed))
                if r is not None and r["status"] == "ok" and (r.get("info") or {}).get("nan"):
                    n_nan += 1
                if r is None or r["status"] != "ok":
                    continue
                if r.get("score") is None:  # no preference: not trained on, still predicted (as upstream)
                    lc_pref.append(math.nan)
                    lc_len_m.append(len(it.answer[0]))
                    lc_len_b.append(len(it.baseline[0]))
                    lc_index.append(it.extra.get("index"))
                    continue
                score, mode = float(r["score"]), (r.get("info") or {}).get("mode")
            prefs.append(score)
            lc_pref.append(score)
            lc_len_m.append(len(it.answer[0]))
            lc_len_b.append(len(it.baseline[0]))
            lc_index.append(it.extra.get("index"))
            modes.append(mode)
            item_out.append({"uid": it.uid, "seed": it.seed, "score": score, "task": it.task})
        answered = [r for r in rows if r["status"] == "ok"]
        mean, se = scoring.mean_se(prefs)
        out: Dict[str, Any] = {
            "score": mean if prefs else None, "standard_error": se if prefs else None,
            "ci": list(scoring.normal_ci(mean, se, level)) if len(prefs) > 1 else [None, None],
            "ci_method": "normal approximation from the standard error",
            "wins": sum(p > 0.5 for p in prefs), "ties": sum(p == 0.5 for p in prefs),
            "losses": sum(p < 0.5 for p in prefs), "counted_per": "instruction",
            "position_consistency": None,
            "position_note": "one game per instruction with randomised order; consistency is not measured",
            "parse_failure_rate": (sum(r.get("score") is None for r in answered) / len(answered)
                                   if answered else None),
            "n_items": len(prefs), "n_items_total": len(items), "items": item_out,
            "identical_outputs": n_identical,
            "nan_preferences": n_nan,
            "nan_note": "judge replies whose top logprobs hold neither 'm' nor 'M' have no preference (NaN) and "
                        "are dropped, as alpaca_eval does",
        }
        n_lp, n_disc = modes.count("logprob"), modes.count("discrete")
        out["preference_mode"] = ("logprob-weighted" if n_disc == 0 else
                                  "discrete labels: the endpoint returned no logprobs" if n_lp == 0 else
                                  f"mixed: {n_lp} logprob-weighted, {n_disc} discrete (no logprobs returned)")
        lc_data = self._lc or LcData()
        if len(prefs) >= 2 * N_SPLITS:
            lc = length_controlled_winrate(lc_pref, lc_len_m, lc_len_b, lc_index, lc_data.glm, lc_data.difficulty,
                                           lc_data.gamed)
            out["lc_win_rate"] = lc["lc_win_rate"]
            out["lc_standard_error"] = lc["lc_standard_error"]
            out["lc_coefs"] = lc["coefs"]
        else:
            out["lc_win_rate"] = None
        out["lc_variant"] = lc_data.glm + ("" if lc_data.glm == "length_controlled_v1" else
                                           " (not the leaderboard's LC: " + ("df_gamed.csv" if lc_data.difficulty
                                           is not None else "df_gamed.csv and instruction_difficulty.csv") +
                                           " not found; see --difficulty)")
        out["lc_data"] = {"sources": lc_data.sources, "notes": lc_data.notes}
        return out
