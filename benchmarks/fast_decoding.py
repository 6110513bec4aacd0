"""Fast decoding: KV caches and parallel unmasking, as ratios measured side by side in one run.

    python benchmarks/fast_decoding.py [--presets tiny base-50m] [--parts speed em llada] [--threads 1]

(1) time per generated token, `prefix` / `none` (goal <= 0.5) and `dual` / `none` (goal <= 0.35), at
    gen_length 256, block 32, fixed steps, on random-init presets (synth_copy prompts, chat template);
(2) exact match on the seven synth tasks (bundled tiny-ce, trained on them; all 32 rows per family) for
    every cache and parallel mode, against `none` with fixed steps: goal within 0.02 per family;
(3) forward passes per row, `threshold 0.9` / fixed steps, at equal exact match: goal <= 0.33;
(4) dual cache + threshold 0.9, batched, against a one-prompt-at-a-time LLaDA `generate()` (written here
    from ML-GSAI/LLaDA's algorithm: full canvas forward every step, fixed schedule) on the same weights:
    goal >= 5x at equal exact match (within 0.02).
Settings are printed with the results. Wall time, interleaved rounds (see _util.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (ROOT, build_model, common_args, interleaved, start, synth_prompts, target_text,  # noqa: E402
                   verdict)

FAMILIES = ("copy", "reverse", "sort", "count", "arithmetic", "spell", "lookup")
PREFIX_GOAL, DUAL_GOAL, EM_TOL, NFE_GOAL, LLADA_GOAL = 0.5, 0.35, 0.02, 0.33, 5.0
# Synth decoding: the tasks' 32 tokens, in blocks of 8 so that a cache has earlier blocks to hold.
# (1) batch per preset: the 50M model decodes one prompt, so that a CPU round stays near a minute.
SPEED_BATCH = {"tiny": 8, "base-50m": 1}
SYNTH = dict(gen_length=32, steps=32, block_length=8)
MODES = {  # name -> DecodeConfig overrides
    "none": {},
    "prefix": dict(cache="prefix"),
    "dual": dict(cache="dual"),
    "threshold 0.9": dict(parallel="threshold", threshold=0.9),
    "factor 1.0": dict(parallel="factor", factor=1.0),
    "topk 2": dict(parallel="topk", parallel_k=2),
    "dual + threshold 0.9": dict(cache="dual", parallel="threshold", threshold=0.9),
}


def llada_generate(model, prompt, steps: int, gen_length: int, block_length: int):
    """One prompt, LLaDA's generate() (temperature 0, low-confidence remasking): a forward pass over the
    whole canvas each step, logits for every position, the block's masked count spread over its steps."""
    import torch

    mask_id = model.mask_id
    x = torch.full((1, len(prompt) + gen_length), mask_id, dtype=torch.long, device=model.device)
    x[0, :len(prompt)] = torch.as_tensor(prompt)
    P, n_blocks = len(prompt), gen_length // block_length
    per_block = steps // n_blocks
    for b in range(n_blocks):
        end = P + (b + 1) * block_length
        n = int((x[0, P + b * block_length:end] == mask_id).sum())
        base, extra = divmod(n, per_block)
        for i in range(per_block):
            is_mask = x == mask_id
            logits = model.logits(x)  # the full canvas, every position
            x0 = logits.argmax(-1)
            p = torch.softmax(logits.float(), -1)
            conf = torch.gather(p, -1, x0[..., None])[..., 0]
            conf[:, end:] = -torch.inf
            x0 = torch.where(is_mask, x0, x)
            conf = torch.where(is_mask, conf, -torch.inf)
            k = base + (1 if i < extra else 0)
            idx = conf[0].topk(k).indices
            x[0, idx] = x0[0, idx]
    return x[0, P:].tolist()


def _em(model, rows, texts):
    return sum(t.strip() == r["response"] for t, r in zip(texts, rows)) / len(rows)


