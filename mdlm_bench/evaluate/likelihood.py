"""Monte Carlo log-likelihood bound for masked diffusion LMs (LLaDA's estimator), and greedy-unmasking checks.

A masked diffusion LM has no exact left-to-right likelihood. What it has is the bound (the ELBO)

    B(y | x) = E_{l ~ U{1..L}} E_{M: l of the L continuation positions, uniform} [ (L / l) * sum_{j in M}
               log p(y_j | x, y with M masked) ]

for a prompt x (never masked) and a continuation y of L tokens. `mc_loglikelihood` estimates it with
`mc_num` samples: the mask counts l are stratified (one draw per stratum of an evenly spaced grid over
[1, L] with a shared random offset, so every count is covered in proportion), the masked positions are
uniform given l, and each sample contributes (L / l) * (sum of log-probs at its masked positions).
The estimate is the sample mean; it is unbiased for B, which is <= log p(y | x).

Samples from many requests share forward passes: sequences are left-padded into chunks of
`batch_size`, and only the continuation positions go through the LM head.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from mdlm_bench.decode.config import DecodeConfig

Pair = Tuple[Sequence[int], Sequence[int]]  # (prompt ids, continuation ids)


@dataclass
class MCEstimate:
    """One request's estimate: mean of the per-sample values, their standard error, sample count."""

    mean: float
    std_err: float  # std of the samples / sqrt(n); conservative under stratification
    n: int


