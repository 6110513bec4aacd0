"""Decoding at real shapes: a random LLaDA-8B-shaped model in bf16, gen 256, block 32 (run it on a GPU).

    python benchmarks/real_shapes.py --device cuda [--shape 8b] [--batches 1 16] [--fastdllm DIR] [--out FILE]
    python benchmarks/real_shapes.py --shape small   # the scaled-down shape CPU and CI run

Tokens/s and time per forward pass for: no cache, prefix, dual, threshold 0.9 and dual + threshold 0.9,
at each batch size, timed in interleaved rounds (see _util.py). With --fastdllm DIR (a checkout of
NVlabs/Fast-dLLM; its `llada/` code is imported from there, nothing of it is copied here) the same
weights are loaded into Fast-dLLM's own LLaDA model and its `generate_with_dual_cache` (fixed steps and
threshold 0.9) is timed at batch 1, side by side with ours, with a check that the tokens agree.
The weights are random (no checkpoint is fetched): speed depends on the shapes, not the values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import common_args, interleaved, ms, start  # noqa: E402

# LLaDA's published config.json keys (LLaDA-8B-Instruct's values for `8b`).
SHAPES = {
    "8b": dict(d_model=4096, n_heads=32, n_kv_heads=32, n_layers=32, mlp_hidden_size=12288, vocab_size=126464,
               embedding_size=126464, max_sequence_length=4096, mask_token_id=126336, eos_token_id=126081),
    "small": dict(d_model=64, n_heads=4, n_kv_heads=4, n_layers=2, mlp_hidden_size=96, vocab_size=512,
                  embedding_size=512, max_sequence_length=1024, mask_token_id=500, eos_token_id=501),
}
COMMON = dict(model_type="llada", rope_theta=500000.0, rms_norm_eps=1e-5, weight_tying=False, include_bias=False,
              block_type="llama", activation_type="silu", layer_norm_type="rms", rope=True, alibi=False,
              flash_attention=False, attention_dropout=0.0, residual_dropout=0.0, embedding_dropout=0.0,
              mlp_ratio=4, pad_token_id=None)
MODES = {"none": {}, "prefix": dict(cache="prefix"), "dual": dict(cache="dual"),
         "threshold 0.9": dict(threshold=0.9), "dual + threshold 0.9": dict(cache="dual", threshold=0.9)}


def llada_config(shape: str) -> dict:
    return {**COMMON, **SHAPES[shape]}


def random_llada_state(cfg: dict, device: str, dtype, seed: int = 0) -> dict:
    """Random weights in LLaDA's published layout (the names its checkpoints use), made on `device`."""
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    V, d, f = cfg["embedding_size"], cfg["d_model"], cfg["mlp_hidden_size"]
    shapes = {"model.transformer.wte.weight": (V, d), "model.transformer.ln_f.weight": (d,),
              "model.transformer.ff_out.weight": (V, d)}
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        shapes.update({p + "q_proj.weight": (d, d), p + "k_proj.weight": (d, d), p + "v_proj.weight": (d, d),
                       p + "attn_out.weight": (d, d), p + "ff_proj.weight": (f, d), p + "up_proj.weight": (f, d),
                       p + "ff_out.weight": (d, f), p + "attn_norm.weight": (d,), p + "ff_norm.weight": (d,)})
    state = {}
    for k, s in shapes.items():
        if len(s) == 1:
            state[k] = torch.ones(s, device=device, dtype=dtype)
        else:
            state[k] = (torch.randn(s, generator=g, device=device, dtype=torch.float32) * d ** -0.5).to(dtype)
    return state


class IdsTokenizer:
    """Token ids as text: the benchmark reads ids, and a random model has no vocabulary."""

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


