"""Judge protocols, one per benchmark, looked up by bench name."""

from __future__ import annotations

from mdlm_bench.registry import Registry
from mdlm_bench.judge.protocols.alpaca_eval import AlpacaEval
from mdlm_bench.judge.protocols.arena_hard import ArenaHard
from mdlm_bench.judge.protocols.base import Game, Parsed, Protocol
from mdlm_bench.judge.protocols.creative_writing import CreativeWriting
from mdlm_bench.judge.protocols.mt_bench import MTBench
from mdlm_bench.judge.protocols.pairwise import Pairwise
from mdlm_bench.judge.protocols.wildbench import WildBenchReward, WildBenchScore

PROTOCOLS: Registry[type] = Registry("judge benchmark")
for _name in ("arena-hard-v0.1", "arena-hard-v2.0", "arena-hard-v2.0-hard-prompt", "arena-hard-v2.0-creative-writing"):
    PROTOCOLS.add(_name, ArenaHard)
PROTOCOLS.add("alpaca-eval", AlpacaEval)
PROTOCOLS.add("mt-bench", MTBench)
PROTOCOLS.add("wildbench-score", WildBenchScore)
PROTOCOLS.add("wildbench-reward", WildBenchReward)
PROTOCOLS.add("creative-writing-v3", CreativeWriting)
PROTOCOLS.add("pairwise", Pairwise)

__all__ = ["PROTOCOLS", "Game", "Parsed", "Protocol"]
