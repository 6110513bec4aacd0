"""What every checkpoint loader shares: load options, JSON and weight files, the tokenizer (with the
remote-code refusal), the attention implementation, and building a native module from a state dict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch

from mdlm_bench.errors import UserError
from mdlm_bench.models.mdlm import MDLM, ModelMeta
from mdlm_bench.models.tokenizer import SLACK, find_eos_ids, find_mask_id, token_id


@dataclass
class LoadOptions:
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    trust_remote_code: bool = False
    allow_pickle: bool = False
    attn: str = "sdpa"  # transformers attn_implementation of native backbones


def read_config(path: Path) -> dict:
    p = path / "config.json"
    if not p.is_file():
        return {}
    cfg = read_json_file(p)
    if not isinstance(cfg, dict):
        raise UserError(f"'{p}' holds a JSON {type(cfg).__name__}, not an object of model settings; restore the "
                        "checkpoint's config.json")
    return cfg


def read_json_file(p: Path):
    try:
        with open(p, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"'{p}' is not valid UTF-8 JSON ({str(e).splitlines()[0][:80]}); restore the file from "
                        "the checkpoint's source") from None


def weight_files(path: Path, allow_pickle: bool) -> List[Path]:
    st = sorted(path.glob("*.safetensors"))
    if st:
        return st
    pickled = sorted(path.glob("*.bin")) + sorted(path.glob("*.pt"))
    if pickled and not allow_pickle:
        raise UserError(
            f"'{path}' has only pickled weights ({pickled[0].name}), which can run code when loaded; "
            "convert them to safetensors or pass --allow-pickle if you trust the source"
        )
    if not pickled:
        raise UserError(f"'{path}' has a config.json but no weights (*.safetensors); check the download")
    return pickled


def load_state(files: List[Path], opts: Optional[LoadOptions] = None) -> Dict[str, torch.Tensor]:
    """All tensors of the weight files, each read straight onto opts.device and cast to opts.dtype one at a time
    (so an 8B bf16 model never sits in host memory in fp32, nor in every training process's RAM at once)."""
    state: Dict[str, torch.Tensor] = {}
    device, dtype = (opts.device, opts.dtype) if opts is not None else ("cpu", None)
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), framework="pt", device=str(device)) as h:
                for k in h.keys():
                    t = h.get_tensor(k)
                    state[k] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
        else:
            state.update(torch.load(f, map_location="cpu", weights_only=True))
    return state


ATTN = ("sdpa", "eager", "flash_attention_2")


def check_attn(attn: str) -> str:
    """A known attn_implementation that can run here (flash_attention_2 needs the flash-attn package)."""
    from mdlm_bench.errors import did_you_mean

    if attn not in ATTN:
        raise UserError(f"unknown --attn '{attn}'{did_you_mean(attn, ATTN)}; choose one of {', '.join(ATTN)}")
    if attn == "flash_attention_2":
        from transformers.utils import is_flash_attn_2_available

        if not is_flash_attn_2_available():
            raise UserError("--attn flash_attention_2 needs the flash-attn package and a CUDA GPU, which this "
                            "machine lacks; use --attn sdpa (same logits)")
    return attn


def remote_tokenizer_class(path: Path) -> Optional[str]:
    """The tokenizer class a checkpoint ships as code (tokenizer_config.json auto_map), or None."""
    p = path / "tokenizer_config.json"
    if not p.is_file():
        return None
    tc = read_json_file(p)
    auto = (tc.get("auto_map") or {}).get("AutoTokenizer") if isinstance(tc, dict) else None
    if isinstance(auto, (list, tuple)):
        auto = next((a for a in auto if a), None)
    return auto or None


def load_tokenizer(path: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    shipped = remote_tokenizer_class(path)
    if shipped and not trust_remote_code:
        # Refuse before transformers asks on the terminal: the class is code from the checkpoint.
        raise UserError(f"'{path}' ships its own tokenizer class ({shipped}), which is code from the checkpoint; "
                        "pass --trust-remote-code to run it")
    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"could not load a tokenizer from '{path}' ({str(e).splitlines()[0][:120]}); "
                        "the checkpoint needs tokenizer.json or equivalent files") from None
    tok.padding_side = "left"
    return tok


def special_tokens(tok, cfg: dict, path: Path) -> dict:
    """ModelMeta's token fields of a published checkpoint: mask, EOS and slack from its tokenizer and config."""
    return dict(mask_token_id=find_mask_id(tok, cfg.get("mask_token_id"), f" of '{path}'"),
                eos_token_ids=find_eos_ids(tok, cfg.get("eos_token_id")), slack_token_id=token_id(tok, SLACK),
                pad_token_id=cfg.get("pad_token_id"), source=str(path))


def finish(model, opts: LoadOptions):
    model.to(device=opts.device, dtype=opts.dtype)
    model.eval()
    return model


def build_native(cls, config, state: Dict[str, torch.Tensor], opts: LoadOptions):
    """Instantiate `cls(config)` without allocating random weights, then assign `state` (strict)."""
    with torch.device("meta"):
        model = cls(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    tied = getattr(config, "tie_word_embeddings", False)
    missing = [k for k in missing if not (tied and k == "lm_head.weight")]
    if missing or unexpected:
        raise UserError(
            f"checkpoint weights do not match the {config.model_type} layout "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); is this the right checkpoint kind?"
        )
    if tied:
        model.tie_weights()
    # Non-persistent buffers (rotary inv_freq) were created on meta: rebuild them for real.
    model.model.rotary_emb = type(model.model.rotary_emb)(config)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise UserError(f"checkpoint left {left[:3]} uninitialised; the checkpoint is incomplete")
    return finish(model, opts)


def load_remote(path: Path, cfg: dict, opts: LoadOptions) -> MDLM:
    from transformers import AutoModel

    if not opts.trust_remote_code:
        raise UserError(
            f"'{path}' is a '{cfg.get('model_type', '?')}' checkpoint that mdlm-bench cannot map onto a native "
            "module; pass --trust-remote-code to run the code shipped with it"
        )
    weight_files(path, opts.allow_pickle)
    model = AutoModel.from_pretrained(str(path), trust_remote_code=True, dtype=opts.dtype)
    tok = load_tokenizer(path, trust_remote_code=True)
    meta = ModelMeta(
        flavour="llada", backbone=str(cfg.get("model_type", "remote")),
        **special_tokens(tok, cfg, path),
    )
    return MDLM(finish(model, opts), tok, meta, name=str(path), native=False)