def our_model(cfg: dict, state: dict, device: str, dtype, attn: str = "sdpa"):
    """The MDLM our loader builds for a LLaDA checkpoint with these weights (no disk round trip)."""
    from transformers import LlamaForCausalLM

    from mdlm_bench.models.checkpoint import LoadOptions, build_native
    from mdlm_bench.models.loaders import _llada_to_llama_config, llada_key_to_llama
    from mdlm_bench.models.mdlm import MDLM, ModelMeta

    mapped = {llada_key_to_llama(k): v for k, v in state.items()}
    model = build_native(LlamaForCausalLM, _llada_to_llama_config(cfg, attn), mapped,
                         LoadOptions(dtype=dtype, device=device, attn=attn))
    meta = ModelMeta(flavour="llada", backbone="llama", mask_token_id=cfg["mask_token_id"],
                     eos_token_ids=[cfg["eos_token_id"]], source="random LLaDA weights")
    return MDLM(model, IdsTokenizer(), meta, name=f"random llada {cfg['d_model']}x{cfg['n_layers']}")


def fastdllm_model(fastdllm: Path, cfg: dict, state: dict, device: str, dtype):
    """Fast-dLLM's own LLaDA model (imported from the checkout) holding the same weights; and its module."""
    import importlib

    import torch

    sys.path.insert(0, str(fastdllm / "llada"))
    try:
        modeling = importlib.import_module("model.modeling_llada")
        configuration = importlib.import_module("model.configuration_llada")
        gen = importlib.import_module("generate")
    finally:
        sys.path.remove(str(fastdllm / "llada"))
    conf = configuration.LLaDAConfig(**{k: v for k, v in cfg.items() if k != "model_type"})
    model = modeling.LLaDAModelLM(conf, init_params=False)
    missing, unexpected = model.load_state_dict({k: v.to("cpu") for k, v in state.items()}, strict=False)
    if missing or unexpected:
        raise SystemExit(f"Fast-dLLM's model does not take LLaDA's layout here (missing {missing[:2]}, "
                         f"unexpected {unexpected[:2]})")
    model = model.to(device=device, dtype=dtype).eval()
    return model, gen


class StepCounter:
    """A sampler hook counting the loop's iterations (one batched forward pass each)."""

    def __init__(self):
        self.steps = 0

    def on_step_start(self, state):
        self.steps += 1

    def on_logits(self, state, logits):
        pass

    def on_commit(self, state, commit):
        pass

    def on_finish(self, state):
        pass


def run(args) -> dict:
    import torch

    from mdlm_bench.decode import DecodeConfig, generate

    device, threads, console, sync = start(args, f"decoding at real shapes ({args.shape})")
    dtype = getattr(torch, args.dtype) if args.dtype != "auto" else (torch.bfloat16 if device.startswith("cuda")
                                                                      else torch.float32)
    cfg = llada_config(args.shape)
    state = random_llada_state(cfg, device, dtype)
    m = our_model(cfg, state, device, dtype, args.attn)
    g = torch.Generator().manual_seed(1)
    prompts_all = torch.randint(0, cfg["eos_token_id"] - 1, (max(args.batches), args.prompt_length), generator=g).tolist()
    G, bl = args.gen_length, args.block_length
    results = {"shape": args.shape, "config": cfg, "device": device, "dtype": str(dtype).replace("torch.", ""),
               "threads": threads, "gen_length": G, "block_length": bl, "prompt_length": args.prompt_length,
               "attn": m.attn, "versions": {"torch": torch.__version__}, "rows": []}
    import transformers

    results["versions"]["transformers"] = transformers.__version__
    if device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    for B in args.batches:
        prompts = prompts_all[:B]
        counters, variants, outs = {}, {}, {}
        for name, over in MODES.items():
            dc = DecodeConfig(gen_length=G, steps=G, block_length=bl, **over)
            counters[name] = StepCounter()

            def go(dc=dc, name=name):
                c = counters[name]
                c.steps = 0
                outs[name] = generate(m, prompts, dc, hooks=[c])

            variants[name] = go
        timing = interleaved(variants, args.repeats, args.warmup, sync)
        for name in MODES:
            t = timing.median(name)
            steps = counters[name].steps
            nfe = sum(r.nfe for r in outs[name]) / B
            results["rows"].append(dict(impl="mdlm-bench", mode=name, batch=B, seconds=t, tokens_per_s=B * G / t,
                                        forwards=steps, ms_per_forward=1e3 * t / steps, nfe_per_row=nfe,
                                        vs_none=timing.ratio(name, "none")))
    if args.fastdllm:
        results["rows"] += _fastdllm_rows(args, cfg, state, device, dtype, m, prompts_all[0], sync)
    _print(console, results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"wrote {args.out}")
    return results


