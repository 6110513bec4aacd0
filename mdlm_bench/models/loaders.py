"""Checkpoint kinds -> MDLM. A registry of (detect, load) pairs, tried in order.

Kinds: `mdlm` (our own format), `llada` (LLaDA's published layout, mapped onto native Llama),
`dream` (Dream's layout, native Qwen2 with shifted logits), `remote` (AutoModel with remote code,
only when the user allows it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from mdlm_bench.errors import UserError
from mdlm_bench.models.mdlm import META_FILE, MDLM, ModelMeta
from mdlm_bench.models.tokenizer import SLACK, find_eos_ids, find_mask_id, token_id
from mdlm_bench.registry import Registry


@dataclass
class LoadOptions:
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    trust_remote_code: bool = False
    allow_pickle: bool = False


@dataclass
class Kind:
    detect: Callable[[Path, dict], bool]
    load: Callable[[Path, dict, LoadOptions], MDLM]


KINDS: Registry[Kind] = Registry("checkpoint kind")


def _read_config(path: Path) -> dict:
    p = path / "config.json"
    if not p.is_file():
        return {}
    cfg = _read_json_file(p)
    if not isinstance(cfg, dict):
        raise UserError(f"'{p}' holds a JSON {type(cfg).__name__}, not an object of model settings; restore the "
                        "checkpoint's config.json")
    return cfg


def _read_json_file(p: Path):
    try:
        with open(p, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"'{p}' is not valid UTF-8 JSON ({str(e).splitlines()[0][:80]}); restore the file from "
                        "the checkpoint's source") from None


def _weight_files(path: Path, allow_pickle: bool) -> List[Path]:
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


def _load_state(files: List[Path], opts: Optional[LoadOptions] = None) -> Dict[str, torch.Tensor]:
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


def _tokenizer(path: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"could not load a tokenizer from '{path}' ({str(e).splitlines()[0][:120]}); "
                        "the checkpoint needs tokenizer.json or equivalent files") from None
    tok.padding_side = "left"
    return tok


def _finish(model, opts: LoadOptions):
    model.to(device=opts.device, dtype=opts.dtype)
    model.eval()
    return model


def _build_native(cls, config, state: Dict[str, torch.Tensor], opts: LoadOptions):
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
    return _finish(model, opts)


# --- mdlm-bench's own format ---------------------------------------------------------------
def _detect_own(path: Path, cfg: dict) -> bool:
    return (path / META_FILE).is_file()


def _load_own(path: Path, cfg: dict, opts: LoadOptions) -> MDLM:
    from transformers import AutoConfig, AutoModelForCausalLM

    from mdlm_bench.config import from_dict

    meta = from_dict(ModelMeta, _read_json_file(path / META_FILE), f"'{path / META_FILE}'")
    _weight_files(path, opts.allow_pickle)
    config = AutoConfig.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(
        str(path), config=config, dtype=opts.dtype, attn_implementation="sdpa",
        use_safetensors=not opts.allow_pickle or None,
    )
    return MDLM(_finish(model, opts), _tokenizer(path), meta, name=str(path))


KINDS.add("mdlm", Kind(_detect_own, _load_own))


# --- LLaDA's published layout ----------------------------------------------------------------
def _llada_to_llama_config(cfg: dict):
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
        attn_implementation="sdpa",
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
    state = {llada_key_to_llama(k): v for k, v in _load_state(_weight_files(path, opts.allow_pickle), opts).items()}
    model = _build_native(LlamaForCausalLM, _llada_to_llama_config(cfg), state, opts)
    tok = _tokenizer(path)
    meta = ModelMeta(
        flavour="llada", backbone="llama",
        mask_token_id=find_mask_id(tok, cfg.get("mask_token_id"), f" of '{path}'"),
        eos_token_ids=find_eos_ids(tok, cfg.get("eos_token_id")),
        slack_token_id=token_id(tok, SLACK), pad_token_id=cfg.get("pad_token_id"), source=str(path),
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
    config = Qwen2Config(**{k: cfg[k] for k in keys if k in cfg}, attn_implementation="sdpa")
    state = _load_state(_weight_files(path, opts.allow_pickle), opts)
    model = _build_native(Qwen2ForCausalLM, config, state, opts)
    tok = _tokenizer(path)
    meta = ModelMeta(
        flavour="dream", backbone="qwen2",
        mask_token_id=find_mask_id(tok, cfg.get("mask_token_id"), f" of '{path}'"),
        eos_token_ids=find_eos_ids(tok, cfg.get("eos_token_id")),
        slack_token_id=token_id(tok, SLACK), pad_token_id=cfg.get("pad_token_id"),
        logits_shift=True, source=str(path),
    )
    return MDLM(model, tok, meta, name=str(path))


KINDS.add("dream", Kind(_detect_dream, _load_dream))


# --- anything else, with remote code -----------------------------------------------------------
def _detect_remote(path: Path, cfg: dict) -> bool:
    return bool(cfg)


def _load_remote(path: Path, cfg: dict, opts: LoadOptions) -> MDLM:
    from transformers import AutoModel

    if not opts.trust_remote_code:
        raise UserError(
            f"'{path}' is a '{cfg.get('model_type', '?')}' checkpoint that mdlm-bench cannot map onto a native "
            "module; pass --trust-remote-code to run the code shipped with it"
        )
    _weight_files(path, opts.allow_pickle)
    model = AutoModel.from_pretrained(str(path), trust_remote_code=True, dtype=opts.dtype)
    tok = _tokenizer(path, trust_remote_code=True)
    meta = ModelMeta(
        flavour="llada", backbone=str(cfg.get("model_type", "remote")),
        mask_token_id=find_mask_id(tok, cfg.get("mask_token_id"), f" of '{path}'"),
        eos_token_ids=find_eos_ids(tok, cfg.get("eos_token_id")),
        slack_token_id=token_id(tok, SLACK), pad_token_id=cfg.get("pad_token_id"), source=str(path),
    )
    return MDLM(_finish(model, opts), tok, meta, name=str(path), native=False)


KINDS.add("remote", Kind(_detect_remote, _load_remote))


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

DETECT_ORDER = ["mdlm", "llada", "dream", "remote"]


def load_path(path: Path, opts: LoadOptions) -> MDLM:
    from safetensors import SafetensorError

    cfg = _read_config(path)
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
