"""A tiny checkpoint in LLaDA's published layout with LLaDA's special tokens, built in the test session.

Its tokenizer keeps separate <|endoftext|> (the config's EOS) and <|eot_id|> (the template's end of turn), has
<|mdm_mask|> and no <slack>; its chat template closes each turn with <|eot_id|> in the Llama-3 form that
LLaDA-8B-Instruct's tokenizer_config.json uses (a transcription of the format, not of any code).
"""

import json
import string
from pathlib import Path

import torch

SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
            "<|mdm_mask|>"]
TEMPLATE = ("{% for m in messages %}{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}"
            "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
            "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def llada_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    vocab = {t: i for i, t in enumerate(["<unk>"] + chars + SPECIALS)}  # specials last, as in LLaDA's vocab
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens(SPECIALS)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                  unk_token="<unk>", additional_special_tokens=SPECIALS[2:])
    tok.chat_template = TEMPLATE
    return tok


def llada_config(tok, d=32, heads=4, layers=2, ff=64):
    ids = tok.get_vocab()
    return {"model_type": "llada", "architectures": ["LLaDAModelLM"], "d_model": d, "n_heads": heads,
            "n_kv_heads": heads, "n_layers": layers, "mlp_hidden_size": ff, "vocab_size": len(tok),
            "embedding_size": len(tok), "max_sequence_length": 512, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "weight_tying": False, "include_bias": False, "block_type": "llama", "activation_type": "silu",
            "mask_token_id": ids["<|mdm_mask|>"], "eos_token_id": ids["<|endoftext|>"], "pad_token_id":
            ids["<|endoftext|>"], "bos_token_id": ids["<|startoftext|>"]}


def llada_weights(cfg, seed=1):
    """Random weights under LLaDA's key names (model.transformer.*)."""
    g = torch.Generator().manual_seed(seed)
    V, d, f = cfg["vocab_size"], cfg["d_model"], cfg["mlp_hidden_size"]
    shapes = {"model.transformer.wte.weight": (V, d), "model.transformer.ln_f.weight": (d,),
              "model.transformer.ff_out.weight": (V, d)}
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        shapes.update({p + "q_proj.weight": (d, d), p + "k_proj.weight": (d, d), p + "v_proj.weight": (d, d),
                       p + "attn_out.weight": (d, d), p + "ff_proj.weight": (f, d), p + "up_proj.weight": (f, d),
                       p + "ff_out.weight": (d, f), p + "attn_norm.weight": (d,), p + "ff_norm.weight": (d,)})
    return {k: (1 + 0.1 * torch.randn(s, generator=g)) if len(s) == 1 else 0.2 * torch.randn(s, generator=g)
            for k, s in shapes.items()}


def write_llada(out: Path, seed=1) -> Path:
    from safetensors.torch import save_file

    tok = llada_tokenizer()
    cfg = llada_config(tok)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg))
    save_file(llada_weights(cfg, seed), str(out / "model.safetensors"))
    tok.save_pretrained(out)
    return out