def _fastdllm_rows(args, cfg, state, device, dtype, m, prompt, sync) -> list:
    """Fast-dLLM's generate_with_dual_cache at batch 1 beside our dual cache, same weights and prompt."""
    import torch

    from mdlm_bench.decode import DecodeConfig, generate

    fd, gen = fastdllm_model(Path(args.fastdllm), cfg, state, device, dtype)
    G, bl = args.gen_length, args.block_length
    x = torch.tensor([prompt], device=device)
    rows, variants, outs = [], {}, {}
    for name, thr in (("dual", None), ("dual + threshold 0.9", 0.9)):
        def theirs(name=name, thr=thr):
            with torch.no_grad():
                outs["fd " + name] = gen.generate_with_dual_cache(fd, x, steps=G, gen_length=G, block_length=bl,
                                                                  mask_id=cfg["mask_token_id"], threshold=thr)

        def ours(name=name, thr=thr):
            over = dict(cache="dual", threshold=thr) if thr else dict(cache="dual")
            outs["ours " + name] = generate(m, [prompt], DecodeConfig(gen_length=G, steps=G, block_length=bl, **over))

        variants["fd " + name], variants["ours " + name] = theirs, ours
    timing = interleaved(variants, args.repeats, args.warmup, sync)
    for name in ("dual", "dual + threshold 0.9"):
        seq, nfe = outs["fd " + name]
        ours_ids = outs["ours " + name][0].raw_ids
        t = timing.median("fd " + name)
        rows.append(dict(impl="Fast-dLLM", mode=name, batch=1, seconds=t, tokens_per_s=G / t, forwards=nfe,
                         ms_per_forward=1e3 * t / nfe, nfe_per_row=nfe,
                         ours_over_fastdllm=timing.ratio("ours " + name, "fd " + name),
                         same_tokens=seq[0, len(prompt):].tolist() == ours_ids))
    return rows


def _print(console, results) -> None:
    from rich.table import Table

    tab = Table(title=f"{results['shape']} LLaDA shape, {results['dtype']}, gen {results['gen_length']}, "
                      f"block {results['block_length']}, prompt {results['prompt_length']}, attn {results['attn']}")
    for col in ("impl", "mode", "batch", "tokens/s", "ms/forward", "forwards", "NFE/row", "time vs none",
                "ours/Fast-dLLM", "same tokens"):
        tab.add_column(col, justify="left" if col in ("impl", "mode") else "right")
    for r in results["rows"]:
        tab.add_row(r["impl"], r["mode"], str(r["batch"]), f"{r['tokens_per_s']:.1f}", ms(r["ms_per_forward"] / 1e3),
                    str(r["forwards"]), f"{r['nfe_per_row']:.1f}", f"{r['vs_none']:.3f}" if "vs_none" in r else "",
                    f"{r['ours_over_fastdllm']:.3f}" if "ours_over_fastdllm" in r else "",
                    str(r["same_tokens"]) if "same_tokens" in r else "")
    console.print(tab)


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_args(ap, repeats=3)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="8b")
    ap.add_argument("--dtype", default="auto", help="bfloat16 | float32 | auto (bf16 on GPU, fp32 on CPU)")
    ap.add_argument("--attn", default="sdpa", help="sdpa | eager | flash_attention_2")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--gen-length", type=int, default=256)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--prompt-length", type=int, default=128)
    ap.add_argument("--fastdllm", default=None, help="a checkout of NVlabs/Fast-dLLM (its llada/ is imported)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    return ap.parse_args(argv)


if __name__ == "__main__":
    run(parse())