def request_seed(seed: int, prompt: Sequence[int], target: Sequence[int]) -> int:
    """A seed keyed by content, so a request's estimate does not depend on which others share its batch."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{int(seed)}|{','.join(map(str, prompt))}|{','.join(map(str, target))}".encode())
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def stratified_mask_counts(L: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """n mask counts in {1..L}: l_i = 1 + floor(L * (i + u) / n), one shared u ~ U[0, 1). -> [n] long.

    Averaged over i, each l carries weight exactly 1/L in expectation, so the sample mean stays unbiased.
    """
    u = torch.rand((), generator=generator, dtype=torch.float64)
    grid = (torch.arange(n, dtype=torch.float64) + u) * (L / n)
    return (grid.floor().long() + 1).clamp_(1, L)


def sample_masks(counts: torch.Tensor, L: int, generator: torch.Generator) -> torch.Tensor:
    """counts [n] -> masks [n, L] bool with counts[i] uniformly chosen positions set in row i."""
    ranks = torch.rand((counts.numel(), L), generator=generator).argsort(-1).argsort(-1)
    return ranks < counts[:, None]


def masked_logits(model, ids: torch.Tensor, attn: torch.Tensor, prompt_mask: torch.Tensor, keep_last: int,
                  cfg_scale: float = 0.0) -> torch.Tensor:
    """Logits of the last `keep_last` positions [B, K, V]; with cfg_scale > 0, LLaDA's classifier-free
    guidance (the unconditional pass masks the prompt tokens, prompt_mask [B, T] bool)."""
    if cfg_scale <= 0:
        return model.logits(ids, attn, keep_last=keep_last)
    un = ids.masked_fill(prompt_mask, model.mask_id)
    both = model.logits(torch.cat([ids, un]), torch.cat([attn, attn]), keep_last=keep_last)
    cond, unc = both.chunk(2)
    return unc + (cfg_scale + 1) * (cond - unc)


@torch.inference_mode()
def mc_loglikelihood(model, pairs: Sequence[Pair], mc_num: int = 64, batch_size: int = 32, seed: int = 0,
                     cfg_scale: float = 0.0,
                     on_chunk: Optional[Callable[[int], None]] = None) -> List[MCEstimate]:
    """Monte Carlo estimates of the bound B(target | prompt) for each (prompt ids, target ids) pair.

    batch_size: sequences per forward pass (samples of different requests are mixed); on_chunk(n) is
    called after each forward pass with the number of sequences it held (progress).
    """
    if mc_num < 1:
        raise ValueError("mc_num must be >= 1")
    device = model.device
    # Draw every sample's mask up front (on CPU, per-request generators), then schedule forward passes.
    items = []  # (request, sample index, total length)
    masks: List[Optional[torch.Tensor]] = []
    for r, (prompt, target) in enumerate(pairs):
        L = len(target)
        if L == 0:
            masks.append(None)
            continue
        g = torch.Generator().manual_seed(request_seed(seed, prompt, target))
        masks.append(sample_masks(stratified_mask_counts(L, mc_num, g), L, g))
        items += [(r, i, len(prompt) + L) for i in range(mc_num)]
    values = [torch.zeros(mc_num if m is not None else 0, dtype=torch.float64) for m in masks]
    items.sort(key=lambda t: (t[2], t[0], t[1]))  # similar lengths together: less padding

    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        B, T = len(chunk), max(t[2] for t in chunk)
        K = max(len(pairs[r][1]) for r, _, _ in chunk)
        ids = torch.full((B, T), model.pad_id, dtype=torch.long)
        attn = torch.zeros((B, T), dtype=torch.bool)
        prompt_mask = torch.zeros((B, T), dtype=torch.bool)
        target_ids = torch.zeros((B, K), dtype=torch.long)
        target_mask = torch.zeros((B, K), dtype=torch.bool)  # masked continuation positions, last K slots
        for b, (r, i, n) in enumerate(chunk):
            prompt, target = pairs[r]
            L, P = len(target), len(prompt)
            ids[b, T - n:] = torch.as_tensor(list(prompt) + list(target), dtype=torch.long)
            attn[b, T - n:] = True
            prompt_mask[b, T - n:T - L] = True
            target_ids[b, K - L:] = torch.as_tensor(list(target), dtype=torch.long)
            target_mask[b, K - L:] = masks[r][i]
        noisy = ids.clone()
        noisy[:, T - K:][target_mask] = model.mask_id
        logits = masked_logits(model, noisy.to(device), attn.to(device), prompt_mask.to(device), K, cfg_scale)
        logp = torch.gather(F.log_softmax(logits.float(), dim=-1), -1, target_ids.to(device)[..., None])[..., 0]
        sums = (logp.double().cpu() * target_mask).sum(-1)  # [B]
        counts = target_mask.sum(-1)
        for b, (r, i, _) in enumerate(chunk):
            values[r][i] = sums[b] * (len(pairs[r][1]) / int(counts[b]))
        if on_chunk:
            on_chunk(B)

    out = []
    for v in values:
        if v.numel() == 0:
            out.append(MCEstimate(0.0, 0.0, 0))
            continue
        se = float(v.std(unbiased=True) / math.sqrt(v.numel())) if v.numel() > 1 else float("nan")
        out.append(MCEstimate(float(v.mean()), se, int(v.numel())))
    return out


def greedy_config(L: int) -> DecodeConfig:
    """Greedy unmasking of L tokens: all masked, one block, one token per step, lowest-confidence remasking."""
    return DecodeConfig(gen_length=L, steps=L, block_length=L, temperature=0.0, remasking="low_confidence")


def greedy_matches(model, pairs: Sequence[Pair], batch_size: int = 32, cfg_scale: float = 0.0) -> List[bool]:
    """Whether greedy unmasking from an all-masked continuation reproduces each target exactly."""
    from mdlm_bench.decode.sampler import generate

    out = [True] * len(pairs)  # an empty continuation is trivially greedy
    by_len = {}
    for r, (_, target) in enumerate(pairs):
        if len(target):
            by_len.setdefault(len(target), []).append(r)
    for L, rows in sorted(by_len.items()):
        cfg = greedy_config(L)
        cfg.cfg_scale = cfg_scale
        for start in range(0, len(rows), batch_size):
            idx = rows[start:start + batch_size]
            res = generate(model, [list(pairs[r][0]) for r in idx], cfg, [0] * len(idx))
            for r, g in zip(idx, res):
                out[r] = list(g.raw_ids) == list(pairs[r][1])
    return out


def rolling_windows(n_tokens: int, max_len: int) -> List[Tuple[int, int, int]]:
    """Cut n tokens into scored windows for a model of max_len positions. -> [(ctx_start, start, end)].

    Tokens [start, end) are scored given tokens [ctx_start, start) as prompt; every token is scored
    exactly once, every window fits in max_len, and the last window gets as much context as fits.
    """
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    out = []
    for start in range(0, n_tokens, max_len):
        end = min(start + max_len, n_tokens)
        ctx_start = max(0, end - max_len) if end == n_tokens else start
        out.append((ctx_start, start, end))
    return out
