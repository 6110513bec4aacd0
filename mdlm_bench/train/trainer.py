"""The accelerate training loop behind `mdlm-bench train`.

OUT/ holds the final model (the model layer's format), train_log.jsonl (one row per step), loss.png,
train_config.json (recipe, digest, provenance, data counts), checkpoints/step-K/ (periodic models) and
state/ (what --resume restores, as safetensors + JSON: mdlm_bench/train/state.py; removed at the end if
keep_state is off).
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from mdlm_bench.errors import UserError
from mdlm_bench.io import JsonlAppender, read_json, repair_jsonl, write_json
from mdlm_bench.train.recipe import Recipe

STATE = "state"
TRAINER_STATE = "trainer_state.json"
LOG = "train_log.jsonl"


@dataclass
class RunPlan:
    """What the run will do, settled before anything is written."""

    recipe: Recipe
    out: Path
    start_step: int
    stop_step: int
    resume: bool


def plan_run(recipe: Recipe, out: Path, max_steps: Optional[int], resume: bool,
             allow_pickle: bool = False) -> RunPlan:
    """Check the output directory against --resume; raises UserError before anything is touched."""
    from mdlm_bench.rundir import claim_dir

    state = out / STATE / TRAINER_STATE
    start = 0
    claim_dir(out, "train", flag="--output")
    if resume:
        if not state.is_file():
            raise UserError(f"'{out}' has no resumable state ({STATE}/{TRAINER_STATE}); drop --resume to start "
                            "a new run there")
        from mdlm_bench.train.state import check_loadable

        check_loadable(out / STATE, allow_pickle)
        saved = read_json(state)
        if saved.get("digest") != recipe.digest:
            raise UserError(f"'{out}' was trained with a different recipe (digest {saved.get('digest')} != "
                            f"{recipe.digest}); resume with the same recipe/--model/--data or pick another --output")
        start = int(saved["step"])
    elif state.is_file():
        raise UserError(f"'{out}' already holds a training run; pass --resume to continue it or choose another "
                        "--output")
    stop = recipe.steps if max_steps is None else min(int(max_steps), recipe.steps)
    if max_steps is not None and max_steps < 1:
        raise UserError(f"--max-steps must be >= 1 (got {max_steps})")
    return RunPlan(recipe, out, start, stop, resume)


def lr_lambda(recipe: Recipe):
    """Linear warm-up to 1, then cosine decay to min_lr_ratio at recipe.steps."""
    warm, total, floor = recipe.warmup_steps, recipe.steps, recipe.min_lr_ratio

    def f(step: int) -> float:
        if warm > 0 and step < warm:
            return (step + 1) / warm
        frac = min(1.0, (step - warm) / max(1, total - warm))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))

    return f


def train_dtype(recipe: Recipe, use_cuda: bool) -> str:
    """The dtype weights are loaded in: bf16 on GPU when the recipe asks for it, else float32."""
    return "bfloat16" if (use_cuda and recipe.bf16) else "float32"


def preset_checkpoint(recipe: Recipe):
    """For `preset:<name>` models, a TemporaryDirectory holding the random-init checkpoint (else None). Written
    before any process group exists: transformers saves weights from the main process only once one does."""
    if not recipe.model.startswith("preset:"):
        return None
    from mdlm_bench.models.presets import init_model

    tmp = tempfile.TemporaryDirectory(prefix="mdlm-init-")
    init_model(Path(tmp.name) / "init", preset=recipe.model.split(":", 1)[1], seed=recipe.init_seed)
    return tmp


def load_init_model(recipe: Recipe, dtype: str = "float32", device: str = "cpu", preset=None):
    """The starting MDLM: a checkpoint/bundled name, or `preset:<name>` initialised with init_seed.

    Loaded directly in the training dtype on the process's own device, so no rank holds an fp32 copy of the
    whole model in host memory (an 8B model in bf16 is 16 GB on its GPU before FSDP/ZeRO shards it)."""
    from mdlm_bench.models import load_model

    if recipe.model.startswith("preset:"):
        own = preset is None
        preset = preset or preset_checkpoint(recipe)
        try:
            return load_model(Path(preset.name) / "init", dtype=dtype, device=device)
        finally:
            if own:
                preset.cleanup()
    return load_model(recipe.model, dtype=dtype, device=device)


def needs_slack(recipe: Recipe) -> bool:
    return (recipe.loss == "slack_ctc" or recipe.slack_insert_rate > 0 or recipe.slack_count > 0
            or recipe.pad_with == "slack" or recipe.displace_rate > 0)


def record_canvas(mdlm, recipe: Recipe) -> None:
    """How answers were padded, in mdlm_bench.json, for likelihood scoring: to recipe.canvas tokens, or (length
    bucketing) to each batch's own length, which a scorer cannot replay, so pad_to is then "none"."""
    mode = "none" if recipe.canvas_multiple > 0 else "canvas"
    mdlm.meta.pad_to, mdlm.meta.canvas, mdlm.meta.canvas_pad_with = mode, int(recipe.canvas), recipe.pad_with


