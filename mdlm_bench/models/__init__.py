"""Model layer: `load_model` turns any supported checkpoint into an `MDLM`."""

from __future__ import annotations

from mdlm_bench.models.mdlm import MDLM, ModelMeta, bidirectional_mask
from mdlm_bench.models.presets import PRESETS, init_model
from mdlm_bench.models.resolve import (DTYPES, bundled_models, load_model, quiet_transformers, resolve_device,
                                       resolve_dtype, resolve_model_path)

__all__ = ["MDLM", "ModelMeta", "load_model", "init_model", "bundled_models", "resolve_model_path",
           "bidirectional_mask", "PRESETS", "DTYPES", "resolve_dtype", "resolve_device", "quiet_transformers"]
