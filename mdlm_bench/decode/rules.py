"""Registries the sampler chooses from by name: remasking rules (the confidence of each proposal),
parallel unmasking rules (how many ranked candidates a step commits), schedules (how many a fixed-steps
step commits), Dream's algorithms (`DREAM`: proposal and confidence as Dream's `sample_tokens` makes
them), plus LLaDA's Gumbel-max noise.

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


# --- schedules: how many candidates a step of a fixed-steps block commits ------------------------
# fn(n_cand [Ba] long, i: step within the block (0-based), n: steps per block, config) -> k [Ba] long
Schedule = Callable[[torch.Tensor, int, int, Any], torch.Tensor]
SCHEDULES: Registry[Schedule] = Registry("schedule")


@SCHEDULES.register("linear")
def _linear(n_cand, i, n, cfg):
    """LLaDA: ceil(remaining / steps left) reproduces its front-loaded linear schedule exactly (and still
    empties the block if a hook re-masked positions)."""
    left = n - i
    return torch.div(n_cand + left - 1, left, rounding_mode="floor")


def eps_times(i: int, n: int, eps: float, device) -> tuple:
    """Dream's timesteps t = linspace(1, eps, n + 1): (t_i, t_{i+1}) as float32 0-d tensors."""
    ts = torch.linspace(1, eps, n + 1, device=device)
    return ts[i], ts[i + 1]


@SCHEDULES.register("eps")
def _eps(n_cand, i, n, cfg):
    """Dream: int(remaining * (1 - t_{i+1} / t_i)) in float32, everything left at the block's last step."""
    if i == n - 1:
        return n_cand
    t, s = eps_times(i, n, cfg.eps, n_cand.device)
    return (n_cand.float() * (1 - s / t)).long()


# --- Dream's algorithms (`alg`): the confidence of a proposal from Dream's filtered probabilities -------
# fn(probs [n, V] (temperature, top_p, top_k applied), confidence [n] = prob of the proposal) -> [n]
DREAM: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry("Dream algorithm")


@DREAM.register("origin")
def _origin(probs, conf):
    """Each candidate is committed on its own with probability 1 - t_{i+1}/t_i (see `dream_propose`)."""
    return conf


@DREAM.register("maskgit_plus")
def _maskgit_plus(probs, conf):
    return conf


@DREAM.register("topk_margin")
def _topk_margin(probs, conf):
    top = probs.sort(dim=-1, descending=True).values
    return top[:, 0] - top[:, 1]


@DREAM.register("entropy")
def _dream_entropy(probs, conf):
    return (probs * torch.log(probs + 1e-10)).sum(-1)  # negative entropy, with Dream's epsilon


def _top_p(logits, top_p):
    """Keep the smallest set of tokens whose probability reaches top_p (the first token always)."""
    srt, idx = torch.sort(logits, descending=True)
    drop = torch.cumsum(F.softmax(srt, dim=-1), dim=-1) > top_p
    drop[..., 1:] = drop[..., :-1].clone()
    drop[..., 0] = False
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, idx, drop)
    return logits.masked_fill(mask, torch.finfo(logits.dtype).min)


def _top_k(logits, top_k):
    kth = torch.topk(logits, min(top_k, logits.shape[-1]))[0][..., -1, None]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def dream_tokens(logits, cfg, gen) -> tuple:
    """Dream's token proposal for one row's candidates: logits [n, V] -> (confidence [n], x0 [n], probs [n, V]).

    temperature > 0: a categorical draw from the filtered probabilities with the row's generator (the
    same `torch.multinomial` call Dream's `Categorical(probs).sample()` makes); 0: the most probable token.
    """
    if cfg.temperature > 0:
        logits = logits / cfg.temperature
    if cfg.top_p is not None and cfg.top_p < 1:
        logits = _top_p(logits, cfg.top_p)
    if cfg.top_k is not None:
        logits = _top_k(logits, cfg.top_k)
    probs = torch.softmax(logits, dim=-1)
    # Categorical(probs) refuses probabilities that are not on the simplex (to 1e-6); Dream then falls
    # back to the most probable token, so we do too.
    simplex = bool(((probs >= 0).all(-1) & ((probs.sum(-1) - 1).abs() < 1e-6)).all())
    if cfg.temperature > 0 and simplex:
        x0 = torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, True, generator=gen).squeeze(-1)
        conf = torch.gather(probs, -1, x0.unsqueeze(-1)).squeeze(-1)
    else:
        conf, x0 = probs.max(dim=-1)
    return conf, x0, probs


def dream_propose(logits, cand, cfg, gens, p_transfer):
    """One step of Dream's `_sample` for the active rows, row by row with each row's generator.

    logits [Ba, W, V]; cand [Ba, W] bool (still-masked positions of the block); gens: one generator per
    row; p_transfer: `origin`'s commit probability this step. Returns x0 [Ba, W] long, confidence [Ba, W]
    (logits' dtype, -inf off candidates) and, under `origin`, chosen [Ba, W] bool (else None).
    """
    Ba, W, _ = logits.shape
    x0 = torch.zeros((Ba, W), dtype=torch.long, device=logits.device)
    conf = torch.full((Ba, W), -torch.inf, dtype=logits.dtype, device=logits.device)
    origin = cfg.alg == "origin"
    chosen = torch.zeros_like(cand) if origin else None
    rule = DREAM.get(cfg.alg)
    for r in range(Ba):
        idx = cand[r].nonzero().flatten()
        if origin and idx.numel():
            idx = idx[torch.rand(idx.shape, generator=gens[r], device=logits.device) < p_transfer]
            chosen[r, idx] = True
        if not idx.numel():
            continue
        c, x, probs = dream_tokens(logits[r, idx], cfg, gens[r])
        x0[r, idx] = x
        conf[r, idx] = rule(probs, c).to(conf.dtype)
    return x0, conf, chosen


def dream_select(conf, k, gens, offset: int, total: int):
    """Dream's `alg_temp` selection: per row, k[r] positions drawn without replacement from
    softmax(confidence / alg_temp) over the row's whole canvas of `total` positions (prompt included,
    as Dream draws). conf [Ba, W] already divided by alg_temp, window position j = canvas offset + j.
    Returns transfer [Ba, W] bool."""
    Ba, W = conf.shape
    out = torch.zeros((Ba, W), dtype=torch.bool, device=conf.device)
    for r in range(Ba):
        n = int(k[r])
        if n <= 0:
            continue
        full = torch.full((1, total), -torch.inf, dtype=conf.dtype, device=conf.device)
        full[0, offset:offset + W] = conf[r]
        pick = torch.multinomial(F.softmax(full, dim=-1), num_samples=n, generator=gens[r])[0] - offset
        out[r, pick] = True
    return out


__all__ = ["REMASKING", "PARALLEL", "SCHEDULES", "DREAM", "Remasking", "Parallel", "Schedule", "add_gumbel_noise",
           "dream_propose", "dream_select", "dream_tokens", "eps_times"]