def save_model(accelerator, model, mdlm, out: Path, lora: bool) -> None:
    """Write the model in the model layer's format (LoRA merged into a copy; sharded states gathered)."""
    from mdlm_bench.models import MDLM

    inner = accelerator.unwrap_model(model)
    if lora:
        if accelerator.is_main_process:
            merged = copy.deepcopy(inner).merge_and_unload()
            MDLM(merged, mdlm.tokenizer, mdlm.meta, name=mdlm.name).save(out)
        return
    sharded = accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")
    if not sharded:
        if accelerator.is_main_process:
            MDLM(inner, mdlm.tokenizer, mdlm.meta, name=mdlm.name).save(out)
        return
    state = accelerator.get_state_dict(model)  # collective: every process must call it
    if accelerator.is_main_process:
        from mdlm_bench.io import atomic_write_text
        from mdlm_bench.models.mdlm import META_FILE
        from dataclasses import asdict

        out.mkdir(parents=True, exist_ok=True)
        inner.save_pretrained(out, state_dict=state, safe_serialization=True)
        mdlm.tokenizer.save_pretrained(out)
        atomic_write_text(out / META_FILE, json.dumps(asdict(mdlm.meta), indent=2) + "\n")


def save_state(accelerator, out: Path, step: int, recipe: Recipe, model, optimizer, scheduler) -> None:
    """Model, optimiser, scheduler, RNG and step (no pickle), swapped in so a crash keeps the last one."""
    from mdlm_bench.train import state as trainer_state

    tmp = out / f"{STATE}.tmp"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    trainer_state.save(accelerator, tmp, model, optimizer, scheduler,
                       {"step": step, "digest": recipe.digest, "recipe": recipe.to_dict()})
    if accelerator.is_main_process:
        final, old = out / STATE, out / f"{STATE}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        if old.exists():
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def plot_loss(log_path: Path, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = repair_jsonl(log_path)
    if not rows:
        return
    steps = [r["step"] for r in rows]
    loss = [r["loss"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, loss, lw=0.8, alpha=0.4, label="per step")
    k = max(1, len(loss) // 50)
    if k > 1:
        smooth = [sum(loss[max(0, i - k + 1):i + 1]) / len(loss[max(0, i - k + 1):i + 1]) for i in range(len(loss))]
        ax.plot(steps, smooth, lw=1.5, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, png)


def train(recipe: Recipe, out: Path, max_steps: Optional[int] = None, resume: bool = False,
          quiet: bool = False, allow_pickle: bool = False) -> Dict[str, object]:
    """Run (or resume) training; returns a summary dict. Raises UserError for bad input before writing."""
    import torch
    from accelerate.utils import set_seed

    from mdlm_bench.config import provenance
    from mdlm_bench.train.data import collate, encode_examples, load_examples_counted, step_canvases
    from mdlm_bench.train.format import chat_format
    from mdlm_bench.train.losses import loss_for
    from mdlm_bench.train.scale import (check_engine, check_prepared, enable_checkpointing, make_accelerator,
                                        master_weights, wrap_lora)

    out = Path(out)
    plan = plan_run(recipe, out, max_steps, resume, allow_pickle)
    examples, data_counts = load_examples_counted(recipe)
    use_cuda = torch.cuda.is_available()
    preset = preset_checkpoint(recipe)
    accelerator, accum, per_proc = make_accelerator(recipe, use_cuda)
    world, rank = accelerator.num_processes, accelerator.process_index
    check_engine(accelerator, recipe, accum, use_cuda)
    try:
        mdlm = load_init_model(recipe, train_dtype(recipe, use_cuda), str(accelerator.device), preset)
    finally:
        if preset is not None:
            preset.cleanup()
    record_canvas(mdlm, recipe)
    slack_added = False
    if needs_slack(recipe):
        slack_added = "<slack>" not in mdlm.tokenizer.get_vocab()
        mdlm.add_slack_token()
    encoded, counts = encode_examples(examples, mdlm, recipe)
    eos_id = chat_format(mdlm).eos_id
    set_seed(recipe.seed)

    model = mdlm.model
    lora = recipe.lora_settings().r > 0
    if lora:
        model = wrap_lora(model, recipe, slack_added)
    if recipe.gradient_checkpointing:
        enable_checkpointing(model, lora)
    master_weights(model, accelerator)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, betas=tuple(recipe.betas), weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe))
    model, optimizer = accelerator.prepare(model, optimizer)
    check_prepared(accelerator, accum)
    # The scheduler is stepped by hand (accelerate would step it once per process) but saved with the state.
    accelerator.register_for_checkpointing(scheduler)
    fwd = copy.copy(mdlm)
    fwd.model = model

    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG
    if accelerator.is_main_process:
        from mdlm_bench.rundir import mark_dir

        mark_dir(out, "train")
        if plan.resume:
            rows = [r for r in repair_jsonl(log_path) if r["step"] <= plan.start_step]
            from mdlm_bench.io import atomic_write_text

            atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in rows))
        elif log_path.exists():
            log_path.unlink()
        write_json(out / "train_config.json", {
            "recipe": recipe.to_dict(), "digest": recipe.digest, "provenance": provenance(),
            "data": {**data_counts, "encoded": len(encoded), **counts}, "processes": world,
            "gradient_accumulation": accum, "engine": accelerator.distributed_type.name,
            "slack_id": mdlm.slack_id, "lora": lora,
        })
    accelerator.wait_for_everyone()
    if plan.resume:
        from mdlm_bench.train import state as trainer_state

        trainer_state.load(accelerator, out / STATE, model, optimizer, scheduler, allow_pickle)

    loss_fn = loss_for(recipe)
    device = accelerator.device
    appender = JsonlAppender(log_path) if accelerator.is_main_process else None
    progress = None
    if accelerator.is_main_process and not quiet:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("[bold]train {task.fields[loss_name]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[tps]:,.0f} tok/s"),
                            TimeRemainingColumn())
        progress.start()
        task = progress.add_task("train", total=plan.stop_step, completed=plan.start_step, loss=float("nan"),
                                 tps=0.0, loss_name=recipe.loss)
    last_loss = float("nan")
    t_run = time.perf_counter()
    try:
        for step in range(plan.start_step, plan.stop_step):
            t0 = time.perf_counter()
            rows, canv, cmask, p_mask = step_canvases(encoded, step, recipe, eos_id, mdlm.slack_id)
            n = canv.shape[1]  # this step's canvas (length bucketing) or recipe.canvas
            lo = rank * per_proc
            step_loss = torch.zeros((), device=device)
            tokens = 0
            for k in range(accum):
                a, b = lo + k * recipe.micro_batch_size, lo + (k + 1) * recipe.micro_batch_size
                batch = collate(rows[a:b], canv[a:b], cmask[a:b], p_mask[a:b], mdlm.pad_id, mdlm.mask_id)
                batch = {key: v.to(device) for key, v in batch.items()}
                tokens += int(batch["attention_mask"].sum())
                tail = {key: (v[:, -n:] if v.dim() == 2 else v) for key, v in batch.items()}
                # accelerate skips the gradient sync until the last micro-batch and divides the loss by accum
                # in backward (under DeepSpeed its engine does both, with the same accum: scale.check_engine).
                with accelerator.accumulate(model):
                    with accelerator.autocast():
                        logits = fwd.logits(batch["input_ids"], batch["attention_mask"], keep_last=n)
                    loss = loss_fn(logits, tail, mdlm.slack_id)
                    accelerator.backward(loss)
                step_loss += loss.detach() / accum
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), recipe.grad_clip) if recipe.grad_clip > 0 \
                else torch.zeros(())
            grad_norm = float("nan") if grad_norm is None else grad_norm  # DeepSpeed clips inside its engine
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            mean_loss = accelerator.reduce(step_loss, reduction="mean").item()
            tokens = int(accelerator.reduce(torch.tensor(tokens, device=device), reduction="sum").item())
            dt = time.perf_counter() - t0
            last_loss = mean_loss
            if appender is not None:
                appender.write({"step": step + 1, "loss": mean_loss, "lr": lr, "grad_norm": float(grad_norm),
                                "tokens": tokens, "tokens_per_s": tokens / dt if dt > 0 else 0.0, "canvas": n,
                                "truncated": sum(r.truncated for r in rows)})
            if progress is not None and ((step + 1) % recipe.log_every == 0 or step + 1 == plan.stop_step):
                progress.update(task, completed=step + 1, loss=mean_loss, tps=tokens / dt if dt > 0 else 0.0)
            done = step + 1
            if recipe.save_every and done % recipe.save_every == 0 and done < plan.stop_step:
                save_state(accelerator, out, done, recipe, model, optimizer, scheduler)
                save_model(accelerator, model, mdlm, out / "checkpoints" / f"step-{done}", lora)
    finally:
        if progress is not None:
            progress.stop()
        if appender is not None:
            appender.close()

    finished = plan.stop_step >= recipe.steps
    if recipe.keep_state or not finished:
        save_state(accelerator, out, max(plan.stop_step, plan.start_step), recipe, model, optimizer, scheduler)
    elif accelerator.is_main_process and (out / STATE).exists():
        shutil.rmtree(out / STATE)
    save_model(accelerator, model, mdlm, out, lora)
    if accelerator.is_main_process:
        plot_loss(log_path, out / "loss.png", f"{recipe.loss} - {out.name}")
    accelerator.wait_for_everyone()
    return {"out": str(out), "steps": plan.stop_step, "start_step": plan.start_step, "final_loss": last_loss,
            "seconds": time.perf_counter() - t_run, "processes": world, **counts,
            "bad_rows_skipped": data_counts["bad_rows_skipped"]}


def read_log(out: Path) -> List[dict]:
    from mdlm_bench.io import read_jsonl

    return read_jsonl(Path(out) / LOG)
