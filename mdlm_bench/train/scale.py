"""Running the trainer at scale on existing engines (accelerate: DDP, FSDP, DeepSpeed ZeRO): the Accelerator with
the recipe's gradient accumulation, engine checks that fail in one line, LoRA / QLoRA, gradient checkpointing and
fp32 master weights.

Accumulation: the recipe's batch_size is global; each process runs batch_size / processes rows per step in
micro-batches of micro_batch_size, and accum = the number of micro-batches. The Accelerator is built with that
accum, so `accelerator.accumulate` and (under DeepSpeed, whose engine does the accumulating) the DeepSpeed config
agree: the shipped DeepSpeed configs leave gradient_accumulation_steps to accelerate ('auto' in
training/accelerate/deepspeed/*.json), and a config that fixes another value is refused.
"""

from __future__ import annotations

from mdlm_bench.errors import UserError
from mdlm_bench.train.recipe import Recipe


def split_batch(recipe: Recipe, world: int):
    """(accum, rows per process) for `world` processes; UserError when the batch does not split."""
    per_proc, rem = divmod(recipe.batch_size, world)
    if rem or per_proc % recipe.micro_batch_size:
        raise UserError(f"batch_size {recipe.batch_size} does not split into {world} process(es) x micro-batches of "
                        f"{recipe.micro_batch_size}; make batch_size a multiple of processes x micro_batch_size")
    return per_proc // recipe.micro_batch_size, per_proc


def make_accelerator(recipe: Recipe, use_cuda: bool):
    """(Accelerator, accum, rows per process): the process count is read first, so the Accelerator (and a
    DeepSpeed engine's config) get the recipe's accumulation."""
    from accelerate import Accelerator, PartialState

    if recipe.qlora and not use_cuda:
        raise UserError("qlora needs a CUDA GPU and bitsandbytes (4-bit weights); on CPU use lora with qlora: false")
    deepspeed = _check_deepspeed_env()
    import os

    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and not use_cuda:
        # accelerate turns FSDP on only for GPU-type process groups; on CPU it would quietly run unsharded.
        raise UserError("accelerate runs FSDP on GPUs only; on CPU use training/accelerate/cpu-2proc.yaml (gloo) or "
                        "a DeepSpeed config")
    if deepspeed and not use_cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # accelerate builds no CPU process group for DeepSpeed: each process would train alone on the same output.
        raise UserError("DeepSpeed runs one process on CPU here; pass --num_processes 1, or use GPUs")
    cpu = not use_cuda and not deepspeed  # accelerate drops the DeepSpeed plugin under cpu=True; it runs on CPU
    world = PartialState(cpu=cpu).num_processes
    accum, per_proc = split_batch(recipe, world)
    acc = Accelerator(mixed_precision="bf16" if (use_cuda and recipe.bf16) else "no", cpu=cpu,
                      gradient_accumulation_steps=accum)
    if acc.distributed_type.name == "DEEPSPEED" and not use_cuda:
        ds = acc.state.deepspeed_plugin.deepspeed_config
        for key in ("bf16", "fp16"):  # no mixed precision on CPU: the run is float32 as any other CPU run
            if isinstance(ds.get(key), dict):
                ds[key]["enabled"] = False
    return acc, accum, per_proc


def _check_deepspeed_env() -> bool:
    """Whether `accelerate launch` asked for DeepSpeed; one line instead of a traceback when it cannot run."""
    import importlib.util
    import os
    from pathlib import Path

    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        return False
    if importlib.util.find_spec("deepspeed") is None:
        raise UserError("the accelerate config asks for DeepSpeed, which is not installed; pip install deepspeed "
                        "or use training/accelerate/fsdp2.yaml")
    cfg = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none")
    if cfg not in ("", "none") and not Path(cfg).is_file():
        raise UserError(f"the DeepSpeed config file '{cfg}' does not exist here; launch from the repository root "
                        "(the shipped configs name training/accelerate/deepspeed/*.json) or fix the path")
    return True


