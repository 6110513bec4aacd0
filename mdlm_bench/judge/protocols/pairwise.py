"""Pairwise judging of two mdlm-bench runs on any task (perturbation damage, CE vs slack-CTC).

The judge prompt is mdlm_bench/judge/prompts/pairwise.yaml, or with --pairwise-prompt arena-hard the
Arena-Hard v0.1 judge config from the benchmark directory. Two games per item with positions swapped;
scored like Arena-Hard. The run under --run is "the model", the run under --baseline is the baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from mdlm_bench.config import load_yaml
from mdlm_bench.errors import UserError
from mdlm_bench.judge.answers import Item
from mdlm_bench.judge.protocols.arena_hard import ArenaHard, parse_verdict, summarize_pairwise
from mdlm_bench.judge.protocols.base import Game, Parsed, Protocol
from mdlm_bench.judge.templates import fill

GENERIC = Path(__file__).resolve().parents[1] / "prompts" / "pairwise.yaml"


def render_turns(turns: List[str], label: str) -> str:
    if len(turns) == 1:
        return turns[0]
    return "\n\n".join(f"[{label} turn {i + 1}]\n{t}" for i, t in enumerate(turns))


class Pairwise(Protocol):
    kind = "pairwise"
    upstream = "mdlm-bench generic pairwise prompt (or arena-hard-v0.1's)"
    default_ci_level = 0.95

    def __init__(self, bench, bench_dir, opts):
        super().__init__(bench, bench_dir, opts)
        if opts.pairwise_prompt == "arena-hard":
            ah = ArenaHard("arena-hard-v0.1", bench_dir, opts) if bench_dir is not None else None
            if ah is None:
                raise UserError("--pairwise-prompt arena-hard reads arena-hard-v0.1/judge_config.yaml; "
                                "pass --bench-dir DIR or set MDLM_BENCH_DATA")
            self.source = str(ah.config_path)
            self.system, self.templates = ah.system[None], ah.templates
            self.patterns, self.params = ah.patterns, ah.params
            self.slots = ("question_1", "answer_1", "answer_2")
        else:
            cfg = load_yaml(GENERIC, "pairwise judge prompt")
            self.source = str(GENERIC)
            self.system, self.templates = cfg["system_prompt"], [cfg["prompt_template"]]
            self.patterns = list(cfg["regex_patterns"])
            self.params = {"temperature": cfg["temperature"], "max_tokens": cfg["max_tokens"]}
            self.slots = ("question", "answer_a", "answer_b")

    def run_tasks(self):
        return self.opts.tasks  # None = every task of the run

    def games(self, item: Item) -> List[Game]:
        question = render_turns(item.turns, "User")
        out = []
        for index, model_is_a in ((0, False), (1, True)):
            a, b = (item.answer, item.baseline) if model_is_a else (item.baseline, item.answer)
            values = dict(zip(self.slots, (question, render_turns(a, "Assistant"), render_turns(b, "Assistant"))))
            msgs = [{"role": "system", "content": self.system}]
            msgs += [{"role": "user", "content": fill(t, values, self.source)} for t in self.templates]
            out.append(Game(item, index, msgs, dict(self.params), {"model_is_a": model_is_a}))
        return out

    def parse(self, game: Game, text: str, top_logprobs) -> Parsed:
        return parse_verdict(text, self.patterns, game.meta["model_is_a"])

    def settings(self):
        return {"judge_prompt": self.source, "sampling": self.params, "regex": self.patterns}

    def summarize(self, items, rows):
        o = self.opts
        return summarize_pairwise(items, rows, self.ci_level, o.bootstrap_rounds, o.bt_rounds, o.style_control, o.seed)
