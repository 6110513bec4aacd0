"""The training recipe: one dataclass shared by the YAML files in training/, the CLI and Python."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from mdlm_bench.config import NonNegFloat, NonNegInt, PosInt, digest, from_dict, load_yaml
from mdlm_bench.errors import UserError, unknown

OVERFLOW = ("error", "truncate", "skip")
PAD_WITH = ("eos", "slack")
SLACK_PLACEMENT = ("canvas", "answer", "count")


# Fields added later (issue 21), with the defaults that reproduce the earlier behaviour.
LATER_DEFAULTS = {"data_subset": "", "skip_bad_rows": False, "canvas_multiple": 0, "bucket_batches": 16,
                  "gradient_checkpointing": False, "qlora": False}


@dataclass
class LoraSettings:
    """LoRA through peft; r = 0 trains every weight."""

    r: int = 0
    alpha: int = 16
    dropout: float = 0.0
    target_modules: List[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class Recipe:
    """Everything that decides a training run. Two runs with equal digests are the same run.

    Model: `model` is a checkpoint directory, a bundled model name, or `preset:<name>` for a random-init
    preset seeded by `init_seed`. Data: `data` is a file (JSONL, JSON, parquet, arrow, csv), a dataset directory,
    a hub dataset id (`data_subset`, `data_split`), or `synthetic` (the checkable task generator,
    `synthetic_per_family` rows per family); rows hold prompt/response or chat messages (one example per assistant
    turn, in the model's chat format: train/format.py); `skip_bad_rows` skips and counts rows that give none.
    Canvas: the response region has `canvas` tokens (with `canvas_multiple` > 0, each step's own rounded-up
    length, at most `canvas`: train/buckets.py); the response is followed by EOS padding (`pad_with: eos`)
    or by one EOS and then <slack> tokens (`pad_with: slack`: trailing slack only, as padding). Slack inside the
    clean response, at random gaps before masking, is set by `slack_placement`: `canvas` inserts
    round(slack_insert_rate * canvas) tokens; `answer` inserts slack_insert_rate * (answer tokens), stochastically
    rounded; `count` inserts exactly `slack_count` tokens.
    Slack-CTC options (loss: slack_ctc): `ctc_band` k > 0 restricts the alignments so that every target sits at
    most k positions from its slot in the clean canvas (0 = no band); `ce_weight` is the CE anchor
    lambda in loss = lambda * CE + (1 - lambda) * CTC. `displace_rate`: each visible non-slack token is, with this
    probability, moved one position onto a masked neighbour (the shift operator's rule) after masking; the clean
    canvas then takes a <slack> at the vacated slot and gives up one masked <slack> on the far side of the move,
    so every span's CTC target absorbs the displacement with slack (a move with no such slack is not made). A response that does not fit
    (plus one EOS), or a prompt longer than `max_prompt_tokens`, is handled by `overflow`: error | truncate | skip
    (truncate keeps the answer's first `canvas` tokens, with no end-of-turn and no EOS).
    Scale: `bf16` (GPU weights and compute), `gradient_checkpointing`, `lora`, `qlora` (train/scale.py).
    Batches: `batch_size` is the global batch per optimiser step; each process runs micro-batches of
    `micro_batch_size` and gradient accumulation makes up the rest, so the run does not depend on the
    number of processes.
    """

    loss: str = "ce"  # ce | slack_ctc (mdlm_bench.train.losses.LOSSES)
    model: str = "preset:tiny"
    init_seed: int = 0
    data: str = "synthetic"
    data_split: str = "train"
    data_subset: str = ""  # the dataset's config name (datasets.load_dataset name=...)
    skip_bad_rows: bool = False  # skip (and count) rows that give no example instead of failing
    synthetic_per_family: int = 2000
    synthetic_seed: int = 0
    system_prompt: str = ""
    canvas: int = 32  # the answer canvas; under bucketing its maximum
    canvas_multiple: NonNegInt = 0  # > 0: length bucketing, each step's canvas rounded up to this multiple
    bucket_batches: PosInt = 16  # bucketing: global batches sorted by length together
    max_prompt_tokens: int = 128
    overflow: str = "error"
    slack_insert_rate: float = 0.0
    slack_placement: str = "canvas"  # canvas | answer | count (see above)
    slack_count: int = 0  # slack_placement: count
    pad_with: str = "eos"
    ctc_band: int = 0  # slack_ctc: max distance of a target from its clean slot (0 = unrestricted)
    ce_weight: float = 0.0  # slack_ctc: lambda of the CE anchor
    displace_rate: float = 0.0  # probability that a visible token is displaced by one position
    mask_eps: float = 1e-3
    steps: int = 1000
    batch_size: int = 32
    micro_batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: NonNegInt = 50
    weight_decay: NonNegFloat = 0.0
    betas: List[float] = field(default_factory=lambda: [0.9, 0.95])
    grad_clip: NonNegFloat = 1.0
    bf16: bool = True  # on GPU: weights loaded and trained in bf16 (fp32 on CPU)
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (long canvases at 8B)
    qlora: bool = False  # LoRA on a 4-bit base (bitsandbytes, CUDA only)
    lora: Dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    log_every: PosInt = 10  # progress-bar refresh; every step is logged to train_log.jsonl
    save_every: NonNegInt = 0  # periodic checkpoints (0 = final only)
    keep_state: bool = True  # keep OUT/state (optimiser etc.) after the final step, for --resume with more steps

    def __post_init__(self) -> None:
        from mdlm_bench.train.losses import LOSSES

        if self.loss not in LOSSES:
            raise unknown("loss", self.loss, LOSSES)
        if self.overflow not in OVERFLOW:
            raise unknown("overflow policy", self.overflow, OVERFLOW)
        if self.pad_with not in PAD_WITH:
            raise unknown("pad_with value", self.pad_with, PAD_WITH)
        if self.slack_placement not in SLACK_PLACEMENT:
            raise unknown("slack_placement", self.slack_placement, SLACK_PLACEMENT)
        if self.slack_count < 0 or self.ctc_band < 0:
            raise ValueError(f"slack_count and ctc_band must be >= 0 (got {self.slack_count}, {self.ctc_band})")
        for name in ("ce_weight", "displace_rate"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1] (got {getattr(self, name)})")
        positive = ("canvas", "max_prompt_tokens", "steps", "batch_size", "micro_batch_size", "synthetic_per_family")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not 0.0 <= self.slack_insert_rate < (1.0 if self.slack_placement == "canvas" else 10.0):
            raise ValueError(f"slack_insert_rate must be in [0, 1) for placement canvas, [0, 10) for answer "
                             f"(got {self.slack_insert_rate})")
        if not 0.0 < self.mask_eps < 1.0:
            raise ValueError(f"mask_eps must be in (0, 1) (got {self.mask_eps})")
        if self.batch_size % self.micro_batch_size:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of micro_batch_size "
                             f"{self.micro_batch_size}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0 (got {self.lr})")
        if len(self.betas) != 2:
            raise ValueError("betas must be a list of two numbers")
        self.lora_settings()  # validate early
        if self.qlora and self.lora_settings().r < 1:
            raise ValueError("qlora needs lora.r >= 1 (QLoRA trains LoRA adapters on a 4-bit base)")

    def lora_settings(self) -> LoraSettings:
        return from_dict(LoraSettings, self.lora or {}, where="recipe.lora")

    @property
    def digest(self) -> str:
        """Fields added after a recipe's first release count only when set, so older runs keep their digest."""
        d = self.to_dict()
        for k, default in LATER_DEFAULTS.items():
            if d.get(k) == default:
                d.pop(k)
        return digest(d)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def load_recipe(path: str | Path, overrides: Optional[Dict[str, Any]] = None) -> Recipe:
    """Read a recipe YAML (unknown keys are named in the error) and apply CLI overrides."""
    data = load_yaml(path, what="recipe")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"recipe '{path}' must be a mapping of settings; see training/tiny-ce.yaml")
    data = dict(data)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(Recipe, data, where=f"recipe '{path}'")
