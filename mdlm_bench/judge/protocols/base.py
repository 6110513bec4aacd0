"""What every benchmark protocol provides: its games (judge requests) and how to read and score them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from mdlm_bench.judge.answers import Item
from mdlm_bench.judge.config import JudgeOptions


@dataclass
class Game:
    """One judgment: a chat request (plus optional follow-ups when the verdict is missing)."""

    item: Item
    index: int  # 0/1 = positions swapped (pairwise), or the MT-Bench turn index
    messages: List[Dict[str, str]]
    params: Dict[str, Any]  # sampling parameters sent with the request
    meta: Dict[str, Any] = field(default_factory=dict)  # e.g. model_is_a, model_token
    followup: Optional[str] = None  # sent when a reply has no verdict (Arena-Hard v0.1)
    attempts: int = 1
    fixed: Optional[str] = None  # the judgment upstream writes without asking (e.g. WildBench's empty answers)


@dataclass
class Parsed:
    verdict: Optional[str]  # the label/rating read from the judge's reply; None = parse failure
    score: Optional[float]  # run's model score for this game ([0,1] pairwise, rating single)
    weight: int = 1  # battles this game counts for (3 for strong Arena-Hard verdicts)
    info: Dict[str, Any] = field(default_factory=dict)
    final: bool = False  # no follow-up even without a verdict (conflicting labels: asking again cannot fix it)


class Protocol:
    name: str = ""
    kind: str = "pairwise"  # or "single"
    upstream: str = ""  # whose rules the protocol follows (recorded in the summary)
    default_ci_level: float = 0.95
    needs_baseline: bool = True
    baseline_file: bool = False  # --baseline FILE (reference outputs) goes to published_baseline
    partial: Optional[tuple] = None  # (prompts judged, prompts in the benchmark) under --allow-partial

    def __init__(self, bench: str, bench_dir: Optional[Path], opts: JudgeOptions):
        self.bench = bench
        self.bench_dir = bench_dir
        self.opts = opts

    @property
    def ci_level(self) -> float:
        return self.opts.ci_level if self.opts.ci_level is not None else self.default_ci_level

    # --- inputs
    def run_tasks(self) -> List[str]:
        """Run tasks whose rows hold this benchmark's generations."""
        return [self.bench]

    def prompts(self) -> Optional[List[dict]]:
        return None

    def published_baseline(self, prompts: List[dict]) -> tuple:
        """(name, {uid: [answer turns]}) of the benchmark's own baseline."""
        raise NotImplementedError

    # --- judging
    def games(self, item: Item) -> List[Game]:
        raise NotImplementedError

    def parse(self, game: Game, text: str, top_logprobs: Optional[list]) -> Parsed:
        raise NotImplementedError

    def settings(self) -> Dict[str, Any]:
        """Judge settings recorded in the summary (where the prompts came from, sampling)."""
        return {}

    # --- scoring
    def summarize(self, items: List[Item], rows: List[dict]) -> Dict[str, Any]:
        raise NotImplementedError