def part_speed(console, args, device, sync):
    from rich.table import Table

    from mdlm_bench.decode.config import DecodeConfig
    from mdlm_bench.decode.sampler import generate

    t = Table(title=f"(1) time per generated token vs none, gen_length 256, block 32, {args.steps} steps "
                    f"(median of {args.repeats} interleaved rounds; min-max)")
    for c in ("preset", "none ms/token", "prefix ms/token", "dual ms/token", "prefix/none", "goal", "",
              "dual/none", "goal", ""):
        t.add_column(c, justify="right")
    for preset in args.presets:
        model = build_model(preset, device)
        batch = SPEED_BATCH.get(preset, args.batch) if args.speed_batch is None else args.speed_batch
        prompts = synth_prompts(model, batch)
        seeds = list(range(batch))
        cfgs = {c: DecodeConfig(gen_length=256, block_length=32, steps=args.steps, cache=c).validate(
            max(map(len, prompts)), model.max_positions) for c in ("none", "prefix", "dual")}
        run = {c: (lambda c=c: generate(model, prompts, cfgs[c], seeds)) for c in cfgs}
        tm = interleaved(run, args.repeats, args.warmup, sync)
        per_tok = {c: tm.median(c) / (256 * batch) for c in cfgs}
        rp, rd = tm.ratio("prefix", "none"), tm.ratio("dual", "none")
        t.add_row(f"{preset} (batch {batch})", *(f"{per_tok[c] * 1e3:.3f}" for c in cfgs),
                  f"{rp:.3f} ({tm.spread('prefix', 'none')})", target_text(PREFIX_GOAL, False),
                  verdict(rp, PREFIX_GOAL, False), f"{rd:.3f} ({tm.spread('dual', 'none')})",
                  target_text(DUAL_GOAL, False), verdict(rd, DUAL_GOAL, False))
        del model
    console.print(t)


def part_em(console, args, device):
    from rich.table import Table

    from mdlm_bench.decode.config import DecodeConfig
    from mdlm_bench.io import read_jsonl
    from mdlm_bench.models import load_model
    from mdlm_bench.decode.prompts import encode_prompt, generate_many

    model = load_model(args.trained, device=device)
    data = {f: read_jsonl(ROOT / "tasks" / "data" / f"synth_{f}.jsonl")[:32] for f in FAMILIES}  # the first 32
    prompts = {f: [encode_prompt(model, r["prompt"]) for r in rows] for f, rows in data.items()}
    em, nfe, secs = {}, {}, {}
    for mode, over in MODES.items():
        cfg = DecodeConfig(**SYNTH, **over)
        em[mode], n = {}, []
        t0 = time.perf_counter()
        for f in FAMILIES:
            out = generate_many(model, prompts[f], cfg, list(range(len(prompts[f]))), batch_size=args.batch)
            em[mode][f] = _em(model, data[f], [o.text for o in out])
            n += [o.nfe for o in out]
        secs[mode] = time.perf_counter() - t0
        nfe[mode] = sum(n) / len(n)
    t = Table(title=f"(2) exact match per synth family, {args.trained}, {SYNTH}, 32 rows each "
                    f"(goal: within {EM_TOL} of none)")
    for c in ("mode", *FAMILIES, "mean", "max |diff|", "", "NFE/row", "decode s"):
        t.add_column(c, justify="right")
    for mode in MODES:
        diff = max(abs(em[mode][f] - em["none"][f]) for f in FAMILIES)
        mean = sum(em[mode].values()) / len(FAMILIES)
        t.add_row(mode, *(f"{em[mode][f]:.3f}" for f in FAMILIES), f"{mean:.3f}", f"{diff:.3f}",
                  verdict(diff, EM_TOL, False) if mode != "none" else "", f"{nfe[mode]:.2f}", f"{secs[mode]:.1f}")
    console.print(t)
    r = nfe["threshold 0.9"] / nfe["none"]
    diff = max(abs(em["threshold 0.9"][f] - em["none"][f]) for f in FAMILIES)
    console.print(f"(3) forward passes per row, threshold 0.9 / fixed steps: {nfe['threshold 0.9']:.2f} / "
                  f"{nfe['none']:.2f} = {r:.3f} (goal {target_text(NFE_GOAL, False)}) {verdict(r, NFE_GOAL, False)}; "
                  f"largest per-family exact-match difference {diff:.3f} "
                  f"({'equal' if diff <= EM_TOL else 'NOT equal'} within {EM_TOL})")


