"""Training losses for masked diffusion LMs: pure functions of tensors, plus the seeded mask draw.

Shapes: B batch, L sequence length, V vocabulary (slack included), S spans, N span length, U target length.
Every loss accumulates in float32 whatever the input dtype, so bf16 logits are fine.
"""

from __future__ import annotations

import functools
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from mdlm_bench.registry import Registry

# A finite stand-in for log(0): keeps exp() at exactly 0 and avoids inf - inf = nan in the backward pass.
NEG = -1.0e30


def ce_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    p_mask: torch.Tensor,
    answer_lengths: torch.Tensor,
) -> torch.Tensor:
    """LLaDA SFT loss: sum over masked positions of CE / p_mask, divided by the sample's answer length,
    averaged over the batch.

    logits [B, L, V] (any float dtype), targets [B, L] long (clean tokens), mask [B, L] bool (masked positions),
    p_mask [B], answer_lengths [B] (response canvas length incl. padding, >= 1). Returns a float32 scalar.
    """
    b = logits.shape[0]
    sel = mask.nonzero(as_tuple=True)
    if sel[0].numel() == 0:
        return logits.sum() * 0.0  # keeps the graph (DDP needs every parameter to take part)
    tok = F.cross_entropy(logits[sel].float(), targets[sel], reduction="none")
    weight = 1.0 / (p_mask.float()[sel[0]] * answer_lengths.float()[sel[0]])
    return (tok * weight).sum() / b


class _BandedSlackCTC(torch.autograd.Function):
    """-log Z for slack alignments: forward/backward recursions over the band of reachable states.

    State (n, d): n positions consumed, d of them slack, so u = n - d targets emitted; d in [0, D].
    emit [S, N, D+1]: log p(position n emits target n-d) (NEG where n-d is out of range);
    slack [S, N]: log p(position n emits slack); active [S, N] bool: positions inside the span.
    An inactive position is made an identity step (emit 0, slack NEG), so no per-step masking is needed.
    Buffers are [N+1, S, D+2] with one padding column of NEG so the d-1 / d+1 neighbours are plain slices.
    """

    @staticmethod
    def forward(ctx, emit, slack, active, final_d):
        dtype = emit.dtype
        acc = torch.promote_types(dtype, torch.float32)  # bf16/fp16 accumulate in float32; float64 stays
        s, n_max, width = emit.shape
        e = torch.where(active[:, :, None], emit.to(acc), 0.0).transpose(0, 1).contiguous()  # [N, S, D+1]
        sl = torch.where(active, slack.to(acc), NEG).transpose(0, 1).contiguous()[:, :, None]  # [N, S, 1]
        alpha = torch.full((n_max + 1, s, width + 1), NEG, dtype=acc, device=emit.device)  # column 0 = pad
        alpha[0, :, 1] = 0.0
        for n in range(n_max):
            prev = alpha[n]
            torch.logaddexp(prev[:, 1:] + e[n], prev[:, :-1] + sl[n], out=alpha[n + 1, :, 1:])
        log_z = alpha[n_max, :, 1:].gather(1, final_d[:, None]).squeeze(1)
        ctx.save_for_backward(e, sl, active, alpha, final_d, log_z)
        ctx.dtype = dtype
        return -log_z

    @staticmethod
    def backward(ctx, grad_out):
        e, sl, active, alpha, final_d, log_z = ctx.saved_tensors
        n_max, s, width = e.shape
        beta = torch.full((n_max + 1, s, width + 1), NEG, dtype=e.dtype, device=e.device)  # last column = pad
        beta[n_max].scatter_(1, final_d[:, None], 0.0)
        for n in range(n_max - 1, -1, -1):
            nxt = beta[n + 1]
            torch.logaddexp(e[n] + nxt[:, :-1], sl[n] + nxt[:, 1:], out=beta[n, :, :-1])
        a = alpha[:-1, :, 1:]  # [N, S, D+1]
        lz = log_z[None, :, None]
        post_emit = torch.exp((a + e + beta[1:, :, :-1] - lz).clamp(max=0.0))
        post_slack = torch.exp((a + sl + beta[1:, :, 1:] - lz).clamp(max=0.0)).sum(2)
        scale = -grad_out.to(e.dtype)
        act = active.transpose(0, 1)
        g_emit = (post_emit * (act * scale[None, :])[:, :, None]).transpose(0, 1).to(ctx.dtype)
        g_slack = (post_slack * act * scale[None, :]).transpose(0, 1).to(ctx.dtype)
        return g_emit, g_slack, None, None