def check_engine(accelerator, recipe: Recipe, accum: int, use_cuda: bool) -> None:
    """Refuse, in one line, an engine setting that cannot run this recipe; fill DeepSpeed's 'auto' values
    (micro-batch, accumulation, clipping) from the recipe so its engine and the trainer agree."""
    kind = accelerator.distributed_type.name
    if accelerator.gradient_accumulation_steps != accum:  # accelerate launch may set it from a config
        raise UserError(f"the accelerate config sets gradient accumulation to {accelerator.gradient_accumulation_steps}"
                        f" but the recipe needs {accum} (batch_size / processes / micro_batch_size); set it to 1 "
                        "there (or 'auto' in a DeepSpeed JSON) and let the recipe decide")
    if kind == "DEEPSPEED":
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        for key, want in (("gradient_accumulation_steps", accum), ("train_micro_batch_size_per_gpu",
                                                                    recipe.micro_batch_size),
                          ("gradient_clipping", recipe.grad_clip)):
            have = ds.get(key, "auto")
            if have == "auto":
                ds[key] = want
            elif float(have) != float(want):
                raise UserError(f"the DeepSpeed config fixes {key}={have} but the recipe needs {want}; set it to "
                                "'auto' (training/accelerate/deepspeed/*.json)")
    if recipe.qlora and kind in ("FSDP", "DEEPSPEED"):
        raise UserError("qlora runs on one GPU (or DDP); use lora without qlora under FSDP/DeepSpeed")


def check_prepared(accelerator, accum: int) -> None:
    """After prepare: DeepSpeed replaces the accumulation with its config's value; it must still be the recipe's."""
    if accelerator.gradient_accumulation_steps != accum:
        raise UserError(f"the engine accumulates {accelerator.gradient_accumulation_steps} micro-batches but the "
                        f"recipe needs {accum}; set gradient_accumulation_steps to 'auto' in the DeepSpeed config")


def wrap_lora(model, recipe: Recipe, slack_added: bool):
    """LoRA adapters through peft (QLoRA: on a 4-bit base first)."""
    lo = recipe.lora_settings()
    from peft import LoraConfig, get_peft_model

    if recipe.qlora:
        model = quantize_4bit(model)
    extra = ["embed_tokens", "lm_head"] if slack_added else None  # the new <slack> row must learn
    cfg = LoraConfig(r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=lo.target_modules,
                     modules_to_save=extra)
    return get_peft_model(model, cfg)


def quantize_4bit(model):
    """Swap the decoder's nn.Linear layers (not the LM head) for bitsandbytes NF4 layers, on the GPU."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise UserError("qlora needs bitsandbytes (pip install bitsandbytes) on a CUDA machine") from None
    import torch

    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear) and not f"{name}.{child_name}".endswith("lm_head"):
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=torch.bfloat16, quant_type="nf4")
                q.weight = bnb.nn.Params4bit(child.weight.data.cpu(), requires_grad=False, quant_type="nf4")
                if child.bias is not None:
                    q.bias = child.bias
                setattr(module, child_name, q.to(child.weight.device))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def enable_checkpointing(model, lora: bool) -> None:
    """Activation (gradient) checkpointing of every decoder layer, non-reentrant (works with FSDP and LoRA)."""
    base = model.get_base_model() if lora else model
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.config.use_cache = False


def master_weights(model, accelerator) -> None:
    """Trainable weights in float32 (the optimiser's master copy) where no engine keeps one: under FSDP and
    DeepSpeed the engine holds sharded fp32 masters; on one GPU / DDP, LoRA adapters (and a full fine-tune's
    weights) are cast up here; frozen bf16 weights stay bf16. Autocast computes in bf16 either way."""
    import torch

    if accelerator.distributed_type.name in ("FSDP", "DEEPSPEED"):
        return
    for p in model.parameters():
        if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16):
            p.data = p.data.float()
