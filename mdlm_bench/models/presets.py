"""Random-init presets for tests, examples and benchmarks (`mdlm-bench init-model`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mdlm_bench.registry import Registry


@dataclass(frozen=True)
class Preset:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    num_key_value_heads: int = 0  # 0 = same as heads


PRESETS: Registry[Preset] = Registry("model preset")
PRESETS.add("tiny", Preset(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128))
PRESETS.add("small", Preset(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=384))
# About 50M parameters: the larger point of the sampler benchmark.
PRESETS.add("base-50m", Preset(hidden_size=576, num_hidden_layers=12, num_attention_heads=9,
                               intermediate_size=1536, max_position_embeddings=1024))


def init_model(out_dir, preset: str = "tiny", seed: int = 0) -> Path:
    """Write a random-init Llama-backbone checkpoint with the character tokenizer to `out_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mdlm_bench.models.mdlm import MDLM, ModelMeta, quiet_transformers
    from mdlm_bench.models.tokenizer import build_char_tokenizer

    p = PRESETS.get(preset)
    quiet_transformers()
    tok = build_char_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=p.hidden_size,
        intermediate_size=p.intermediate_size,
        num_hidden_layers=p.num_hidden_layers,
        num_attention_heads=p.num_attention_heads,
        num_key_value_heads=p.num_key_value_heads or p.num_attention_heads,
        max_position_embeddings=p.max_position_embeddings,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    meta = ModelMeta(
        flavour="llada", backbone="llama", mask_token_id=tok.mask_token_id, eos_token_ids=[tok.eos_token_id],
        slack_token_id=tok.convert_tokens_to_ids("<slack>"), pad_token_id=tok.pad_token_id,
        source=f"init-model preset={preset} seed={seed}",
    )
    return MDLM(model, tok, meta, name=preset).save(out_dir)
