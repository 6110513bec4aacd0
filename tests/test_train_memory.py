"""The memory table's parameter counts against the real modules built on the meta device (no memory used)."""

import torch

from mdlm_bench.train.memory import LLADA_8B, Shape, full_finetune, table


def _llama(s: Shape):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=s.vocab, hidden_size=s.hidden, num_hidden_layers=s.layers,
                      num_attention_heads=s.heads, num_key_value_heads=s.kv_heads, intermediate_size=s.ffn,
                      tie_word_embeddings=s.tied)
    with torch.device("meta"):
        return LlamaForCausalLM(cfg)


def test_parameter_count_of_the_8b_shape_matches_the_module():
    m = _llama(LLADA_8B)
    assert sum(p.numel() for p in m.parameters()) == LLADA_8B.params
    assert abs(LLADA_8B.params / 1e9 - 8.02) < 0.01  # LLaDA-8B


def test_lora_count_matches_peft():
    from peft import LoraConfig, get_peft_model

    s = Shape(vocab=300, hidden=64, layers=3, heads=4, kv_heads=2, ffn=96)
    m = get_peft_model(_llama(s), LoraConfig(r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == s.lora_params(8)


def test_table_rows():
    rows = {r[0]: r for r in table()}
    fsdp = rows["full fine-tune, FSDP2 / ZeRO-3, 8 x 80 GB"]
    assert fsdp[3] == "yes" and rows["full fine-tune, DDP (no sharding), per GPU"][3] == "no"
    parts = full_finetune(LLADA_8B, 8, 2, 2048, 1024)
    assert abs(parts["fp32 master + grads + Adam, sharded"] - 2 * LLADA_8B.params) < 1  # 16 bytes / 8 GPUs
