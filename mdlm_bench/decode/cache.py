"""How the sampler gets one step's window logits: a full forward (`none`) or a block-wise KV cache.

`prefix`: at the first step of a block (lockstep across the batch), one full forward; the keys and
values of every position left of the block (the prompt and the committed earlier blocks) are kept.
Each later step of the block recomputes only the block and the suffix right of it, attending to
those cached keys. `dual`: the suffix (still masked) is cached too, so a step recomputes only the
block. Caches are refreshed at every block boundary (as Fast-dLLM does).

Exactness. The cached keys are the ones computed at the block's first step. In a bidirectional
model with more than one layer they depend on every position of the canvas, including the block
and suffix tokens that change within the block, so both caches are approximations (Fast-dLLM's);
they are exact only at the block's first step, or for keys that depend on their own token alone
(a one-layer model). Tests hold equal logits where exact and compare exact match where not.

Per-row refresh (so a row decodes the same in any batch): a row gets a full forward, and a new
cache, when it has no cache for this block, when any cached position of its canvas changed since its
cache was built (a perturbation moved a token into or out of it), or when it has a masked position
left of the recomputed span (a hook re-masked a committed token). Other rows use the cache.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from mdlm_bench.registry import Registry


class StepForward:
    """Computes [Ba, W - lo, V] logits of gen positions [lo, W) for the active rows; `full` [Ba] bool says
    which rows got a full forward this step (None: every row did). Subclasses keep their cache between steps of one decode."""

    def __init__(self, model, prompt_len: int, cfg_scale: float):
        self.model, self.P, self.cfg_scale = model, prompt_len, cfg_scale

    def _batch(self, x: torch.Tensor, attn: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Under classifier-free guidance: [cond; uncond] rows (uncond = prompt masked)."""
        if self.cfg_scale <= 0:
            return x, attn
        un = x.clone()
        P = self.P
        un[:, :P][attn[:, :P]] = self.model.mask_id
        return torch.cat([x, un]), torch.cat([attn, attn])

    def _combine(self, logits: torch.Tensor) -> torch.Tensor:
        if self.cfg_scale <= 0:
            return logits
        cond, unc = logits.chunk(2)
        return unc + (self.cfg_scale + 1) * (cond - unc)

    def __call__(self, x, attn, active, lo: int, W: int, block: Tuple[int, int]):
        raise NotImplementedError


CACHES: Registry[type] = Registry("cache mode")


@CACHES.register("none")
class NoCache(StepForward):
    """A full forward every step; the LM head runs on the window only."""

    def __call__(self, x, attn, active, lo, W, block):
        ids, mask = self._batch(x, attn)
        logits = self.model.window_logits(ids, mask, self.P + lo, self.P + W)
        return self._combine(logits), None  # None: every row got a full forward (no per-step tensor or sync)


class BlockCache(StepForward):
    dual = False

    def __init__(self, model, prompt_len: int, cfg_scale: float):
        super().__init__(model, prompt_len, cfg_scale)
        if not model.supports_cache:
            from mdlm_bench.errors import UserError

            raise UserError("--cache needs a native Llama/Qwen2 backbone; this checkpoint runs remote code, "
                            "so use --cache none")
        self.kv = None  # models.mdlm.KVCache

    def _span(self, block: Tuple[int, int], T: int) -> Tuple[int, int]:
        """Canvas positions [q0, q1) recomputed at cached steps of this block."""
        bs, be = block
        q0 = self.P + bs - int(self.model.meta.logits_shift)  # a shifted head reads the hidden state at i-1
        return q0, (self.P + be if self.dual else T)

    def stale(self, x: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        """[Ba] bool: a cached position of the row's canvas holds another token than when the cache was built
        (the invalidation rule for perturbations: see mdlm_bench.perturb.operators)."""
        kv = self.kv
        return (x[:, kv.positions] != kv.tokens[slot]).any(-1)

    def __call__(self, x, attn, active, lo, W, block):
        """x, attn: [Ba, T] canvas of the active rows; active [Ba] their batch rows."""
        Ba, T = x.shape
        q0, q1 = self._span(block, T)
        kv, dev = self.kv, x.device
        need = torch.ones(Ba, dtype=torch.bool, device=dev)
        slot = torch.full((Ba,), -1, dtype=torch.long, device=dev)  # row's index in the cache
        if kv is not None and kv.tag == block:
            match = active[:, None] == kv.rows[None, :]
            have = match.any(-1)
            slot = torch.where(have, match.float().argmax(-1), slot)
            need = ~have | self.stale(x, slot.clamp(min=0))
        # A masked position left of the recomputed span cannot be decoded from the cache.
        shift = int(self.model.meta.logits_shift)
        need |= (x[:, self.P:q0 + shift] == self.model.mask_id).any(-1)
        logits = None
        if not bool(need.all()):
            use = (~need).nonzero().flatten()
            use = use[torch.argsort(slot[use])]  # the cache's row order
            sub = torch.zeros(kv.rows.shape, dtype=torch.bool, device=dev)
            sub[slot[use]] = True
            if not bool(sub.all()):
                kv.keep_rows(sub)
            ids, mask = self._batch(x[use], attn[use])
            clo = max(lo, block[0])  # these rows have no masked position left of the block
            cached = self._combine(self.model.cached_logits(kv, ids, mask, self.P + clo, self.P + W))
            logits = cached.new_zeros((Ba, W - lo) + cached.shape[2:])
            logits[use, clo - lo:] = cached
        if bool(need.any()):
            fresh = need.nonzero().flatten()
            positions = torch.cat([torch.arange(0, q0, device=dev), torch.arange(q1, T, device=dev)])
            ids, mask = self._batch(x[fresh], attn[fresh])
            full, new = self.model.window_logits(ids, mask, self.P + lo, self.P + W, keep_positions=positions,
                                                 guidance_rows=fresh.numel() if self.cfg_scale > 0 else 0)
            full = self._combine(full)
            new.rows, new.query, new.tag = active[fresh], (q0, q1), block
            if logits is None:
                logits = full.new_zeros((Ba,) + full.shape[1:])
            logits[fresh] = full
            self.kv = new if bool(need.all()) else _merge(kv, new, active)
        return logits, need


def _merge(kv, new, active):
    from mdlm_bench.models.mdlm import merge_caches

    held = torch.cat([kv.rows, new.rows])
    rows = active[torch.isin(active, held)]
    return merge_caches(kv, new, rows)


@CACHES.register("prefix")
class PrefixCache(BlockCache):
    """Prompt and earlier blocks cached; block and suffix recomputed."""

    dual = False


@CACHES.register("dual")
class DualCache(BlockCache):
    """Prompt, earlier blocks and the masked suffix cached; only the block recomputed."""

    dual = True


def make_forward(name: str, model, prompt_len: int, cfg_scale: float) -> Optional[StepForward]:
    return CACHES.get(name)(model, prompt_len, cfg_scale)