def slack_ctc_from_emissions(emit: torch.Tensor, slack: torch.Tensor, input_lengths: torch.Tensor,
                             target_lengths: torch.Tensor) -> torch.Tensor:
    """Core of slack_ctc_loss on pre-gathered emissions (no [S, N, V] tensor needed).

    emit [S, N, D+1] (D >= max(N_s - U_s)): log p(position n emits target n - d), any value where n - d is
    outside [0, U_s); slack [S, N]: log p(position n emits slack); lengths [S] long, N_s >= U_s.
    Returns nll [S] float32 (float64 for float64 input).
    """
    s, n_max, width = emit.shape
    dev = emit.device
    n = torch.arange(n_max, device=dev)
    tgt_idx = n[:, None] - torch.arange(width, device=dev)[None, :]  # [N, D+1]
    ok = (tgt_idx[None] >= 0) & (tgt_idx[None] < target_lengths[:, None, None])
    emit = torch.where(ok, emit, torch.full_like(emit, NEG))
    active = n[None, :] < input_lengths[:, None]
    return _BandedSlackCTC.apply(emit, slack, active, input_lengths - target_lengths)


def _emission_tokens(targets: torch.Tensor, n_max: int, width: int) -> torch.Tensor:
    """targets [S, U] -> token ids [S, N, D+1] that position n emits in state d (target n - d, clamped)."""
    s, u = targets.shape
    if u == 0:
        targets = targets.new_zeros(s, 1)
        u = 1
    idx = torch.arange(n_max, device=targets.device)[:, None] - torch.arange(width, device=targets.device)[None]
    return targets.gather(1, idx.clamp(0, u - 1).reshape(1, -1).expand(s, -1)).reshape(s, n_max, width)


def band_emissions(emit: torch.Tensor, ref: torch.Tensor, band: int) -> torch.Tensor:
    """Alignment band: position n may emit target u = n - d only if |n - ref[u]| <= band.

    emit [S, N, D+1] (state d at position n emits target n - d); ref [S, U] long: each target's slot in the
    clean canvas (relative to the span start). Returns emit with NEG outside the band.
    """
    s, n_max, width = emit.shape
    n = torch.arange(n_max, device=emit.device)
    u = (n[:, None] - torch.arange(width, device=emit.device)[None, :])  # [N, D+1]
    if ref.shape[1] == 0:
        return emit
    slot = ref.gather(1, u.clamp(0, ref.shape[1] - 1).reshape(1, -1).expand(s, -1)).reshape(s, n_max, width)
    return torch.where((n[None, :, None] - slot).abs() <= band, emit, torch.full_like(emit, NEG))


def slack_ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    slack_id: int,
    band: int = 0,
    ref: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """-log sum over alignments a (one symbol per position) with B(a) = y of prod_n p_n(a_n),
    where B deletes slack and never merges repeats. With band > 0, only alignments where target u sits at a
    position n with |n - ref[u]| <= band count (ref [S, U] long: target slots in the clean canvas).

    log_probs [S, N, V] log-softmax over V (slack included; any float dtype); targets [S, U] long
    (padding ignored); input_lengths [S], target_lengths [S] long. Only states with n - u in [0, N_s - U_s]
    can finish, so the cost is O(N * (max(N_s - U_s) + 1)).
    Returns (nll [S] float32 (float64 for float64 input), feasible [S] bool). Spans with N_s < U_s have no
    alignment: nll 0 and no gradient.
    """
    s, n_max, _ = log_probs.shape
    dev = log_probs.device
    input_lengths = input_lengths.to(dev).long()
    target_lengths = target_lengths.to(dev).long()
    feasible = input_lengths >= target_lengths
    # Infeasible spans become empty problems (N = U = 0): exactly 0 with zero gradient.
    n_len = torch.where(feasible, input_lengths, 0)
    u_len = torch.where(feasible, target_lengths, 0)
    if s == 0 or n_max == 0:
        zero = log_probs.sum() * 0.0
        return zero.float().expand(s).clone(), feasible
    width = int((n_len - u_len).max().item()) + 1
    tok = _emission_tokens(targets.to(dev), n_max, width)
    emit = log_probs.gather(2, tok)
    if band > 0:
        if ref is None:
            raise ValueError("band > 0 needs ref, the targets' slots in the clean canvas")
        emit = band_emissions(emit, ref.to(dev).long(), band)
    nll = slack_ctc_from_emissions(emit, log_probs[:, :, slack_id], n_len, u_len)
    return nll, feasible


