"""RunConfig: everything `mdlm-bench run` needs (YAML, CLI and Python share it); importable without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from mdlm_bench.config import digest as make_digest
from mdlm_bench.config import from_dict
from mdlm_bench.decode.config import DecodeConfig

Key = Tuple[str, str, int]
# Fields that decide what each row contains; limit, seeds, batch size, device and paths only decide
# which rows exist or how fast they come, so a run can be extended without a new digest.
OUTPUT_FIELDS = ("model", "tasks", "decoding", "perturbation", "chat", "dtype")


@dataclass
class RunConfig:
    """Everything `mdlm-bench run` needs (YAML, CLI and Python share it)."""

    model: str = "tiny-ce"
    tasks: List[str] = field(default_factory=lambda: ["synth"])
    decoding: Dict[str, Any] = field(default_factory=dict)  # DecodeConfig fields
    perturbation: Optional[Dict[str, Any]] = None  # PerturbSpec fields
    seeds: List[int] = field(default_factory=lambda: [0])
    limit: Optional[int] = None
    chat: bool = True
    dtype: str = "auto"
    device: str = "auto"
    bench_dir: Optional[str] = None
    batch_size: int = 16
    trust_remote_code: bool = False
    allow_pickle: bool = False
    attn: str = "sdpa"  # sdpa | eager | flash_attention_2: same logits within dtype noise, so not in the digest

    def decode_config(self, where: str = "decoding settings") -> DecodeConfig:
        return from_dict(DecodeConfig, self.decoding, where).validate()

    def spec(self, where: str = "perturbation"):
        if not self.perturbation:
            return None
        from mdlm_bench.perturb import PerturbSpec

        return from_dict(PerturbSpec, self.perturbation, where).validate()

    def digest(self) -> str:
        d = asdict(self)
        d["decoding"] = self.decode_config().digest_dict()  # defaults filled in: same settings, same digest
        return make_digest({k: d[k] for k in OUTPUT_FIELDS})
