"""Registries the sampler chooses from by name: remasking rules (the confidence of each proposal) and
parallel unmasking rules (how many ranked candidates a step commits), plus LLaDA's Gumbel-max noise.

Importing this module does not import the decoding settings: a parallel rule reads the attributes it
needs (`threshold`, `factor`, `parallel_k`) from whatever config object the sampler passes.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from mdlm_bench.registry import Registry


# --- remasking rules: confidence of each proposal, higher = commit first --------------------
# fn(logits [B, W, V] float, x0 [B, W] long, rand(shape) -> uniform [B, ...]) -> confidence [B, W]
Remasking = Callable[[torch.Tensor, torch.Tensor, Callable[[int], torch.Tensor]], torch.Tensor]
REMASKING: Registry[Remasking] = Registry("remasking")


@REMASKING.register("low_confidence")
def _low_confidence(logits, x0, rand):
    p = F.softmax(logits.float(), dim=-1)
    return torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)


@REMASKING.register("random")
def _random(logits, x0, rand):
    return rand(x0.shape[1]).to(logits.device, torch.float32)


@REMASKING.register("margin")
def _margin(logits, x0, rand):
    top2 = F.softmax(logits.float(), dim=-1).topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


@REMASKING.register("entropy")
def _entropy(logits, x0, rand):
    logp = F.log_softmax(logits.float(), dim=-1)
    return (logp.exp() * logp).sum(-1)  # negative entropy


# --- parallel unmasking rules: how many of the ranked candidates to commit this step ----------
# fn(conf [Ba, W] float32, -inf where not a candidate; n_cand [Ba] long; config) -> k [Ba] long in [0, n_cand],
# at least 1 where n_cand > 0 (so every step makes progress). The top-k by confidence are committed.
Parallel = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]  # config: a DecodeConfig
PARALLEL: Registry[Parallel] = Registry("parallel rule")


def _at_least_one(k: torch.Tensor, n_cand: torch.Tensor) -> torch.Tensor:
    return torch.where(n_cand > 0, torch.minimum(k.clamp(min=1), n_cand), n_cand)


@PARALLEL.register("threshold")
def _threshold(conf, n_cand, cfg):
    """Every candidate whose confidence exceeds `threshold` (Fast-dLLM's threshold rule)."""
    return _at_least_one((conf > cfg.threshold).sum(-1), n_cand)


@PARALLEL.register("factor")
def _factor(conf, n_cand, cfg):
    """Fast-dLLM's factor rule: with confidences sorted c_1 >= c_2 >= ..., commit the largest n such that
    (m + 1) * (1 - c_m) < factor for every m <= n (the first candidate always)."""
    c = conf.sort(-1, descending=True).values
    m = torch.arange(1, c.shape[-1] + 1, device=c.device, dtype=c.dtype)
    ok = (m + 1) * (1 - c) < cfg.factor
    ok[..., 0] = True
    return _at_least_one(ok.long().cumprod(-1).sum(-1), n_cand)


@PARALLEL.register("topk")
def _topk(conf, n_cand, cfg):
    """A fixed number `parallel_k` of the most confident candidates per step."""
    return _at_least_one(torch.full_like(n_cand, int(cfg.parallel_k)), n_cand)


def add_gumbel_noise(logits: torch.Tensor, temperature: float, uniform: torch.Tensor) -> torch.Tensor:
    """LLaDA's float64 Gumbel-max trick: argmax(exp(l) / (-log u)^T) samples softmax(l / T)."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    return logits.exp() / (-torch.log(uniform)) ** temperature


__all__ = ["REMASKING", "PARALLEL", "Remasking", "Parallel", "add_gumbel_noise"]
