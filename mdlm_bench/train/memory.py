"""Training memory per GPU computed from a model's shapes (the README's 8B table; benchmarks/train_memory.py).

Bytes per parameter: bf16 weights 2; with an fp32 master copy (FSDP2 / ZeRO keep one, sharded) 4 + fp32
gradient 4 + Adam moments 8. Activations under gradient checkpointing: one bf16 hidden state per layer boundary
[b, T, d] plus one layer recomputed in full (about 34 * b * T * d bytes with a fused attention kernel: Korthikanti
et al. 2022, without the attention-score term), plus the LM head's logits on the canvas [b, N, V] (bf16 out, fp32
copy in the loss and its gradient: 10 bytes each). Figures are estimates for planning; the GPU check in
benchmarks/train_memory.py measures the peak of a random model of the same shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

GB = 1e9


@dataclass(frozen=True)
class Shape:
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    tied: bool = False

    @property
    def per_layer(self) -> int:
        d, hd = self.hidden, self.hidden // self.heads
        attn = d * d * 2 + 2 * d * self.kv_heads * hd  # q, o; k, v
        return attn + 3 * d * self.ffn + 2 * d  # gate, up, down; two RMSNorms

    @property
    def embeddings(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def params(self) -> int:
        return self.embeddings + self.layers * self.per_layer + self.hidden

    def lora_params(self, r: int, modules: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj")) -> int:
        d, kvd = self.hidden, self.kv_heads * (self.hidden // self.heads)
        dims = {"q_proj": (d, d), "k_proj": (d, kvd), "v_proj": (d, kvd), "o_proj": (d, d),
                "gate_proj": (d, self.ffn), "up_proj": (d, self.ffn), "down_proj": (self.ffn, d)}
        return self.layers * sum(r * (dims[m][0] + dims[m][1]) for m in modules)


# LLaDA-8B-Instruct's config.json: d_model 4096, n_layers 32, n_heads 32, n_kv_heads 32, mlp_hidden_size 12288,
# embedding_size 126464, weight_tying false.
LLADA_8B = Shape(vocab=126464, hidden=4096, layers=32, heads=32, kv_heads=32, ffn=12288)


def activations(s: Shape, micro_batch: int, seq: int, canvas: int) -> float:
    """Bytes of activations of one micro-batch under gradient checkpointing (see the module docstring)."""
    boundaries = s.layers * micro_batch * seq * s.hidden * 2
    one_layer = 34 * micro_batch * seq * s.hidden
    logits = micro_batch * canvas * s.vocab * 10
    return float(boundaries + one_layer + logits)


def full_finetune(s: Shape, gpus: int, micro_batch: int, seq: int, canvas: int) -> Dict[str, float]:
    """Per-GPU bytes of a full fine-tune sharded over `gpus` (FSDP2 FULL_SHARD or ZeRO-3)."""
    p = s.params
    return {"weights (bf16, rank-local load, before sharding)": 2.0 * p,
            "fp32 master + grads + Adam, sharded": 16.0 * p / gpus,
            "gathered bf16 layers (2, with prefetch)": 2 * 2.0 * s.per_layer,
            "activations": activations(s, micro_batch, seq, canvas)}


def lora(s: Shape, r: int, micro_batch: int, seq: int, canvas: int, new_token_rows: bool,
         base_bytes: float = 2.0) -> Dict[str, float]:
    """One-GPU bytes of LoRA (base frozen at base_bytes per weight: 2 bf16, about 0.5 for 4-bit QLoRA layers).
    new_token_rows: a token was added (<slack>), so the embeddings and LM head train in full (peft
    modules_to_save: a trainable fp32 copy of each)."""
    trainable = s.lora_params(r) + (s.embeddings if new_token_rows else 0)
    frozen_linear = s.layers * s.per_layer
    return {"frozen base": base_bytes * frozen_linear + 2.0 * s.embeddings,
            "trainable (fp32 weights + grads + Adam)": 16.0 * trainable,
            "activations": activations(s, micro_batch, seq, canvas)}


def table(s: Shape = LLADA_8B, micro_batch: int = 2, seq: int = 2048, canvas: int = 1024) -> List[List[str]]:
    """Rows (setting, per-GPU GB, of which states, fits 80 GB) of the README's table."""
    rows = []

    def add(name, parts, extra_peak=0.0):
        steady = sum(v for k, v in parts.items() if "before sharding" not in k)
        peak = max(steady, extra_peak)
        rows.append([name, f"{peak / GB:.1f}", "; ".join(f"{k} {v / GB:.1f}" for k, v in parts.items()),
                     "yes" if peak < 80 * GB else "no"])

    ff = full_finetune(s, 8, micro_batch, seq, canvas)
    add("full fine-tune, FSDP2 / ZeRO-3, 8 x 80 GB", ff, ff["weights (bf16, rank-local load, before sharding)"])
    add("full fine-tune, DDP (no sharding), per GPU", {"fp32 weights + grads + Adam": 16.0 * s.params,
                                                       "activations": activations(s, micro_batch, seq, canvas)})
    add("LoRA r=16 (CE: no new token), 1 x 80 GB", lora(s, 16, micro_batch, seq, canvas, False))
    add("LoRA r=16 + <slack> rows (slack-CTC), 1 x 80 GB", lora(s, 16, micro_batch, seq, canvas, True))
    add("QLoRA r=16 + <slack> rows, 1 x 80 GB", lora(s, 16, micro_batch, seq, canvas, True, base_bytes=0.5))
    return rows
