"""The MDLM sampler: one batched loop with LLaDA `generate()` semantics and named hook points.

Canvas layout: [B, T] = left-padded prompt [B, P] + `gen_length` masks. Positions are split into
`gen_length // block_length` semi-autoregressive blocks. Each step: one forward pass, a proposal x0
per masked position (argmax of Gumbel-perturbed logits), a confidence per position (the remasking
rule), then the most confident candidates in the current block are committed. A committed token is
never changed by the sampler (perturbation hooks may move it: that is their job).

How many candidates are committed per step: a schedule from `SCHEDULES` over `steps` (LLaDA's
linear one, or Dream's `eps` one), or a parallel unmasking rule from `PARALLEL` (threshold, factor,
topk), which ends a block when it is filled. Under `alg` (Dream's algorithms, `rules.DREAM`) the
proposal and its confidence are Dream's `sample_tokens` (temperature, top_p, top_k), `origin` commits
each candidate with probability 1 - t_{i+1}/t_i, and `alg_temp` draws the committed positions.
How the logits are computed: `decode.cache.CACHES` (none, prefix, dual). Under a cache, blocks
advance in lockstep across the batch (a row that filled its block waits, without forward passes).

Hook points (objects with any of these methods; see `Hook`):
    on_step_start(state)              before the forward pass
    on_logits(state, logits)          logits [Ba, W - lo, V] of the active rows for generated positions
                                      [lo, W) = [state.window_start, block end): every position that can
                                      be committed this step (lo is the first still-masked position);
                                      may be edited in place
    on_commit(state, commit)          the proposal (Commit) before it is written; may be edited
    on_finish(state)                  after the last step (post-hoc operators)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch

from mdlm_bench.decode.config import DecodeConfig
from mdlm_bench.decode.rules import PARALLEL, REMASKING, SCHEDULES, add_gumbel_noise, dream_propose, dream_select, eps_times


# --- state and hooks ------------------------------------------------------------------------
@dataclass
class Commit:
    """This step's proposal for the active rows (gen-relative window of width W)."""

    rows: torch.Tensor  # [Ba] long: batch rows taking part in this step
    transfer: torch.Tensor  # [Ba, W] bool: positions to commit now
    tokens: torch.Tensor  # [Ba, W] long: token proposed at each position
    confidence: torch.Tensor  # [Ba, W] float (-inf where not a candidate)


@dataclass
class DecodeState:
    x: torch.Tensor  # [B, T] canvas: prompt then generated region
    attention_mask: torch.Tensor  # [B, T] bool
    prompt_len: int  # P: the generated region is x[:, P:]
    config: DecodeConfig
    mask_id: int
    eos_ids: List[int]
    slack_id: Optional[int]
    seeds: List[int]
    step: int = 0
    total_steps: Optional[int] = None  # None under threshold decoding
    steps_left: Optional[int] = None  # steps left in the current block, this one included (None: parallel rule)
    block_end: Optional[torch.Tensor] = None  # [B] gen-relative end of each row's current block
    nfe: Optional[torch.Tensor] = None  # [B] forward passes per row
    commit_step: Optional[torch.Tensor] = None  # [B, G] step of commit, -1 = not yet
    window_start: int = 0  # lo: on_logits sees generated positions [lo, block end)
    full_forwards: Optional[torch.Tensor] = None  # [B] forward passes over the whole canvas (cache refreshes)
    extras: Dict[str, object] = field(default_factory=dict)  # per-hook scratch space

    @property
    def gen(self) -> torch.Tensor:
        """[B, G] view of the generated region (writes go to the canvas)."""
        return self.x[:, self.prompt_len:]

    @property
    def progress(self) -> torch.Tensor:
        """[B] fraction of generated positions committed so far."""
        return (self.gen != self.mask_id).float().mean(-1)


class Hook:
    """Base class for sampler hooks; override any subset."""

    def on_step_start(self, state: DecodeState) -> None: ...

    def on_logits(self, state: DecodeState, logits: torch.Tensor) -> None: ...

    def on_commit(self, state: DecodeState, commit: Commit) -> None: ...

    def on_finish(self, state: DecodeState) -> None: ...


@dataclass
class GenResult:
    token_ids: List[int]  # generated region, cut at the first EOS, slack and padding removed
    text: str
    nfe: int
    raw_ids: List[int]  # the whole generated region as decoded
    commit_step: Optional[List[int]] = None
    full_nfe: Optional[int] = None  # forward passes over the whole canvas (= nfe without a cache)


