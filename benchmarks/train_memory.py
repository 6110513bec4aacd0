"""Training memory: the estimate from the shapes (mdlm_bench/train/memory.py, the README's table) and, on a GPU,
the measured peak of one training step of a random model of the same shapes, side by side.

    python benchmarks/train_memory.py                       # the 8B table (estimates only)
    python benchmarks/train_memory.py --measure lora-slack  # + peak of an 8B-shaped LoRA step on this GPU
    python benchmarks/train_memory.py --measure full --shape small   # CPU: a scaled-down run of the same code

Modes: lora (r=16, no new token), lora-slack (r=16 + trainable embeddings/LM head, as slack-CTC needs), full
(every weight, one device: the DDP row). The step is the trainer's: bf16 weights, gradient checkpointing,
fp32 trainable masters, forward on prompt + canvas, the recipe's loss, backward and AdamW.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {"8b": None, "small": dict(vocab=4096, hidden=256, layers=4, heads=4, kv_heads=4, ffn=768)}


def measure(shape, mode: str, micro: int, prompt: int, canvas: int, loss_name: str, device: str) -> float:
    """Peak bytes allocated on `device` over one step (CUDA), or -1 on CPU (the step still runs)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mdlm_bench.models.mdlm import MDLM, ModelMeta
    from mdlm_bench.train.data import Encoded, collate, mask_batch
    from mdlm_bench.train.losses import loss_for
    from mdlm_bench.train.recipe import Recipe
    from mdlm_bench.train.scale import enable_checkpointing, master_weights, wrap_lora

    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    cfg = LlamaConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                      num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                      intermediate_size=shape.ffn, tie_word_embeddings=False, attn_implementation="sdpa")
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(dtype)
    V = shape.vocab
    meta = ModelMeta(mask_token_id=V - 1, eos_token_ids=[V - 2], slack_token_id=V - 3, pad_token_id=V - 2)
    lora = mode.startswith("lora")
    recipe = Recipe(loss=loss_name, lora={"r": 16} if lora else {}, pad_with="slack", ctc_band=1)
    if lora:
        model = wrap_lora(model, recipe, slack_added=mode == "lora-slack")
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    enable_checkpointing(model, lora)
    master_weights(model, type("A", (), {"distributed_type": type("T", (), {"name": "NO"})})())
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    mdlm = MDLM(model, None, meta)
    g = torch.Generator().manual_seed(0)
    rows = [Encoded(str(i), torch.randint(0, V - 3, (prompt,), generator=g).tolist(), []) for i in range(micro)]
    canv = torch.randint(0, V - 3, (micro, canvas), generator=g)
    mask, p_mask = mask_batch(torch.ones(micro, canvas, dtype=torch.bool), g)
    batch = {k: v.to(device) for k, v in collate(rows, canv, mask, p_mask, meta.pad_token_id, meta.mask_token_id).items()}
    tail = {k: (v[:, -canvas:] if v.dim() == 2 else v) for k, v in batch.items()}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
        logits = mdlm.logits(batch["input_ids"], batch["attention_mask"], keep_last=canvas)
    loss = loss_for(recipe)(logits, tail, meta.slack_token_id)
    loss.backward()
    opt.step()
    return float(torch.cuda.max_memory_allocated()) if cuda else -1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measure", choices=["lora", "lora-slack", "full"], default=None)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="8b")
    ap.add_argument("--micro-batch", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=1024)
    ap.add_argument("--canvas", type=int, default=1024)
    ap.add_argument("--loss", default="slack_ctc")
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from mdlm_bench.train import memory

    shape = memory.LLADA_8B if SHAPES[args.shape] is None else memory.Shape(**SHAPES[args.shape])
    t = Table(title=f"per-GPU training memory, {args.shape} shape, micro-batch {args.micro_batch}, "
                    f"{args.prompt}+{args.canvas} tokens (estimate)")
    for col in ("setting", "GB", "parts (GB)", "fits 80 GB"):
        t.add_column(col)
    for row in memory.table(shape, args.micro_batch, args.prompt + args.canvas, args.canvas):
        t.add_row(*row)
    Console().print(t)
    if args.measure:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        est = {"lora": memory.lora(shape, 16, args.micro_batch, args.prompt + args.canvas, args.canvas, False),
               "lora-slack": memory.lora(shape, 16, args.micro_batch, args.prompt + args.canvas, args.canvas, True),
               "full": {"all": 16.0 * shape.params + memory.activations(shape, args.micro_batch,
                                                                         args.prompt + args.canvas, args.canvas)}}
        peak = measure(shape, args.measure, args.micro_batch, args.prompt, args.canvas, args.loss, device)
        e = sum(est[args.measure].values()) / memory.GB
        got = f"{peak / memory.GB:.1f} GB measured" if peak >= 0 else "not measured (CPU: the step ran)"
        print(f"{args.measure} on {device}: estimate {e:.1f} GB, {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
