"""LLaDA-MoE's layout (model_type `lladamoe`) on transformers' native Qwen3-MoE module.

LLaDA-MoE's modeling code (an OLMoE derivative) and Qwen3-MoE compute the same function when the config
has per-head q/k RMSNorm (`qk_layernorm`), no shared expert, no router expert bias, no `clip_qkv`, full
rotary and no rope scaling: RMSNorm, rotary, softmax top-k routing without renormalisation (LLaDA-MoE
hard-codes `norm_topk_prob = False`), SwiGLU experts, dense layers where `moe_layer_freq` is 0. Its
per-expert weights are stacked into Qwen3-MoE's fused `gate_up_proj` / `down_proj`. A config outside
that set runs through the checkpoint's own code (`--trust-remote-code`), without caches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import torch

from mdlm_bench.errors import UserError
from mdlm_bench.models.checkpoint import (LoadOptions, build_native, check_attn, load_remote, load_state,
                                          load_tokenizer, special_tokens, weight_files)
from mdlm_bench.models.mdlm import MDLM, ModelMeta

REQUIRED = ("vocab_size", "hidden_size", "dense_intermediate_size", "expert_intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_experts", "num_experts_per_tok", "moe_layer_freq")


def detect(path: Path, cfg: dict) -> bool:
    return str(cfg.get("model_type", "")).lower() == "lladamoe"


def native_mismatch(cfg: dict) -> Optional[str]:
    """Why this LLaDA-MoE config has no exact native module (None: Qwen3-MoE computes it)."""
    if not cfg.get("qk_layernorm"):
        return "no q/k layer norm"
    if cfg.get("shared_expert_intermediate_size"):
        return "a shared expert"
    if cfg.get("moe_router_enable_expert_bias"):
        return "a router expert bias"
    if cfg.get("clip_qkv") is not None:
        return "clip_qkv"
    if cfg.get("rope_scaling"):
        return "rope scaling"
    if cfg.get("partial_rotary_factor", 1.0) not in (None, 1, 1.0):
        return "partial rotary embeddings"
    if cfg.get("hidden_act", "silu") != "silu":
        return f"activation {cfg.get('hidden_act')}"
    return None


def qwen3_moe_config(cfg: dict, attn: str = "sdpa"):
    from transformers import Qwen3MoeConfig

    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise UserError(f"LLaDA-MoE config.json lacks {missing[:3]}; check the checkpoint")
    n, freq = cfg["num_hidden_layers"], list(cfg["moe_layer_freq"])
    if len(freq) != n:
        raise UserError(f"LLaDA-MoE moe_layer_freq has {len(freq)} entries for {n} layers; fix config.json")
    heads = cfg["num_attention_heads"]
    return Qwen3MoeConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["dense_intermediate_size"],
        moe_intermediate_size=cfg["expert_intermediate_size"], num_hidden_layers=n, num_attention_heads=heads,
        num_key_value_heads=cfg.get("num_key_value_heads") or heads, head_dim=cfg["hidden_size"] // heads,
        max_position_embeddings=cfg.get("max_position_embeddings", 4096), rms_norm_eps=cfg.get("rms_norm_eps", 1e-5),
        rope_theta=cfg.get("rope_theta", 10000.0), attention_bias=bool(cfg.get("attention_bias", False)),
        num_experts=cfg["num_experts"], num_experts_per_tok=cfg["num_experts_per_tok"], norm_topk_prob=False,
        decoder_sparse_step=1, mlp_only_layers=[i for i, f in enumerate(freq) if not f], use_sliding_window=False,
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)), attn_implementation=check_attn(attn),
    )


def to_qwen3_moe(state: Dict[str, torch.Tensor], cfg: dict) -> Dict[str, torch.Tensor]:
    """LLaDA-MoE weights -> Qwen3-MoE's: per-expert gate/up/down stacked into [E, 2I, H] and [E, H, I]."""
    out = {k: v for k, v in state.items() if ".mlp.experts." not in k}
    E = cfg["num_experts"]
    for i, f in enumerate(cfg["moe_layer_freq"]):
        if not f:
            continue
        p = f"model.layers.{i}.mlp.experts."
        try:
            gate = [state[f"{p}{e}.gate_proj.weight"] for e in range(E)]
            up = [state[f"{p}{e}.up_proj.weight"] for e in range(E)]
            down = [state[f"{p}{e}.down_proj.weight"] for e in range(E)]
        except KeyError as e:
            raise UserError(f"LLaDA-MoE checkpoint lacks {e.args[0]}; the weights are incomplete") from None
        out[p + "gate_up_proj"] = torch.stack([torch.cat([g, u], 0) for g, u in zip(gate, up)])
        out[p + "down_proj"] = torch.stack(down)
    return out


def load(path: Path, cfg: dict, opts: LoadOptions) -> MDLM:
    reason = native_mismatch(cfg)
    if reason is not None:
        if not opts.trust_remote_code:
            raise UserError(f"'{path}' is a LLaDA-MoE config with {reason}, which no native module computes exactly; "
                            "pass --trust-remote-code to run its own modeling code (no KV caches)")
        return load_remote(path, cfg, opts)
    from transformers import Qwen3MoeForCausalLM

    state = to_qwen3_moe(load_state(weight_files(path, opts.allow_pickle), opts), cfg)
    model = build_native(Qwen3MoeForCausalLM, qwen3_moe_config(cfg, opts.attn), state, opts)
    tok = load_tokenizer(path, opts.trust_remote_code)
    meta = ModelMeta(
        flavour="llada", backbone="qwen3_moe",
        **special_tokens(tok, cfg, path),
    )
    return MDLM(model, tok, meta, name=str(path))
