"""Checkpoint kinds -> MDLM. A registry of (detect, load) pairs, tried in order.

Kinds: `mdlm` (our own format), `llada` (LLaDA's published layout, mapped onto native Llama),
`lladamoe` (LLaDA-MoE, native Qwen3-MoE: see `moe`), `dream` (Dream's layout, native Qwen2 with
shifted logits), `remote` (AutoModel with remote code, only when the user allows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mdlm_bench.errors import UserError
from mdlm_bench.models import moe
from mdlm_bench.models.checkpoint import (LoadOptions, build_native, check_attn, finish, load_remote, load_state,
                                          load_tokenizer, read_config, read_json_file, special_tokens, weight_files)
from mdlm_bench.models.mdlm import META_FILE, MDLM, ModelMeta
from mdlm_bench.registry import Registry


@dataclass
class Kind:
    detect: Callable[[Path, dict], bool]
    load: Callable[[Path, dict, LoadOptions], MDLM]


KINDS: Registry[Kind] = Registry("checkpoint kind")


# --- mdlm-bench's own format ---------------------------------------------------------------
def _detect_own(path: Path, cfg: dict) -> bool:
    return (path / META_FILE).is_file()


def _load_own(path: Path, cfg: dict, opts: LoadOptions) -> MDLM:
    from transformers import AutoConfig, AutoModelForCausalLM

    from mdlm_bench.config import from_dict

    meta = from_dict(ModelMeta, read_json_file(path / META_FILE), f"'{path / META_FILE}'")
    weight_files(path, opts.allow_pickle)
    config = AutoConfig.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(
        str(path), config=config, dtype=opts.dtype, attn_implementation=check_attn(opts.attn),
        use_safetensors=not opts.allow_pickle or None,
    )
    return MDLM(finish(model, opts), load_tokenizer(path, opts.trust_remote_code), meta, name=str(path))


KINDS.add("mdlm", Kind(_detect_own, _load_own))


# --- LLaDA's published layout ----------------------------------------------------------------
def _llada_to_llama_config(cfg: dict, attn: str = "sdpa"):
    from transformers import LlamaConfig

    d = cfg["d_model"]
    return LlamaConfig(
        vocab_size=cfg.get("embedding_size") or cfg["vocab_size"],
        hidden_size=d,
        intermediate_size=cfg.get("mlp_hidden_size") or cfg.get("mlp_ratio", 4) * d,
        num_hidden_layers=cfg["n_layers"],
        num_attention_heads=cfg["n_heads"],
        num_key_value_heads=cfg.get("n_kv_heads") or cfg["n_heads"],
        max_position_embeddings=cfg.get("max_sequence_length", 4096),
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-5),
        rope_theta=cfg.get("rope_theta", 10000.0),
        attention_bias=bool(cfg.get("include_bias", False) or cfg.get("include_qkv_bias", False)),
        mlp_bias=bool(cfg.get("include_bias", False)),
        tie_word_embeddings=bool(cfg.get("weight_tying", False)),
        eos_token_id=cfg.get("eos_token_id"),  # the EOS that pads answers in training (train/format.py)
        pad_token_id=cfg.get("pad_token_id"),
        bos_token_id=cfg.get("bos_token_id"),
        attn_implementation=check_attn(attn),
    )


# LLaDA block parameter -> native Llama decoder-layer parameter.
LLADA_BLOCK_MAP = {
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ff_norm": "post_attention_layernorm",
}


def llada_key_to_llama(key: str) -> str:
    k = key.removeprefix("model.").removeprefix("transformer.")
    if k.startswith("wte."):
        return "model.embed_tokens." + k[4:]
    if k.startswith("ln_f."):
        return "model.norm." + k[5:]
    if k.startswith("ff_out."):
        return "lm_head." + k[7:]
    if k.startswith("blocks."):
        _, idx, rest = k.split(".", 2)
        name, _, leaf = rest.rpartition(".")
        if name in LLADA_BLOCK_MAP:
            return f"model.layers.{idx}.{LLADA_BLOCK_MAP[name]}.{leaf}"
    raise UserError(f"unexpected LLaDA weight '{key}'; this checkpoint is not in LLaDA's published layout")


def _detect_llada(path: Path, cfg: dict) -> bool:
    return str(cfg.get("model_type", "")).lower() == "llada"


def _load_llada(path: Path, cfg: dict, opts: LoadOptions) -> MDLM:
    from transformers import LlamaForCausalLM

    for key in ("d_model", "n_layers", "n_heads", "vocab_size"):
        if key not in cfg:
            raise UserError(f"'{path}/config.json' says model_type llada but lacks '{key}'; check the checkpoint")
    state = {llada_key_to_llama(k): v for k, v in load_state(weight_files(path, opts.allow_pickle), opts).items()}
    model = build_native(LlamaForCausalLM, _llada_to_llama_config(cfg, opts.attn), state, opts)
    tok = load_tokenizer(path, opts.trust_remote_code)
    meta = ModelMeta(
        flavour="llada", backbone="llama",
        **special_tokens(tok, cfg, path),
    )
    return MDLM(model, tok, meta, name=str(path))


KINDS.add("llada", Kind(_detect_llada, _load_llada))


# --- Dream's layout ----------------------------------------------------------------------------
def _detect_dream(path: Path, cfg: dict) -> bool:
    return str(cfg.get("model_type", "")).lower() == "dream"


def _load_dream(path: Path, cfg: dict, opts: LoadOptions) -> MDLM:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
            "eos_token_id", "pad_token_id", "bos_token_id")
    config = Qwen2Config(**{k: cfg[k] for k in keys if k in cfg}, attn_implementation=check_attn(opts.attn))
    state = load_state(weight_files(path, opts.allow_pickle), opts)
    model = build_native(Qwen2ForCausalLM, config, state, opts)
    tok = load_tokenizer(path, opts.trust_remote_code)  # Dream ships a (slow) tokenizer class of its own
    meta = ModelMeta(
        flavour="dream", backbone="qwen2", **special_tokens(tok, cfg, path),
        logits_shift=True, decode_defaults=dream_decode_defaults(path),
    )
    return MDLM(model, tok, meta, name=str(path))


# Dream's `DreamGenerationConfig` defaults, for the settings a checkpoint's generation_config.json leaves out.
DREAM_SAMPLER = {"alg": "origin", "eps": 1e-3, "temperature": 0.0, "top_p": None, "top_k": None, "alg_temp": None}


def dream_decode_defaults(path: Path) -> dict:
    """Dream's own sampler settings for a checkpoint: its generation_config.json over Dream's defaults, in
    one block (Dream has none)."""
    p = path / "generation_config.json"
    gen = read_json_file(p) if p.is_file() else {}
    gen = gen if isinstance(gen, dict) else {}
    return {**{k: gen.get(k, v) for k, v in DREAM_SAMPLER.items()}, "block_length": None}


KINDS.add("dream", Kind(_detect_dream, _load_dream))


# --- anything else, with remote code -----------------------------------------------------------
def _detect_remote(path: Path, cfg: dict) -> bool:
    return bool(cfg)


KINDS.add("remote", Kind(_detect_remote, load_remote))
KINDS.add("lladamoe", Kind(moe.detect, moe.load))


def _checked(m: MDLM, path: Path) -> MDLM:
    """Special-token ids must lie inside the vocabulary (a missing mask id defaults to -1)."""
    n = m.vocab_size
    for name, ids in (("mask_token_id", [m.meta.mask_token_id]), ("eos_token_ids", m.meta.eos_token_ids),
                      ("slack_token_id", [] if m.meta.slack_token_id is None else [m.meta.slack_token_id])):
        bad = [i for i in ids if not 0 <= int(i) < n]
        if bad:
            raise UserError(f"{name} {bad[0]} of '{path}' is missing or outside the vocabulary (0..{n - 1}); set it "
                            f"in {META_FILE} to the id of that token")
    return m

DETECT_ORDER = ["mdlm", "llada", "lladamoe", "dream", "remote"]


def load_path(path: Path, opts: LoadOptions) -> MDLM:
    from safetensors import SafetensorError

    cfg = read_config(path)
    for name in DETECT_ORDER:
        kind = KINDS.get(name)
        if kind.detect(path, cfg):
            try:
                return _checked(kind.load(path, cfg, opts), path)
            except UserError:
                raise
            except (ValueError, RuntimeError, KeyError, TypeError, AttributeError, SafetensorError) as e:
                # transformers and safetensors report a damaged checkpoint in many ways; name the directory
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
                raise UserError(f"could not load the checkpoint '{path}' ({type(e).__name__}: {first}); check that "
                                "config.json, the weights and the tokenizer are complete and belong together") from None
    raise UserError(
        f"'{path}' is not a model checkpoint (no config.json or {META_FILE}); "
        "pass a checkpoint directory, a bundled name (see 'mdlm-bench ls models') or make one with 'mdlm-bench init-model'"
    )