# --- the loop ---------------------------------------------------------------------------------
def _row_generators(seeds: Sequence[int], device) -> List[torch.Generator]:
    gens = []
    for s in seeds:
        g = torch.Generator(device=device)
        g.manual_seed(int(s))
        gens.append(g)
    return gens


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple:
    """list of token-id lists -> (ids [B, P] long, mask [B, P] bool), padded on the left."""
    P = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), P), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), P), dtype=torch.bool)
    for i, p in enumerate(prompts):
        if len(p):
            ids[i, P - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
            mask[i, P - len(p):] = True
    return ids.to(device), mask.to(device)


@torch.inference_mode()
def generate(model, prompts: Sequence[Sequence[int]], config: DecodeConfig, seeds: Optional[Sequence[int]] = None,
             hooks: Sequence[Hook] = ()) -> List[GenResult]:
    """Decode a batch. model: an MDLM; prompts: token-id lists; seeds: one per row (default 0)."""
    from mdlm_bench.decode.cache import make_forward

    B = len(prompts)
    seeds = list(seeds) if seeds is not None else [0] * B
    if len(seeds) != B:
        raise ValueError("one seed per prompt")
    device = model.device
    cfg = config.validate(max(len(p) for p in prompts), model.max_positions)
    G, bl = cfg.gen_length, cfg.block_length
    n_blocks = G // bl
    prompt_ids, prompt_mask = left_pad(prompts, model.pad_id, device)
    P = prompt_ids.shape[1]
    x = torch.cat([prompt_ids, torch.full((B, G), model.mask_id, dtype=torch.long, device=device)], 1)
    attn = torch.cat([prompt_mask, torch.ones((B, G), dtype=torch.bool, device=device)], 1)
    gens = _row_generators(seeds, device)
    rule_name = cfg.parallel_rule
    rule = PARALLEL.get(rule_name) if rule_name else None
    state = DecodeState(
        x=x, attention_mask=attn, prompt_len=P, config=cfg, mask_id=model.mask_id, eos_ids=model.eos_ids,
        slack_id=model.slack_id, seeds=seeds, nfe=torch.zeros(B, dtype=torch.long),
        full_forwards=torch.zeros(B, dtype=torch.long),
        commit_step=torch.full((B, G), -1, dtype=torch.long, device=device),
        total_steps=None if rule else cfg.steps,
    )
    forward = make_forward(cfg.cache, model, P, cfg.cfg_scale)
    lockstep_blocks = cfg.cache != "none"  # a cache is built per block, so rows share the block
    eos = torch.as_tensor(model.eos_ids, dtype=torch.long, device=device)
    cost = 2 if cfg.cfg_scale > 0 else 1
    all_rows = torch.arange(B, device=device)
    steps_per_block = None if rule else cfg.steps // n_blocks
    max_iters = cfg.steps if steps_per_block else G * 2 + n_blocks  # a parallel rule commits >= 1 per step

    positions = torch.arange(G, device=device)
    for it in range(max_iters):
        state.step = it
        if steps_per_block:
            # Lockstep blocks: every row's window is the same [0, W), so no per-row bookkeeping.
            blk = it // steps_per_block
            W = (blk + 1) * bl
            if state.block_end is None or int(state.block_end[0]) != W:
                state.block_end = torch.full((B,), W, dtype=torch.long, device=device)
            steps_left = steps_per_block - it % steps_per_block
            state.steps_left = steps_left
            active = all_rows
        else:
            has = (state.gen == model.mask_id).view(B, n_blocks, bl).any(-1)  # [B, nb]
            alive = has.any(-1)
            if not alive.any():
                break
            first = has.float().argmax(-1)  # each row's first block with a masked position
            if lockstep_blocks:
                blk = int(first[alive].min())
                alive &= first == blk  # rows past this block wait for the others
                first = torch.full_like(first, blk)
            state.block_end = (first + 1) * bl
            active = all_rows[alive]
            W = int(state.block_end[active].max())
            blk = W // bl - 1
        block_end = state.block_end
        for h in hooks:
            h.on_step_start(state)

        full = active.numel() == B
        xa = x if full else x[active]
        aa = attn if full else attn[active]
        # The window [lo, W) of the generated region holds every candidate position.
        masked = xa[:, P:P + W] == model.mask_id
        lo = min(int(masked.any(0).float().argmax()), blk * bl) if bool(masked.any()) else blk * bl
        state.window_start = lo
        logits, fresh = forward(xa, aa, active, lo, W, (blk * bl, (blk + 1) * bl))
        refreshed = cost if fresh is None else fresh.cpu() * cost
        if full:
            state.nfe += cost
            state.full_forwards += refreshed
        else:
            rows_on = active.cpu()
            state.nfe[rows_on] += cost
            state.full_forwards[rows_on] += refreshed
        for h in hooks:
            h.on_logits(state, logits)
        if cfg.suppress_eos and eos.numel():
            logits[..., eos] = -torch.inf

        Wl = W - lo
        # Candidates: still-masked positions before the row's block end (earlier blocks included,
        # should a hook have re-masked something there).
        cand = masked[:, lo:]
        if not steps_per_block:
            cand = cand & (positions[None, lo:W] < block_end[active][:, None])
        chosen = None
        if cfg.alg:  # Dream's sample_tokens per row; origin commits each candidate with prob 1 - s/t
            i_blk = it % steps_per_block
            t, s = eps_times(i_blk, steps_per_block, cfg.eps, device)
            p_transfer = 1 - s / t if i_blk < steps_per_block - 1 else 1
            row_gens = [gens[r] for r in active.tolist()]
            x0, conf, chosen = dream_propose(logits, cand, cfg, row_gens, p_transfer)
        rows = active.tolist() if not cfg.alg and (cfg.temperature > 0 or cfg.remasking == "random") else None
        row_end = block_end[active].tolist() if rows is not None else None

        def draw(shape_tail, dtype):
            """Each row draws for its own gen positions [0, row's block end), so its noise does not depend on
            its batch-mates; the slice [lo, W) is used (zeros past the row's block: never candidates)."""
            out = []
            for r, e in zip(rows, row_end):
                u = torch.rand((e,) + shape_tail, generator=gens[r], dtype=dtype, device=device)[lo:]
                if u.shape[0] < Wl:
                    u = torch.cat([u, u.new_full((Wl - u.shape[0],) + shape_tail, 0.5)])
                out.append(u)
            return torch.stack(out)

        if not cfg.alg:
            if cfg.temperature > 0:
                x0 = add_gumbel_noise(logits, cfg.temperature, draw((logits.shape[-1],), torch.float64)).argmax(-1)
            else:
                x0 = logits.argmax(-1)
            conf = REMASKING.get(cfg.remasking)(logits, x0, lambda width: draw((), torch.float32))
        if cfg.eos_confidence_inf and eos.numel():
            conf = conf.masked_fill(torch.isin(x0, eos), -torch.inf)
        if chosen is not None:  # origin: the chosen candidates are this step's commits
            cand = cand & chosen
        raw_conf = conf.masked_fill(~cand, -torch.inf)
        conf = raw_conf.to(torch.float32)

        n_cand = cand.sum(-1)
        if chosen is not None:
            k = n_cand
        elif steps_per_block:
            k = SCHEDULES.get(cfg.schedule_name)(n_cand, it % steps_per_block, steps_per_block, cfg)
        else:
            k = rule(conf, n_cand, cfg)
        kmax = int(k.max()) if k.numel() else 0
        transfer = torch.zeros_like(cand)
        if kmax > 0 and cfg.alg_temp:  # Dream draws the positions to commit
            transfer = dream_select(raw_conf / cfg.alg_temp, k, row_gens, P + lo, x.shape[1]) & cand
        elif kmax > 0:
            top = conf.topk(kmax, dim=-1).indices  # [Ba, kmax]
            keep = positions[None, :kmax] < k[:, None]
            transfer.scatter_(1, top, keep)
            transfer &= cand
        if lo:  # hooks get the gen-relative window [0, W): the part left of lo holds no candidate
            transfer = torch.cat([transfer.new_zeros((transfer.shape[0], lo)), transfer], 1)
            x0 = torch.cat([xa[:, P:P + lo], x0], 1)
            conf = torch.cat([conf.new_full((conf.shape[0], lo), -torch.inf), conf], 1)
        commit = Commit(rows=active, transfer=transfer, tokens=x0, confidence=conf)
        for h in hooks:
            h.on_commit(state, commit)

        window = state.gen[:, :W]
        if full:
            window.copy_(torch.where(commit.transfer, commit.tokens, window))
            state.commit_step[:, :W].masked_fill_(commit.transfer, it)
        else:
            sub = window[active]
            sub[commit.transfer] = commit.tokens[commit.transfer]
            window[active] = sub
            cs = state.commit_step[active, :W]
            cs[commit.transfer] = it
            state.commit_step[active, :W] = cs

    for h in hooks:
        h.on_finish(state)
    return [_result(model, state, b) for b in range(B)]


def clean_ids(ids: Sequence[int], eos_ids: Sequence[int], drop: Sequence[int]) -> List[int]:
    """Cut at the first EOS, then drop slack/mask/pad ids."""
    eos = set(eos_ids)
    out: List[int] = []
    for t in ids:
        if t in eos:
            break
        out.append(t)
    drop = set(d for d in drop if d is not None)
    return [t for t in out if t not in drop]


def _result(model, state: DecodeState, b: int) -> GenResult:
    raw = state.gen[b].tolist()
    ids = clean_ids(raw, model.eos_ids, [model.slack_id, model.mask_id, model.meta.pad_token_id])
    text = model.tokenizer.decode(ids, skip_special_tokens=True)
    cs = state.commit_step[b].tolist() if state.config.record_steps else None
    return GenResult(token_ids=ids, text=text, nfe=int(state.nfe[b]), raw_ids=raw, commit_step=cs,
                     full_nfe=int(state.full_forwards[b]))


__all__ = ["DecodeConfig", "DecodeState", "Commit", "Hook", "GenResult", "REMASKING", "PARALLEL", "generate", "left_pad",
           "clean_ids", "add_gumbel_noise"]
