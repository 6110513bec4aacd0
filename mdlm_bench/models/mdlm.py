"""The loaded model: one object with bidirectional `logits`, the tokenizer and the special-token ids."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

import torch

META_FILE = "mdlm_bench.json"


@dataclass
class ModelMeta:
    """What mdlm-bench needs beyond a transformers checkpoint (saved as mdlm_bench.json)."""

    flavour: str = "llada"  # llada | dream: decoding conventions of the family
    backbone: str = "llama"  # transformers model_type of the native module
    mask_token_id: int = -1
    eos_token_ids: List[int] = field(default_factory=list)
    slack_token_id: Optional[int] = None
    pad_token_id: Optional[int] = None
    logits_shift: bool = False  # Dream predicts token i from position i-1
    source: str = ""  # where the weights came from (path, preset, parent checkpoint)
    # How answers were laid out in training: "canvas" = padded to `canvas` tokens (one EOS, then EOS or
    # <slack> as canvas_pad_with); the lm-eval adapter pads continuations the same way by default.
    pad_to: str = "none"
    canvas: Optional[int] = None
    canvas_pad_with: str = "eos"


def bidirectional_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, L] bool key mask -> [B, 1, L, L] bool 4D mask (every query sees every real key).

    A 2D mask would make transformers build a causal mask; a 4D one is used as given. Pad queries
    also see the real keys, so no row is fully masked (which would give NaN under SDPA).
    """
    B, L = attention_mask.shape
    return attention_mask[:, None, None, :].expand(B, 1, L, L)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Left padding must not shift positions: the first real token is position 0. [B, L] -> [B, L]."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)


class MDLM:
    """A masked diffusion LM ready for decoding and training.

    Attributes: model (nn.Module), tokenizer, meta (ModelMeta), name, device, dtype.
    """

    def __init__(self, model, tokenizer, meta: ModelMeta, name: str = "", native: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self.name = name
        self.native = native  # native transformers backbone: takes 4D masks and position ids

    # --- special tokens ------------------------------------------------------------------
    @property
    def mask_id(self) -> int:
        return self.meta.mask_token_id

    @property
    def eos_ids(self) -> List[int]:
        return list(self.meta.eos_token_ids)

    @property
    def slack_id(self) -> Optional[int]:
        return self.meta.slack_token_id

    @property
    def pad_id(self) -> int:
        if self.meta.pad_token_id is not None:
            return self.meta.pad_token_id
        return self.eos_ids[0] if self.eos_ids else self.mask_id

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def max_positions(self) -> Optional[int]:
        cfg = self.model.config
        return getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "max_sequence_length", None)

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    # --- forward -------------------------------------------------------------------------
    def logits(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
               keep_last: Optional[int] = None) -> torch.Tensor:
        """input_ids [B, L] long, attention_mask [B, L] bool (None = all real) -> logits [B, L, V].

        keep_last=n returns only the last n positions [B, n, V] (the generated region), skipping
        the LM head on the prompt.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        attention_mask = attention_mask.bool()
        shift = self.meta.logits_shift
        keep = 0 if keep_last is None else keep_last + int(shift)
        if self.native:
            out = self.model(
                input_ids=input_ids,
                attention_mask=bidirectional_mask(attention_mask),
                position_ids=position_ids_from_mask(attention_mask),
                use_cache=False,
                logits_to_keep=keep,
            )
            logits = out.logits
        else:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
            logits = out.logits if hasattr(out, "logits") else out[0]
            if keep:
                logits = logits[:, -keep:]
        if shift:  # position i is predicted from the hidden state at i-1
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
            if keep:
                logits = logits[:, 1:]
        return logits

    # --- text ----------------------------------------------------------------------------
    def chat_prompt(self, messages) -> str:
        """Chat template applied, with the assistant turn opened. messages: [{"role", "content"}]."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(m["content"] for m in messages)

    def add_slack_token(self, token: str = "<slack>") -> int:
        """Ensure `token` exists (resizing embeddings if new); record and return its id."""
        vocab = self.tokenizer.get_vocab()
        if token not in vocab:
            self.tokenizer.add_special_tokens({"additional_special_tokens": [token]})
            new_size = len(self.tokenizer)
            if new_size > self.vocab_size:
                self.model.resize_token_embeddings(new_size)
        self.meta.slack_token_id = int(self.tokenizer.convert_tokens_to_ids(token))
        return self.meta.slack_token_id

    # --- saving --------------------------------------------------------------------------
    def save(self, out_dir) -> Path:
        """Write the mdlm-bench format: save_pretrained (safetensors) + tokenizer + mdlm_bench.json."""
        from mdlm_bench.io import atomic_write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        atomic_write_text(out / META_FILE, json.dumps(asdict(self.meta), indent=2) + "\n")
        return out
