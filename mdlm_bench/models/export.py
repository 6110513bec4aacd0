"""Export a model to its family's published layout, for tools that load LLaDA or Dream checkpoints with the
families' own modeling code (LLaDA's eval scripts, Fast-dLLM, dllm, OpenCompass).

mdlm-bench's own layout (`MDLM.save`) is a native `LlamaForCausalLM` / `Qwen2ForCausalLM` checkpoint plus
mdlm_bench.json. Plain transformers would load it as a *causal* LM and get different logits, since these models
attend bidirectionally; `export` writes instead:

- llada: weights under LLaDA's names (model.transformer.wte / blocks.i.q_proj ... / ln_f / ff_out), a config with
  model_type "llada" and LLaDA's fields (d_model, n_layers, n_heads, n_kv_heads, mlp_hidden_size, vocab_size,
  embedding_size, rope_theta, rms_norm_eps, weight_tying, mask/eos/pad ids), architectures LLaDAModelLM;
- dream: Qwen2 weight names (Dream keeps them), a config with model_type "Dream", architectures DreamModel and
  mask_token_id; Dream predicts token i from position i-1, as the native module trained here does before the shift.

Both get the tokenizer with <slack> (and its id in the config as slack_token_id). Modeling code is not part of a
checkpoint made here: the *.py files and the config's other fields (auto_map ...) come from the original checkpoint
(`code_from`, else the one the model was trained from, when it is in this layout).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Dict, Optional

import torch

from mdlm_bench.errors import UserError
from mdlm_bench.models.loaders import LLADA_BLOCK_MAP

LAYOUTS = ("llada", "dream")
_LLAMA_TO_LLADA = {v: k for k, v in LLADA_BLOCK_MAP.items()}


def llama_key_to_llada(key: str) -> str:
    """Inverse of loaders.llada_key_to_llama: a native Llama parameter name -> LLaDA's."""
    if key.startswith("model.embed_tokens."):
        return "model.transformer.wte." + key.removeprefix("model.embed_tokens.")
    if key.startswith("model.norm."):
        return "model.transformer.ln_f." + key.removeprefix("model.norm.")
    if key.startswith("lm_head."):
        return "model.transformer.ff_out." + key.removeprefix("lm_head.")
    if key.startswith("model.layers."):
        _, _, idx, rest = key.split(".", 3)
        name, _, leaf = rest.rpartition(".")
        if name in _LLAMA_TO_LLADA:
            return f"model.transformer.blocks.{idx}.{_LLAMA_TO_LLADA[name]}.{leaf}"
    raise UserError(f"weight '{key}' has no place in LLaDA's layout; only Llama-backbone models export as llada")


def _llada_config(cfg, meta, slack_id, base: Optional[dict]) -> dict:
    d = dict(base or {})
    d.update({
        "model_type": "llada", "architectures": ["LLaDAModelLM"], "d_model": cfg.hidden_size,
        "n_heads": cfg.num_attention_heads, "n_kv_heads": cfg.num_key_value_heads, "n_layers": cfg.num_hidden_layers,
        "mlp_hidden_size": cfg.intermediate_size, "vocab_size": cfg.vocab_size, "embedding_size": cfg.vocab_size,
        "max_sequence_length": cfg.max_position_embeddings, "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": _rope_theta(cfg), "weight_tying": bool(cfg.tie_word_embeddings),
        "include_bias": bool(getattr(cfg, "mlp_bias", False)),
        "include_qkv_bias": bool(getattr(cfg, "attention_bias", False)), "block_type": "llama",
        "activation_type": "silu", "layer_norm_type": "rms", "rope": True, "alibi": False,
        "mask_token_id": meta.mask_token_id, "slack_token_id": slack_id,
    })
    for key in ("eos_token_id", "pad_token_id", "bos_token_id"):
        if getattr(cfg, key, None) is not None:
            d[key] = getattr(cfg, key)
    if "eos_token_id" not in d and meta.eos_token_ids:
        d["eos_token_id"] = meta.eos_token_ids[0]
    return d


def _rope_theta(cfg) -> float:
    theta = getattr(cfg, "rope_theta", None)
    if theta is None:  # transformers 5 keeps it in rope_parameters
        theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return float(theta)


def _dream_config(cfg, meta, slack_id, base: Optional[dict]) -> dict:
    d = dict(base or {})
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "tie_word_embeddings",
            "eos_token_id", "pad_token_id", "bos_token_id")
    d.update({k: getattr(cfg, k) for k in keys if getattr(cfg, k, None) is not None})
    d.update({"model_type": "Dream", "architectures": ["DreamModel"], "rope_theta": _rope_theta(cfg),
              "rope_scaling": None, "mask_token_id": meta.mask_token_id, "slack_token_id": slack_id,
              "use_cache": False})
    return d


def _original(mdlm, layout: str, code_from: Optional[Path]):
    """(directory, config) of the original checkpoint in this layout: code_from, else the model's source (the
    checkpoint a fine-tune started from), else (None, None)."""
    for cand in (code_from, Path(mdlm.meta.source) if mdlm.meta.source else None):
        if cand is not None and (cand / "config.json").is_file():
            cfg = json.loads((cand / "config.json").read_text())
            if str(cfg.get("model_type", "")).lower() == layout:
                return cand, cfg
    return None, None


def export(mdlm, layout: str, out: Path, code_from: Optional[Path] = None) -> Path:
    """Write `mdlm` to `out` in the published `layout` (llada | dream). Returns out."""
    from safetensors.torch import save_file

    if layout not in LAYOUTS:
        from mdlm_bench.errors import unknown

        raise unknown("layout", layout, LAYOUTS)
    if not mdlm.native:
        raise UserError("only models on a native transformers backbone can be exported; this one runs remote code")
    want = {"llada": ("llada", "llama"), "dream": ("dream", "qwen2")}[layout]
    if (mdlm.meta.flavour, mdlm.meta.backbone) != want:
        raise UserError(f"this is a {mdlm.meta.flavour} model on a {mdlm.meta.backbone} backbone; it exports only as "
                        f"--layout {mdlm.meta.flavour} (the {layout} layout needs a {want[1]} backbone)")
    cfg = mdlm.model.config
    state: Dict[str, torch.Tensor] = {k: v.detach().contiguous() for k, v in mdlm.model.state_dict().items()}
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    if layout == "llada":
        state = {llama_key_to_llada(k): v for k, v in state.items()}
    origin, base = _original(mdlm, layout, code_from)
    config = (_llada_config if layout == "llada" else _dream_config)(cfg, mdlm.meta, mdlm.slack_id, base)
    config["torch_dtype"] = str(next(iter(state.values())).dtype).removeprefix("torch.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    mdlm.tokenizer.save_pretrained(out)
    if origin is not None:  # the family's modeling code and auto_map (in `base`) travel with the weights
        for py in sorted(Path(origin).glob("*.py")):
            shutil.copy2(py, out / py.name)
    return out
