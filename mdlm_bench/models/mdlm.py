"""The loaded model: one object with bidirectional `logits`, the tokenizer and the special-token ids."""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import torch

META_FILE = "mdlm_bench.json"


@dataclass
class ModelMeta:
    """What mdlm-bench needs beyond a transformers checkpoint (saved as mdlm_bench.json)."""

    flavour: str = "llada"  # llada | dream: decoding conventions of the family
    backbone: str = "llama"  # transformers model_type of the native module
    mask_token_id: int = -1
    eos_token_ids: List[int] = field(default_factory=list)
    slack_token_id: Optional[int] = None
    pad_token_id: Optional[int] = None
    logits_shift: bool = False  # Dream predicts token i from position i-1
    source: str = ""  # where the weights came from (path, preset, parent checkpoint)
    # How answers were laid out in training: "canvas" = padded to `canvas` tokens (one EOS, then EOS or
    # <slack> as canvas_pad_with); the lm-eval adapter pads continuations the same way by default.
    pad_to: str = "none"
    canvas: Optional[int] = None
    canvas_pad_with: str = "eos"
    # The family's own decoding settings (DecodeConfig fields), used where the user gives none (Dream's sampler).
    decode_defaults: dict = field(default_factory=dict)


def bidirectional_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, L] bool key mask -> [B, 1, L, L] bool 4D mask (every query sees every real key).

    A 2D mask would make transformers build a causal mask; a 4D one is used as given. Pad queries
    also see the real keys, so no row is fully masked (which would give NaN under SDPA).
    """
    B, L = attention_mask.shape
    return attention_mask[:, None, None, :].expand(B, 1, L, L)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Left padding must not shift positions: the first real token is position 0. [B, L] -> [B, L]."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)


@dataclass
class KVCache:
    """Keys and values of some canvas positions of some batch rows, in transformers' `DynamicCache`.

    cache: DynamicCache, per layer [Bm, H, Lc, d] (Bm = rows, or 2 * rows under classifier-free guidance:
    conditional rows first); rows [Bc] long: the decoder's batch rows held; positions [Lc] long: the canvas
    positions held, in cache order; tokens [Bc, Lc]: the canvas there when the cache was built (a change
    means stale keys); key_mask [Bm, Lc] bool: which held positions are real (not padding).
    Keys are stored after RoPE, so their order in the cache does not matter to bidirectional attention.
    """

    cache: object
    rows: torch.Tensor
    positions: torch.Tensor
    tokens: torch.Tensor
    key_mask: torch.Tensor
    query: Tuple[int, int] = (0, 0)  # canvas positions [q0, q1) recomputed at each cached step
    tag: object = None  # the decoder's note of what the cache was built for (e.g. the block)

    def keep_rows(self, keep: torch.Tensor) -> None:
        """Drop rows: keep [Bc] bool over `rows` (in place)."""
        idx = keep.nonzero().flatten()
        m = self.key_mask.shape[0] // self.rows.shape[0]  # 2 under classifier-free guidance
        n = self.rows.shape[0]
        midx = torch.cat([idx + k * n for k in range(m)])
        self.cache.batch_select_indices(midx)
        self.rows, self.tokens, self.key_mask = self.rows[idx], self.tokens[idx], self.key_mask[midx]


class MDLM:
    """A masked diffusion LM ready for decoding and training.

    Attributes: model (nn.Module), tokenizer, meta (ModelMeta), name, device, dtype.
    """

    def __init__(self, model, tokenizer, meta: ModelMeta, name: str = "", native: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self.name = name
        self.native = native  # native transformers backbone: takes 4D masks and position ids
        if native:
            _bidirectional(model)

    # --- special tokens ------------------------------------------------------------------
    @property
    def mask_id(self) -> int:
        return self.meta.mask_token_id

    @property
    def eos_ids(self) -> List[int]:
        return list(self.meta.eos_token_ids)

    @property
    def slack_id(self) -> Optional[int]:
        return self.meta.slack_token_id

    @property
    def pad_id(self) -> int:
        if self.meta.pad_token_id is not None:
            return self.meta.pad_token_id
        return self.eos_ids[0] if self.eos_ids else self.mask_id

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def max_positions(self) -> Optional[int]:
        cfg = self.model.config
        return getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "max_sequence_length", None)

    @property
    def vocab_size(self) -> int:
        w = self.model.get_output_embeddings().weight
        return int(getattr(w, "ds_shape", w.shape)[0])  # DeepSpeed ZeRO-3 partitions weights at load

    # --- forward -------------------------------------------------------------------------
    def logits(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
               keep_last: Optional[int] = None) -> torch.Tensor:
        """input_ids [B, L] long, attention_mask [B, L] bool (None = all real) -> logits [B, L, V].

        keep_last=n returns only the last n positions [B, n, V] (the generated region), skipping
        the LM head on the prompt.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        attention_mask = attention_mask.bool()
        shift = self.meta.logits_shift
        keep = 0 if keep_last is None else keep_last + int(shift)
        if self.native:
            out = self.model(
                input_ids=input_ids,
                attention_mask=self._mask(attention_mask, attention_mask.shape[1]),
                position_ids=position_ids_from_mask(attention_mask),
                use_cache=False,
                logits_to_keep=keep,
            )
            logits = out.logits
        else:
            kw = {}
            if "position_ids" in inspect.signature(self.model.forward).parameters:
                kw["position_ids"] = position_ids_from_mask(attention_mask)  # left padding keeps positions
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kw)
            logits = out.logits if hasattr(out, "logits") else out[0]
            if keep:
                logits = logits[:, -keep:]
        if shift:  # position i is predicted from the hidden state at i-1
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
            if keep:
                logits = logits[:, 1:]
        return logits

    # --- windowed and cached forwards (native backbones) ------------------------------------
    @property
    def supports_cache(self) -> bool:
        return self.native

    def _native(self, input_ids, mask4d, position_ids, keep: torch.Tensor, cache=None):
        """One call of the native module; `keep` [n] long: sequence indices whose logits are computed."""
        kw = {self._cache_kwarg(): cache} if cache is not None else {}
        out = self.model(input_ids=input_ids, attention_mask=mask4d, position_ids=position_ids,
                         use_cache=cache is not None, logits_to_keep=keep, **kw)
        return out.logits

    @property
    def attn(self) -> str:
        """The attn_implementation of the native module (sdpa | eager | flash_attention_2)."""
        model = getattr(self.model, "module", self.model)  # under DDP the trainer wraps the module
        return getattr(model.config, "_attn_implementation", None) or "sdpa"

    def _mask(self, keys: torch.Tensor, n_query: int):
        """keys [B, Lk] bool (real key positions; the queries are the last n_query) -> what the native module
        takes: None when nothing is padded (SDPA then picks its fused kernels; attention is bidirectional,
        see `_bidirectional`); under SDPA a [B, 1, Lq, Lk] bool mask; else the 2D key mask, from which
        transformers builds the bidirectional mask each implementation wants (eager adds a float mask;
        a bool 4D one would be added as 0/1)."""
        if bool(keys.all()):
            return None
        if self.attn != "sdpa":
            return keys.long()
        return keys[:, None, None, :].expand(keys.shape[0], 1, n_query, keys.shape[1])

    def _cache_kwarg(self) -> str:
        """transformers renamed `past_key_values` to `cache` (5.x); use whichever this version takes."""
        name = getattr(self, "_ckw", None)
        if name is None:
            params = inspect.signature(self.model.forward).parameters
            name = self._ckw = "cache" if "cache" in params else "past_key_values"
        return name

    def _hidden_index(self, lo: int, hi: int, offset: int, device) -> torch.Tensor:
        """Sequence indices (relative to `offset`) of the hidden states predicting canvas [lo, hi)."""
        s = int(self.meta.logits_shift)
        return (torch.arange(lo, hi, device=device) - s).clamp_(min=0) - offset

    def window_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lo: int, hi: int,
                      keep_positions: Optional[torch.Tensor] = None, guidance_rows: int = 0):
        """Full bidirectional forward; logits only for canvas positions [lo, hi): [B, hi - lo, V].

        keep_positions [Lc] long: also return a KVCache of those positions (native backbones only).
        guidance_rows: under classifier-free guidance the batch is [cond; uncond] and this is the number
        of decoder rows (the cache's `rows` are then set by the caller).
        """
        attention_mask = attention_mask.bool()
        if not self.native:
            if keep_positions is not None:
                raise RuntimeError("KV caching needs a native transformers backbone")
            return self.logits(input_ids, attention_mask)[:, lo:hi]
        device = input_ids.device
        keep = self._hidden_index(lo, hi, 0, device)
        mask = self._mask(attention_mask, attention_mask.shape[1])
        if keep_positions is None:
            return self._native(input_ids, mask, position_ids_from_mask(attention_mask), keep)
        from transformers import DynamicCache

        cache = DynamicCache()
        logits = self._native(input_ids, mask, position_ids_from_mask(attention_mask), keep, cache=cache)
        _select_positions(cache, keep_positions)
        kv = KVCache(cache=cache, rows=torch.empty(0, dtype=torch.long, device=device), positions=keep_positions,
                     tokens=input_ids[: guidance_rows or None][:, keep_positions],
                     key_mask=attention_mask[:, keep_positions])
        return logits, kv

    def cached_logits(self, kv: KVCache, input_ids: torch.Tensor, attention_mask: torch.Tensor, lo: int,
                      hi: int) -> torch.Tensor:
        """Recompute canvas positions kv.query = [q0, q1) attending to the cached keys and to themselves.

        input_ids, attention_mask: [Bm, T] the whole canvas of the cached rows. Returns logits [Bm, hi - lo, V]
        for canvas [lo, hi) (which must lie in the recomputed span). The cache is left as it was.
        """
        q0, q1 = kv.query
        attention_mask = attention_mask.bool()
        qmask = attention_mask[:, q0:q1]
        keys = torch.cat([kv.key_mask, qmask], 1)  # cache order: held positions, then the queries
        mask4d = self._mask(keys, qmask.shape[1])
        Lq = qmask.shape[1]
        pos = position_ids_from_mask(attention_mask)[:, q0:q1]
        keep = self._hidden_index(lo, hi, q0, input_ids.device)
        try:
            return self._native(input_ids[:, q0:q1], mask4d, pos, keep, cache=kv.cache)
        finally:
            kv.cache.crop(-Lq)  # drop this step's keys: the cache holds only `positions`

    # --- text ----------------------------------------------------------------------------
    def chat_prompt(self, messages) -> str:
        """Chat template applied, with the assistant turn opened. messages: [{"role", "content"}]."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(m["content"] for m in messages)

    def add_slack_token(self, token: str = "<slack>") -> int:
        """Ensure `token` exists (resizing embeddings if new); record and return its id."""
        vocab = self.tokenizer.get_vocab()
        if token not in vocab:
            self.tokenizer.add_special_tokens({"additional_special_tokens": [token]})
            new_size = len(self.tokenizer)
            if new_size > self.vocab_size:
                self.model.resize_token_embeddings(new_size)
        self.meta.slack_token_id = int(self.tokenizer.convert_tokens_to_ids(token))
        return self.meta.slack_token_id

    # --- saving --------------------------------------------------------------------------
    def save(self, out_dir) -> Path:
        """Write the mdlm-bench format: save_pretrained (safetensors) + tokenizer + mdlm_bench.json."""
        from mdlm_bench.io import atomic_write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        atomic_write_text(out / META_FILE, json.dumps(asdict(self.meta), indent=2) + "\n")
        return out


def _bidirectional(model) -> None:
    """Make a native decoder attend both ways when no mask is passed: transformers then builds a
    bidirectional mask (config.is_causal False; None when nothing is padded) and SDPA/flash run with
    is_causal False (the attention modules' flag)."""
    model.config.is_causal = False
    for mod in model.modules():
        if hasattr(mod, "is_causal") and hasattr(mod, "num_key_value_groups"):
            mod.is_causal = False


def _select_positions(cache, positions: torch.Tensor) -> None:
    """Keep only sequence `positions` [Lc] of every layer of a DynamicCache (a slice when contiguous)."""
    n = positions.numel()
    contiguous = n > 0 and int(positions[-1] - positions[0]) == n - 1
    for layer in cache.layers:
        if contiguous:
            a, b = int(positions[0]), int(positions[-1]) + 1
            layer.keys, layer.values = layer.keys[:, :, a:b], layer.values[:, :, a:b]
        else:
            layer.keys = layer.keys.index_select(2, positions)
            layer.values = layer.values.index_select(2, positions)


def merge_caches(a: KVCache, b: KVCache, rows: torch.Tensor) -> KVCache:
    """One KVCache holding a's and b's rows (same positions), ordered as `rows` [Bc] (a permutation of both)."""
    allrows = torch.cat([a.rows, b.rows])
    order = (allrows[None, :] == rows[:, None]).float().argmax(-1)  # rows[i] = allrows[order[i]]
    na, nb = a.rows.numel(), b.rows.numel()
    m = a.key_mask.shape[0] // max(na, 1) if na else b.key_mask.shape[0] // max(nb, 1)

    def mix(ta, tb):  # [m * n, ...] blocks of m copies, each n rows
        parts = [torch.cat([ta[k * na:(k + 1) * na], tb[k * nb:(k + 1) * nb]])[order] for k in range(m)]
        return torch.cat(parts)

    for la, lb in zip(a.cache.layers, b.cache.layers):
        la.keys, la.values = mix(la.keys, lb.keys), mix(la.values, lb.values)
    return KVCache(cache=a.cache, rows=rows, positions=a.positions,
                   tokens=torch.cat([a.tokens, b.tokens])[order], key_mask=mix(a.key_mask, b.key_mask),
                   query=a.query, tag=a.tag)


def quiet_transformers() -> None:
    """Our own progress bars and messages replace transformers' per-shard bars and notices."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
