"""Argument groups shared by several commands (model loading, decoding)."""

from __future__ import annotations

import argparse

from mdlm_bench.decode.config import DecodeConfig

_D = DecodeConfig()


def add_model_args(p: argparse.ArgumentParser, required: bool = True, default: str | None = None) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", required=required and default is None, default=default,
                   help="checkpoint directory or bundled name (see 'mdlm-bench ls models')")
    g.add_argument("--dtype", default="auto", help="float32 | bfloat16 | float16 | auto (default auto: bf16 on GPU, fp32 on CPU)")
    g.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default auto: cuda when available, else cpu)")
    g.add_argument("--trust-remote-code", action="store_true", help="allow code shipped with the checkpoint")
    g.add_argument("--allow-pickle", action="store_true", help="allow pickled .bin weights (can run code)")
    g.add_argument("--attn", default=None, help="sdpa | eager | flash_attention_2 (if installed); default sdpa")


def add_decoding_args(p: argparse.ArgumentParser, tasks: bool = True) -> None:
    """The decoding flags; `tasks`: the command runs tasks, whose own generation lengths the help explains."""
    g = p.add_argument_group("decoding (LLaDA semantics)")
    g.add_argument("--gen-length", type=int, default=None,
                   help=f"tokens to generate (default {_D.gen_length})" + (
                       "; tasks (synth_* ...) use their own max_gen_toks instead, rounded up to a multiple of "
                       "--block-length" if tasks else ""))
    g.add_argument("--steps", type=int, default=None,
                   help=f"sampling steps in all (default {_D.steps})" + (
                       "; for tasks scaled with their max_gen_toks to keep the same steps per token" if tasks else ""))
    g.add_argument("--block-length", type=int, default=None, help=f"semi-AR block length (default {_D.block_length})")
    g.add_argument("--temperature", type=float, default=None, help=f"Gumbel temperature; 0 = greedy (default {_D.temperature:g})")
    g.add_argument("--remasking", default=None, help=f"low_confidence | random | margin | entropy (default {_D.remasking})")
    g.add_argument("--threshold", type=float, default=None,
                   help="confidence threshold of --parallel threshold (given alone, implies it; default 0.9)")
    g.add_argument("--cache", default=None,
                   help=f"none | prefix | dual: block-wise KV cache (faster, approximate; see README; default {_D.cache})")
    g.add_argument("--parallel", default=None,
                   help="threshold | factor | topk: parallel unmasking rule (default: fixed --steps)")
    g.add_argument("--factor", type=float, default=None, help="f of --parallel factor (default 1.0)")
    g.add_argument("--parallel-k", type=int, default=None, help="tokens per step of --parallel topk (default 2)")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: half the cores, at least 1; see README)")
    g.add_argument("--cfg-scale", type=float, default=None, help=f"classifier-free guidance scale (default {_D.cfg_scale:g}: off)")
    g.add_argument("--suppress-eos", action="store_true", default=None, help="never propose EOS/EoT (default off)")
    g.add_argument("--eos-confidence-inf", action="store_true", default=None,
                   help="commit EOS/EoT proposals last (default off)")
    g.add_argument("--alg", default=None, help="Dream's sampler: origin | maskgit_plus | topk_margin | entropy "
                                               "(default for Dream checkpoints: the checkpoint's own settings)")
    g.add_argument("--schedule", default=None, help="linear (LLaDA) | eps (Dream); default eps under --alg")
    g.add_argument("--eps", type=float, default=None, help="last timestep of the eps schedule (default 1e-3)")
    g.add_argument("--alg-temp", type=float, default=None, help="Dream: draw committed positions at this temperature (default off)")
    g.add_argument("--top-p", type=float, default=None, help="Dream: nucleus filtering of proposals (default off)")
    g.add_argument("--top-k", type=int, default=None, help="Dream: top-k filtering of proposals (default off)")


DECODING_FLAGS = ("gen_length", "steps", "block_length", "temperature", "remasking", "threshold", "cfg_scale",
                  "suppress_eos", "eos_confidence_inf", "cache", "parallel", "factor", "parallel_k", "alg", "schedule",
                  "eps", "alg_temp", "top_p", "top_k")


def default_threads() -> int:
    """Half the logical cores, at least 1. Measured (benchmarks/threads.py, README): on a shared 2-core
    machine one thread beats two, since a second thread waits on cores other jobs hold; with many cores
    the physical ones (half the logical under SMT) serve a decode best."""
    import os

    return max(1, (os.cpu_count() or 2) // 2)


def apply_threads(n) -> int:
    """Set torch's intra-op threads to n (None: default_threads()); returns the count in effect."""
    from mdlm_bench.errors import UserError

    if n is not None and n < 1:
        raise UserError(f"--threads must be at least 1, got {n}")
    import torch

    torch.set_num_threads(n or default_threads())
    return torch.get_num_threads()


def decoding_overrides(args) -> dict:
    """Only the decoding flags the user gave (None = not given)."""
    return {k: getattr(args, k) for k in DECODING_FLAGS if getattr(args, k, None) is not None}


def load_model_from_args(args):
    from mdlm_bench.models import load_model

    return load_model(args.model, dtype=args.dtype, device=args.device,
                      trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle,
                      attn=getattr(args, "attn", None) or "sdpa")
