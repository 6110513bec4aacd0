"""Decoding: the one sampler loop (`sampler.generate`) with its hook points, the rules it chooses from by
name (`rules`), block-wise KV caches (`cache`), the settings (`config.DecodeConfig`) and batched decoding
of many prompts (`prompts`).

Names are re-exported lazily, so `from mdlm_bench.decode import DecodeConfig` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DecodeConfig": "config", "config_for_max_tokens": "config",
    "generate": "sampler", "Hook": "sampler", "Commit": "sampler", "DecodeState": "sampler", "GenResult": "sampler",
    "REMASKING": "rules", "PARALLEL": "rules", "CACHES": "cache",
    "encode_prompt": "prompts", "generate_many": "prompts",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
