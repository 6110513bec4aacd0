"""DecodeConfig: the decoding settings, importable without torch (the CLI parses them)."""

from __future__ import annotations

import dataclasses
import math
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
    cache: str = "none"  # none | prefix | dual: block-wise KV cache (see mdlm_bench.decode.cache)
    parallel: Optional[str] = None  # threshold | factor | topk; None: fixed `steps` (threshold implied by it)
    factor: Optional[float] = None  # the factor rule's f
    parallel_k: Optional[int] = None  # tokens per step of the topk rule
    cfg_scale: float = 0.0
    suppress_eos: bool = False  # EOS/EoT logits -> -inf (no early end)
    eos_confidence_inf: bool = False  # EOS/EoT proposals get -inf confidence (committed last)
    record_steps: bool = False  # return the step at which each position was committed
    # Dream's sampler (decode.rules.DREAM, SCHEDULES): alg replaces `remasking` with Dream's proposal and
    # confidence; schedule None = "eps" under alg, else "linear" (LLaDA's).
    alg: Optional[str] = None  # origin | maskgit_plus | topk_margin | entropy
    schedule: Optional[str] = None  # linear | eps
    eps: float = 1e-3  # the eps schedule's last timestep
    alg_temp: Optional[float] = None  # Dream: draw the committed positions from softmax(confidence / alg_temp)
    top_p: Optional[float] = None  # Dream: nucleus filtering of the proposal
    top_k: Optional[int] = None  # Dream: top-k filtering of the proposal

    # Fields added after run directories existed: left out of the digest while at their default, so
    # those directories keep their digest.
    _LATER = {"cache": "none", "parallel": None, "factor": None, "parallel_k": None, "alg": None, "schedule": None,
              "eps": 1e-3, "alg_temp": None, "top_p": None, "top_k": None}
    _PARAMS = {"threshold": "threshold", "factor": "factor", "topk": "parallel_k"}
    _DEFAULTS = {"threshold": 0.9, "factor": 1.0, "parallel_k": 2}

    @property
    def parallel_rule(self) -> Optional[str]:
        """The parallel unmasking rule in force (None: LLaDA's fixed schedule of `steps`)."""
        return self.parallel or ("threshold" if self.threshold is not None else None)

    @property
    def schedule_name(self) -> str:
        """The fixed-steps schedule in force: `schedule`, else Dream's eps under `alg`, else LLaDA's linear."""
        return self.schedule or ("eps" if self.alg else "linear")

    def _validate_dream(self, rule: Optional[str]) -> None:
        from mdlm_bench.decode.rules import DREAM, SCHEDULES

        SCHEDULES.get(self.schedule_name)
        if not 0 < self.eps < 1:
            raise UserError(f"eps must lie in (0, 1), got {self.eps}")
        if self.alg is None:
            for name in ("alg_temp", "top_p", "top_k"):
                if getattr(self, name) is not None:
                    raise UserError(f"{name} is a setting of Dream's sampler; add --alg maskgit_plus (or origin, "
                                    "topk_margin, entropy) or drop it")
            return
        DREAM.get(self.alg)
        if rule is not None:
            raise UserError(f"--alg {self.alg} runs Dream's fixed-steps sampler; drop --parallel/--threshold")
        if self.remasking != "low_confidence":
            raise UserError(f"--alg {self.alg} replaces --remasking {self.remasking}; drop one of them")
        if self.alg_temp is not None and (self.alg_temp < 0 or (self.alg == "origin" and self.alg_temp > 0)):
            raise UserError(f"alg_temp must be >= 0 and needs an alg other than origin, got {self.alg_temp} "
                            f"with --alg {self.alg}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UserError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 1:
            raise UserError(f"top_k must be at least 1, got {self.top_k}")

    def validate(self, prompt_len: int = 0, max_positions: Optional[int] = None) -> "DecodeConfig":
        if self.gen_length <= 0:
            raise UserError(f"gen_length must be positive, got {self.gen_length}")
        if self.block_length <= 0 or self.gen_length % self.block_length != 0:
            raise UserError(
                f"gen_length ({self.gen_length}) must be a multiple of block_length ({self.block_length}); "
                f"e.g. --block-length {self.gen_length}"
            )
        nb = self.gen_length // self.block_length
        from mdlm_bench.decode.cache import CACHES  # registries are the source of truth
        from mdlm_bench.decode.rules import PARALLEL

        CACHES.get(self.cache)
        rule = self.parallel_rule
        if rule is not None:
            PARALLEL.get(rule)
            param = self._PARAMS.get(rule)
            for name in set(self._PARAMS.values()) - {param}:
                if getattr(self, name) is not None:
                    raise UserError(f"{name} applies to --parallel {[k for k, v in self._PARAMS.items() if v == name][0]}, "
                                    f"not --parallel {rule}; drop it or change the rule")
            if param and getattr(self, param) is None:
                setattr(self, param, self._DEFAULTS[param])
        else:
            for name in ("factor", "parallel_k"):
                if getattr(self, name) is not None:
                    raise UserError(f"{name} needs a parallel rule; add --parallel "
                                    f"{'factor' if name == 'factor' else 'topk'}")
        self._validate_dream(rule)
        if self.factor is not None and self.factor <= 0:
            raise UserError(f"factor must be positive, got {self.factor}")
        if self.parallel_k is not None and self.parallel_k < 1:
            raise UserError(f"parallel_k must be at least 1, got {self.parallel_k}")
        if rule is None and (self.steps <= 0 or self.steps % nb != 0):
            raise UserError(
                f"steps ({self.steps}) must be a positive multiple of the number of blocks ({nb} = gen_length / "
                f"block_length); e.g. --steps {nb * max(1, self.steps // nb)}"
            )
        if rule is None and self.steps > self.gen_length:
            raise UserError(f"steps ({self.steps}) exceeds gen_length ({self.gen_length}): a step commits at least one "
                            f"token; pass --steps {self.gen_length} or fewer")
        if self.threshold is not None and not (0.0 < self.threshold <= 1.0):
            raise UserError(f"threshold must lie in (0, 1], got {self.threshold}")
        if self.temperature < 0:
            raise UserError(f"temperature must be >= 0, got {self.temperature}")
        if self.cfg_scale < 0:
            raise UserError(f"cfg_scale must be >= 0, got {self.cfg_scale}")
        from mdlm_bench.decode.rules import REMASKING  # the registry is the source of truth

        REMASKING.get(self.remasking)
        if max_positions is not None and prompt_len + self.gen_length > max_positions:
            raise UserError(
                f"prompt ({prompt_len} tokens) + gen_length ({self.gen_length}) exceeds the model's "
                f"{max_positions} positions; lower --gen-length or shorten the prompt"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def digest_dict(self) -> dict:
        """to_dict without the later fields that hold their default (see _LATER)."""
        return {k: v for k, v in asdict(self).items() if not (k in self._LATER and v == self._LATER[k])}


# Settings a user names to choose LLaDA's rules; given any of them, a checkpoint's own sampler is not imposed.
_LLADA_RULES = ("remasking", "parallel", "threshold", "factor", "parallel_k")


def with_model_defaults(base: DecodeConfig, defaults: dict, given) -> DecodeConfig:
    """base with a checkpoint family's own decoding settings (`ModelMeta.decode_defaults`, e.g. Dream's
    alg, eps, temperature, top_p, top_k, alg_temp) for every field the user did not give.

    given: the names of the fields the user set. "block_length": None in defaults means one block
    (Dream decodes the whole answer at once). Rows record the result (`to_dict`).
    """
    if not defaults or any(k in given for k in _LLADA_RULES):
        return base
    upd = {k: v for k, v in defaults.items() if k not in given}
    if "block_length" in upd and upd["block_length"] is None:
        upd["block_length"] = upd.get("gen_length", base.gen_length)
    return dataclasses.replace(base, **upd).validate()


def config_for_max_tokens(base: DecodeConfig, max_gen_toks: int) -> DecodeConfig:
    """base with gen_length = max_gen_toks rounded up to a multiple of block_length, steps per token kept.

    steps is rounded to the nearest positive multiple of the block count (the sampler's constraint).
    """
    if max_gen_toks < 1:
        raise UserError(f"max_gen_toks must be positive, got {max_gen_toks}; fix the task's generation_kwargs")
    bl = base.block_length
    gen = math.ceil(max_gen_toks / bl) * bl
    n_blocks = gen // bl
    steps = n_blocks * max(1, round(base.steps * gen / base.gen_length / n_blocks))
    return dataclasses.replace(base, gen_length=gen, steps=steps)
