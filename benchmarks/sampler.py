"""Sampler speed: overhead per step over a bare forward pass, and the throughput gain of batching.

    python benchmarks/sampler.py [--presets tiny base-50m] [--batch 16] [--overhead-batches 16 1] [--threads 1]

Per preset (random init), on synth_copy prompts with the chat template:
  (a) sampler time per step / bare forward time, on the same [B, T] canvas (target <= 1.10), at the
      target batch and at batch 1 (where the sampler's fixed per-step cost weighs most). The bare
      forward is `model.logits(canvas, mask, keep_last=gen_length)` under torch.inference_mode, the
      exact call the sampler makes each step, so the ratio is the sampler's own cost per step;
  (b) throughput of B prompts decoded as one batch / the same prompts one at a time (target >= 3).
Decoding settings per preset are chosen so the whole script stays near 3 minutes on one CPU thread;
they are printed with the results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (build_model, common_args, interleaved, ms, start, synth_prompts, target_text, verdict)  # noqa: E402

OVERHEAD_TARGET = 1.10
BATCH_TARGET = 3.0
# Decoding per preset: the 50M model runs fewer steps so the CPU run stays short; the per-step ratio
# does not depend on the step count beyond the fixed per-call cost, which fewer steps only exaggerate.
SETTINGS = {
    "tiny": dict(gen_length=64, steps=64, block_length=32),
    "small": dict(gen_length=64, steps=32, block_length=32),
    "base-50m": dict(gen_length=32, steps=4, block_length=32),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "base-50m"], choices=sorted(SETTINGS))
    ap.add_argument("--batch", type=int, default=16, help="prompts per batch")
    ap.add_argument("--overhead-batches", type=int, nargs="+", default=[16, 1],
                    help="batch sizes of the (a) comparison (the first is the target batch)")
    ap.add_argument("--steps", type=int, default=None, help="override the per-preset step count")
    common_args(ap, repeats=5)
    args = ap.parse_args()

    from rich.table import Table

    from mdlm_bench.decode.sampler import DecodeConfig
    from mdlm_bench.decode.prompts import generate_many

    device, threads, console, sync = start(args, "sampler benchmark")
    rounds_b = max(3, args.repeats - 2)
    table_a = Table(title=f"(a) sampler step vs bare forward on the same canvas "
                          f"(median of {args.repeats} interleaved rounds; wall min-max)")
    for col in ("preset", "batch", "decoding", "forward ms/step", "sampler ms/step", "sampler/forward (wall)",
                "cpu-time ratio", "target", ""):
        table_a.add_column(col, justify="right")
    table_b = Table(title=f"(b) {args.batch} prompts as one batch vs one at a time "
                          f"(median of {rounds_b} interleaved rounds; min-max)")
    for col in ("preset", "one at a time s", "one batch s", "throughput ratio (wall)", "cpu-time ratio",
                "target", ""):
        table_b.add_column(col, justify="right")

    for preset in args.presets:
        s = dict(SETTINGS[preset])
        if args.steps:
            s["steps"] = args.steps
        cfg = DecodeConfig(**s).validate()
        console.print(f"[dim]{preset}: building model, decoding {cfg.gen_length} tokens in {cfg.steps} steps[/dim]")
        model = build_model(preset, device)
        for B in args.overhead_batches:
            r_a, row = _overhead(model, cfg, B, args, sync)
            table_a.add_row(preset, str(B), *row, target_text(OVERHEAD_TARGET, False),
                            verdict(r_a, OVERHEAD_TARGET, False))
        prompts = synth_prompts(model, args.batch)
        seeds = list(range(args.batch))
        B = len(prompts)

        def one_batch():
            generate_many(model, prompts, cfg, seeds, batch_size=B)

        def one_at_a_time():
            generate_many(model, prompts, cfg, seeds, batch_size=1)

        b = interleaved({"single": one_at_a_time, "batched": one_batch}, rounds_b, args.warmup, sync)
        r_b = b.ratio("single", "batched")  # equal work, so the time ratio is the throughput ratio
        table_b.add_row(preset, f"{b.median('single'):.2f}", f"{b.median('batched'):.2f}",
                        f"{r_b:.2f}x ({b.spread('single', 'batched')})", f"{b.cpu_ratio('single', 'batched'):.2f}x",
                        target_text(BATCH_TARGET, True),
                        verdict(r_b, BATCH_TARGET, True))
        del model
    console.print(table_a)
    console.print(table_b)
    return 0


def _overhead(model, cfg, B: int, args, sync):
    """(a) for one batch size: the ratio, and the table cells after preset and batch."""
    import torch

    from mdlm_bench.decode.sampler import generate, left_pad

    prompts = synth_prompts(model, B)
    seeds = list(range(B))
    G, device = cfg.gen_length, model.device
    ids, pmask = left_pad(prompts, model.pad_id, device)
    canvas = torch.cat([ids, torch.full((B, G), model.mask_id, dtype=torch.long, device=device)], 1)
    cmask = torch.cat([pmask, torch.ones((B, G), dtype=torch.bool, device=device)], 1)

    def bare_forward():
        with torch.inference_mode():
            for _ in range(cfg.steps):
                model.logits(canvas, cmask, keep_last=G)

    def sampler():
        generate(model, prompts, cfg, seeds)

    a = interleaved({"forward": bare_forward, "sampler": sampler}, args.repeats, args.warmup, sync)
    r = a.ratio("sampler", "forward")
    return r, [f"T={canvas.shape[1]} G={G} steps={cfg.steps}", ms(a.median("forward") / cfg.steps),
               ms(a.median("sampler") / cfg.steps), f"{r:.3f} ({a.spread('sampler', 'forward')})",
               f"{a.cpu_ratio('sampler', 'forward'):.3f}"]


if __name__ == "__main__":
    sys.exit(main())
