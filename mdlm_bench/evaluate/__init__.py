"""Evaluation: runs (`run.execute` over `config.RunConfig`), their rows (`rows`), the task catalogue
(`tasks`), sweeps over perturbation levels (`sweep`), the reference experiment (`reference`) and the
lm-eval model and its log-likelihood estimator (`lm_eval`, `lm_eval_model`, `likelihood`).

Names are re-exported lazily, so `from mdlm_bench.evaluate import RunConfig` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "RunConfig": "config", "OUTPUT_FIELDS": "config",
    "execute": "run", "summarize": "run",
    "RowStore": "rows", "RowDecoder": "rows", "row_seed": "rows",
    "SweepConfig": "sweep", "execute_sweep": "sweep",
    "resolve": "tasks", "TaskInfo": "tasks",
    "run_reference": "reference", "ReferenceConfig": "reference",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
