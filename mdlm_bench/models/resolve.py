"""Find and load a checkpoint: bundled names, directories, dtypes and devices; `load_model` returns an MDLM."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, Union

from mdlm_bench.errors import UserError, did_you_mean
from mdlm_bench.models.mdlm import MDLM, quiet_transformers  # noqa: F401 (re-exported)
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
    name = str(path_or_name)
    from mdlm_bench.models.presets import PRESETS

    if name in PRESETS:
        raise UserError(f"model '{name}' is a random-init preset, not a checkpoint; write one with "
                        f"'mdlm-bench init-model DIR --preset {name}', then pass --model DIR")
    if _HUB_ID.fullmatch(name):
        return _from_hub(name)
    hint = did_you_mean(name, bundled) if bundled else ""
    raise UserError(
        f"model '{path_or_name}' is neither a directory nor a bundled model{hint}; "
        "pass a checkpoint directory or see 'mdlm-bench ls models'"
    )


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _from_hub(repo_id: str) -> Path:
    """A hub id: the local snapshot as transformers finds it (cache, or a download when online); offline or
    unreachable, one line on how to fetch it."""
    how = (f"download it with 'huggingface-cli download {repo_id} --local-dir DIR' on a machine with access, "
           f"then pass --model DIR")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=_offline()))
    except Exception as e:  # offline, not in the cache, no such repo, no network
        where = "offline (HF_HUB_OFFLINE) and not in the local hub cache" if _offline() else \
            f"could not be fetched from the hub ({type(e).__name__})"
        raise UserError(f"model '{repo_id}' is no directory here, and as a hub id it is {where}; {how}") from None


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
