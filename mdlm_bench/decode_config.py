"""DecodeConfig: the decoding settings, importable without torch (the CLI parses them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from mdlm_bench.errors import UserError


@dataclass
class DecodeConfig:
    """Decoding settings (shared by YAML, CLI and Python)."""

    gen_length: int = 64
    steps: int = 64
    block_length: int = 32
    temperature: float = 0.0
    remasking: str = "low_confidence"
    threshold: Optional[float] = None  # confidence-threshold parallel decoding when set
    cfg_scale: float = 0.0
    suppress_eos: bool = False  # EOS/EoT logits -> -inf (no early end)
    eos_confidence_inf: bool = False  # EOS/EoT proposals get -inf confidence (committed last)
    record_steps: bool = False  # return the step at which each position was committed

    def validate(self, prompt_len: int = 0, max_positions: Optional[int] = None) -> "DecodeConfig":
        if self.gen_length <= 0:
            raise UserError(f"gen_length must be positive, got {self.gen_length}")
        if self.block_length <= 0 or self.gen_length % self.block_length != 0:
            raise UserError(
                f"gen_length ({self.gen_length}) must be a multiple of block_length ({self.block_length}); "
                f"e.g. --block-length {self.gen_length}"
            )
        nb = self.gen_length // self.block_length
        if self.threshold is None and (self.steps <= 0 or self.steps % nb != 0):
            raise UserError(
                f"steps ({self.steps}) must be a positive multiple of the number of blocks ({nb} = gen_length / "
                f"block_length); e.g. --steps {nb * max(1, self.steps // nb)}"
            )
        if self.threshold is None and self.steps > self.gen_length:
            raise UserError(f"steps ({self.steps}) exceeds gen_length ({self.gen_length}): a step commits at least one "
                            f"token; pass --steps {self.gen_length} or fewer")
        if self.threshold is not None and not (0.0 < self.threshold <= 1.0):
            raise UserError(f"threshold must lie in (0, 1], got {self.threshold}")
        if self.temperature < 0:
            raise UserError(f"temperature must be >= 0, got {self.temperature}")
        if self.cfg_scale < 0:
            raise UserError(f"cfg_scale must be >= 0, got {self.cfg_scale}")
        from mdlm_bench.decoding import REMASKING  # the registry is the source of truth

        REMASKING.get(self.remasking)
        if max_positions is not None and prompt_len + self.gen_length > max_positions:
            raise UserError(
                f"prompt ({prompt_len} tokens) + gen_length ({self.gen_length}) exceeds the model's "
                f"{max_positions} positions; lower --gen-length or shorten the prompt"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)
