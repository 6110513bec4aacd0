"""Worker of test_train_distributed.py::test_torch_fsdp2_on_cpu_matches_one_process (run with torchrun, or alone).

Trains the tiny preset for a few steps with the trainer's data pipeline (step_canvases, collate), its loss
(slack-CTC, band 1, trailing slack) and its schedule of micro-batches, the model sharded with torch's FSDP2
(`fully_shard` per decoder layer and at the root) over gloo processes when WORLD_SIZE > 1. Writes the per-step
global mean losses as JSON. accelerate enables FSDP only on GPUs, so this drives torch's FSDP2 directly.
"""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(out: str, steps: int) -> None:
    import torch.distributed as dist
    from transformers import LlamaConfig, LlamaForCausalLM

    from mdlm_bench.models.mdlm import MDLM, ModelMeta
    from mdlm_bench.models.tokenizer import build_char_tokenizer
    from mdlm_bench.train.data import collate, encode_examples, load_examples, step_canvases
    from mdlm_bench.train.losses import loss_for
    from mdlm_bench.train.recipe import Recipe
    from mdlm_bench.train.trainer import lr_lambda

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                      tie_word_embeddings=False, attn_implementation="sdpa")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    meta = ModelMeta(mask_token_id=tok.mask_token_id, eos_token_ids=[tok.eos_token_id],
                     slack_token_id=tok.convert_tokens_to_ids("<slack>"), pad_token_id=tok.pad_token_id)
    mdlm = MDLM(model, tok, meta)
    recipe = Recipe(data="synthetic", synthetic_per_family=8, canvas=24, max_prompt_tokens=48, steps=steps,
                    batch_size=8, micro_batch_size=2, warmup_steps=1, lr=3e-3, loss="slack_ctc", pad_with="slack",
                    ctc_band=1, canvas_multiple=8)
    encoded, _ = encode_examples(load_examples(recipe), mdlm, recipe)
    if world > 1:
        from torch.distributed.fsdp import fully_shard

        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=tuple(recipe.betas),
                            weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe))
    loss_fn = loss_for(recipe)
    per = recipe.batch_size // world
    accum = per // recipe.micro_batch_size
    losses = []
    for step in range(steps):
        rows, canv, cmask, p_mask = step_canvases(encoded, step, recipe, tok.eos_token_id, meta.slack_token_id)
        n = canv.shape[1]
        total = torch.zeros(())
        for k in range(accum):
            a = rank * per + k * recipe.micro_batch_size
            b = a + recipe.micro_batch_size
            batch = collate(rows[a:b], canv[a:b], cmask[a:b], p_mask[a:b], mdlm.pad_id, mdlm.mask_id)
            tail = {key: (v[:, -n:] if v.dim() == 2 else v) for key, v in batch.items()}
            logits = mdlm.logits(batch["input_ids"], batch["attention_mask"], keep_last=n)
            loss = loss_fn(logits, tail, meta.slack_token_id) / accum
            loss.backward()  # FSDP2 reduce-scatters (averages) the gradients over the processes
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if world > 1:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
            total /= world
        losses.append(float(total))
    if rank == 0:
        Path(out).write_text(json.dumps(losses))
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