def part_llada(console, args, device, sync):
    from rich.table import Table

    from mdlm_bench.decode.config import DecodeConfig
    from mdlm_bench.io import read_jsonl
    from mdlm_bench.models import load_model
    from mdlm_bench.decode.prompts import encode_prompt, generate_many

    t = Table(title=f"(4) dual cache + threshold 0.9 (batch {args.batch}) vs LLaDA generate() one prompt at a "
                    f"time, {args.llada_rows} rows per family, {SYNTH} (median of {args.llada_repeats} "
                    "interleaved rounds)")
    for c in ("model", "LLaDA s", "ours s", "speed-up", "goal", "", "EM LLaDA", "EM ours", "|diff|"):
        t.add_column(c, justify="right")
    for name in [args.trained] + list(args.presets):
        model = load_model(name, device=device) if name == args.trained else build_model(name, device)
        rows = [r for f in FAMILIES for r in read_jsonl(ROOT / "tasks" / "data" / f"synth_{f}.jsonl")[:args.llada_rows]]
        prompts = [encode_prompt(model, r["prompt"]) for r in rows]
        cfg = DecodeConfig(**SYNTH, cache="dual", parallel="threshold", threshold=0.9)
        res = {}

        def ours():
            res["ours"] = [o.text for o in generate_many(model, prompts, cfg, [0] * len(prompts), args.batch)]

        def llada():
            import torch

            with torch.inference_mode():
                out = [llada_generate(model, p, SYNTH["steps"], SYNTH["gen_length"], SYNTH["block_length"])
                       for p in prompts]
            from mdlm_bench.decode.sampler import clean_ids

            res["llada"] = [model.tokenizer.decode(clean_ids(ids, model.eos_ids, [model.slack_id, model.mask_id]),
                                                   skip_special_tokens=True) for ids in out]

        tm = interleaved({"llada": llada, "ours": ours}, args.llada_repeats, 0, sync)
        r = tm.ratio("llada", "ours")
        e_l, e_o = _em(model, rows, res["llada"]), _em(model, rows, res["ours"])
        t.add_row(name, f"{tm.median('llada'):.2f}", f"{tm.median('ours'):.2f}",
                  f"{r:.2f}x ({tm.spread('llada', 'ours')})",
                  target_text(LLADA_GOAL, True), verdict(r, LLADA_GOAL, True), f"{e_l:.3f}", f"{e_o:.3f}",
                  f"{abs(e_l - e_o):.3f}")
        del model
    console.print(t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "base-50m"])
    ap.add_argument("--parts", nargs="+", default=["speed", "em", "llada"], choices=["speed", "em", "llada"])
    ap.add_argument("--trained", default="tiny-ce", help="bundled trained model for exact match")
    ap.add_argument("--batch", type=int, default=8, help="prompts decoded together")
    ap.add_argument("--steps", type=int, default=256, help="(1): steps for 256 tokens (LLaDA: one token per step)")
    ap.add_argument("--speed-batch", type=int, default=None, help="(1): prompts per decode (default per preset)")
    ap.add_argument("--llada-rows", type=int, default=4, help="(4): rows per family")
    ap.add_argument("--llada-repeats", type=int, default=1)
    common_args(ap, repeats=3)
    args = ap.parse_args()
    device, threads, console, sync = start(args, "fast decoding benchmark")
    if "speed" in args.parts:
        part_speed(console, args, device, sync)
    if "em" in args.parts:
        part_em(console, args, device)
    if "llada" in args.parts:
        part_llada(console, args, device, sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
