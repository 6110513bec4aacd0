"""Perturbation cost: decoding with a 5% shift vs unperturbed decoding of the same batch (target <= 1.05).

    python benchmarks/perturb.py [--presets tiny] [--batches 16 1] [--fraction 0.05] [--threads 1]

Both variants decode the same synth_copy prompts with the same seeds and the same number of forward
passes (fixed steps), so the ratio is what the perturbation hook adds. The hook is built per decode, as
`mdlm-bench run` builds one per batch (the content vocabulary is computed once, as there). The tiny
preset is the strict case: its forward pass is the cheapest, so hook overhead weighs most.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (build_model, common_args, interleaved, ms, start, synth_prompts, target_text, verdict)  # noqa: E402

TARGET = 1.05


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny"], help="e.g. tiny small (small: ~5 s per decode)")
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 1], help="batch sizes to measure")
    ap.add_argument("--operator", default="shift")
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--gen-length", type=int, default=64)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--block-length", type=int, default=32)
    common_args(ap, repeats=15)
    args = ap.parse_args()

    from rich.table import Table

    from mdlm_bench.decode.sampler import DecodeConfig, generate
    from mdlm_bench.perturb import PerturbSpec
    from mdlm_bench.perturb.operators import PerturbationHook, content_vocab

    device, threads, console, sync = start(args, "perturbation benchmark")
    cfg = DecodeConfig(gen_length=args.gen_length, steps=args.steps, block_length=args.block_length).validate()
    spec = PerturbSpec(operator=args.operator, fraction=args.fraction).validate()
    table = Table(title=f"{spec.operator} {spec.fraction:g} vs unperturbed, G={cfg.gen_length} steps={cfg.steps} "
                        f"(median of {args.repeats} interleaved rounds; min-max)")
    for col in ("preset", "batch", "plain ms", "perturbed ms", "moves/row", "perturbed/plain (wall)",
                "cpu-time ratio", "target", ""):
        table.add_column(col, justify="right")

    for preset in args.presets:
        model = build_model(preset, device)
        vocab = content_vocab(model)
        for B in args.batches:
            prompts = synth_prompts(model, B)
            seeds = list(range(B))
            keys = [f"synth_copy|{i}|0" for i in range(B)]
            hooks = []

            def plain():
                generate(model, prompts, cfg, seeds)

            def perturbed():
                hook = PerturbationHook(spec, keys, cfg.gen_length, vocab)
                generate(model, prompts, cfg, seeds, hooks=(hook,))
                hooks.append(hook)

            t = interleaved({"plain": plain, "perturbed": perturbed}, args.repeats, args.warmup, sync)
            last = hooks[-1]
            events = sum(last.record(b)["displaced_tokens"] for b in range(B)) / B
            r = t.ratio("perturbed", "plain")
            table.add_row(preset, str(B), ms(t.median("plain")), ms(t.median("perturbed")), f"{events:.1f}",
                          f"{r:.3f} ({t.spread('perturbed', 'plain')})", f"{t.cpu_ratio('perturbed', 'plain'):.3f}",
                          target_text(TARGET, False),
                          verdict(r, TARGET, False))
        del model
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
