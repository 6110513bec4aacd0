"""JudgeConfig: the one settings object for the judge, shared by the CLI, YAML and Python callers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from mdlm_bench.errors import UserError

NO_KEY = "none"  # --judge-api-key-env none: a local endpoint that wants no key


@dataclass
class JudgeConfig:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable; the key itself is never stored
    concurrency: int = 8
    timeout_s: float = 300.0
    max_retries: int = 8
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 600.0
    price_in_per_m: float = 0.0  # USD per 1M prompt tokens; 0 = unknown
    price_out_per_m: float = 0.0
    cache_dir: Optional[str] = None  # default RUN_DIR/judgments/cache

    def __post_init__(self):
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")

    def api_key(self) -> str:
        """Read the key from the environment at call time; it never enters a file, log or report."""
        if self.api_key_env.lower() == NO_KEY:
            return "EMPTY"
        value = os.environ.get(self.api_key_env)
        if not value:
            raise UserError(
                f"environment variable {self.api_key_env} (the judge API key) is not set; export it, or pass "
                f"--judge-api-key-env VAR naming the variable that holds the key ('none' for keyless endpoints)"
            )
        return value

    def public(self) -> dict:
        """Settings safe to record in results (no key, only the variable's name)."""
        from dataclasses import asdict

        return asdict(self)


@dataclass
class JudgeOptions:
    """What to judge and how to score it (the client settings are JudgeConfig)."""

    bench: str
    run_dir: str
    baseline: Optional[str] = None  # RUN_DIR, "published", or None (bench default)
    bench_dir: Optional[str] = None
    ci_level: Optional[float] = None  # None: 0.90 for Arena-Hard (as it reports), else 0.95
    bootstrap_rounds: int = 1000
    bt_rounds: int = 100  # Bradley-Terry refits (arena-hard uses 100)
    style_control: str = "none"  # none | length | markdown | both
    difficulty_file: Optional[str] = None  # AlpacaEval LC data: df_gamed.csv / instruction_difficulty.csv or their dir
    pairwise_prompt: str = "generic"  # generic (mdlm_bench/judge/prompts/pairwise.yaml) | arena-hard
    tasks: Optional[list] = None  # pairwise: restrict to these run tasks
    seed: int = 0  # bootstrap seed
    allow_partial: bool = False  # judge only the prompts the run has (labelled, not leaderboard-comparable)
    length_margin: int = 500  # WB-Reward K: a plain win by an answer > K characters longer is a tie; -1 = none

    def __post_init__(self):
        if self.ci_level is not None and not 0.5 <= self.ci_level < 1.0:
            raise ValueError("ci_level must be in [0.5, 1), e.g. 0.9 or 0.95")
        if self.bootstrap_rounds < 10 or self.bt_rounds < 1:
            raise ValueError("bootstrap_rounds must be >= 10 and bt_rounds >= 1")
        if self.style_control not in ("none", "length", "markdown", "both"):
            raise ValueError("style_control must be one of none, length, markdown, both")
        if self.pairwise_prompt not in ("generic", "arena-hard"):
            raise ValueError("pairwise_prompt must be 'generic' or 'arena-hard'")