def masked_spans(mask: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Maximal runs of masked response positions.

    mask, response_mask [B, L] bool. Returns spans [S, 3] long rows (batch index, start, end exclusive),
    ordered by batch then start.
    """
    m = (mask & response_mask).to(torch.int8)
    pad = F.pad(m, (1, 1))
    diff = pad[:, 1:] - pad[:, :-1]  # +1 at a run start, -1 one past its end
    starts = (diff == 1).nonzero()
    ends = (diff == -1).nonzero()
    return torch.stack([starts[:, 0], starts[:, 1], ends[:, 1]], dim=1)


def span_ctc_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    p_mask: torch.Tensor,
    answer_lengths: torch.Tensor,
    response_mask: torch.Tensor,
    slack_id: int,
    band: int = 0,
) -> torch.Tensor:
    """Slack-CTC on every maximal masked span between visible anchors; the span's target is its clean
    non-slack tokens in order. Weighted by 1/p_mask and the answer length, averaged over the batch (as ce_loss).
    band > 0: each target stays within `band` positions of its slot in the clean canvas (band_emissions).

    logits [B, L, V], targets [B, L] long (clean canvas, slack included), mask / response_mask [B, L] bool,
    p_mask [B], answer_lengths [B]. Returns a float32 scalar. All spans of the batch are solved as one padded
    [S, Nmax] problem; the softmax is taken only over the M masked positions ([M, V], as in ce_loss).
    """
    b = logits.shape[0]
    sel = mask & response_mask
    spans = masked_spans(mask, response_mask).to(logits.device)
    if spans.shape[0] == 0:
        return logits.sum() * 0.0
    flat = logits[sel].float()  # [M, V], row-major: span s occupies rows first[s] .. first[s] + len - 1
    lse = torch.logsumexp(flat, dim=-1)
    lengths = spans[:, 2] - spans[:, 1]
    first = torch.cumsum(lengths, 0) - lengths
    n_max = int(lengths.max().item())
    offs = torch.arange(n_max, device=logits.device)
    inside = offs[None, :] < lengths[:, None]  # [S, Nmax]
    rows = (first[:, None] + offs[None, :]).clamp(max=flat.shape[0] - 1)
    span_tok = torch.where(inside, targets[sel][rows], slack_id)
    keep = span_tok != slack_id
    target_lengths = keep.sum(1)
    # Stable compaction: the non-slack tokens first, in their original order.
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    span_targets = span_tok.gather(1, order)
    width = int((lengths - target_lengths).max().item()) + 1
    tok = _emission_tokens(span_targets, n_max, width)  # [S, Nmax, D+1]
    emit = flat[rows[:, :, None], tok] - lse[rows][:, :, None]
    if band > 0:
        emit = band_emissions(emit, order, band)  # order[:, u]: slot of target u inside its span
    slack = flat[rows, slack_id] - lse[rows]
    nll = slack_ctc_from_emissions(emit, slack, lengths, target_lengths)
    weight = 1.0 / (p_mask.float()[spans[:, 0]] * answer_lengths.float()[spans[:, 0]])
    return (nll * weight).sum() / b


LossFn = Callable[..., torch.Tensor]
LOSSES: Registry[LossFn] = Registry("loss")


@LOSSES.register("ce")
def _ce(logits, batch: Dict[str, torch.Tensor], slack_id: Optional[int]) -> torch.Tensor:
    return ce_loss(logits, batch["targets"], batch["mask"], batch["p_mask"], batch["answer_lengths"])


@LOSSES.register("slack_ctc")
def _slack_ctc(logits, batch: Dict[str, torch.Tensor], slack_id: Optional[int], band: int = 0,
               ce_weight: float = 0.0) -> torch.Tensor:
    """(1 - ce_weight) * span CTC (banded when band > 0) + ce_weight * CE (the CE anchor)."""
    if slack_id is None:
        raise ValueError("slack_ctc needs a slack token id")
    ctc = span_ctc_loss(logits, batch["targets"], batch["mask"], batch["p_mask"], batch["answer_lengths"],
                        batch["response_mask"], slack_id, band=band)
    if ce_weight == 0:
        return ctc
    return (1.0 - ce_weight) * ctc + ce_weight * _ce(logits, batch, slack_id)


def loss_for(recipe) -> LossFn:
    """The recipe's loss as f(logits, batch, slack_id), with its options bound."""
    fn = LOSSES.get(recipe.loss)
    if recipe.loss == "slack_ctc":
        return functools.partial(fn, band=int(recipe.ctc_band), ce_weight=float(recipe.ce_weight))
    return fn
