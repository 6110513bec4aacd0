"""Find and load a checkpoint: bundled names, directories, dtypes and devices; `load_model` returns an MDLM."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Union

from mdlm_bench.errors import UserError, did_you_mean
from mdlm_bench.models.mdlm import MDLM
from mdlm_bench.resources import BUNDLED_MODELS

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "auto": "auto"}


def bundled_models() -> Dict[str, Path]:
    """Name -> directory of the checkpoints shipped inside the package."""
    if not BUNDLED_MODELS.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_MODELS.iterdir()) if (p / "config.json").is_file()}


def resolve_model_path(path_or_name: Union[str, Path]) -> Path:
    bundled = bundled_models()
    if str(path_or_name) in bundled:
        return bundled[str(path_or_name)]
    p = Path(path_or_name).expanduser()
    if p.is_dir():
        return p.resolve()
    if p.exists():
        raise UserError(f"model '{path_or_name}' is a file; pass the checkpoint directory that holds config.json")
    hint = did_you_mean(str(path_or_name), bundled) if bundled else ""
    raise UserError(
        f"model '{path_or_name}' is neither a directory nor a bundled model{hint}; "
        "pass a checkpoint directory or see 'mdlm-bench ls models'"
    )


def resolve_dtype(dtype, device: str):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    name = DTYPES.get(str(dtype).lower())
    if name is None:
        raise UserError(f"unknown dtype '{dtype}'{did_you_mean(str(dtype), DTYPES)}")
    if name == "auto":
        name = "bfloat16" if str(device).startswith("cuda") else "float32"
    return getattr(torch, name)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{device}' requested but CUDA is not available here; pass --device cpu")
    return device


def quiet_transformers() -> None:
    """Our own progress bars and messages replace transformers' per-shard bars and notices."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_model(path_or_name, dtype="float32", device: str = "cpu", trust_remote_code: bool = False,
               allow_pickle: bool = False, attn: str = "sdpa") -> MDLM:
    """Load a checkpoint (own format, LLaDA layout, Dream layout, or remote code if allowed)."""
    from mdlm_bench.models.loaders import LoadOptions, load_path

    quiet_transformers()
    device = resolve_device(device)
    opts = LoadOptions(dtype=resolve_dtype(dtype, device), device=device,
                       trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, attn=attn)
    path = resolve_model_path(path_or_name)
    m = load_path(path, opts)
    m.name = str(path_or_name) if str(path_or_name) in bundled_models() else str(path)
    return m
