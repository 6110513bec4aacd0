"""The trainer's resumable state without pickle: tensors in safetensors files, everything else in JSON.

    STATE/trainer_state.json    {"format": FORMAT, "step", "digest", "recipe", "optimizer": {param_groups,
                                 per-parameter scalars}, "scheduler": LambdaLR state}
    STATE/model.safetensors     the trained weights (LoRA wrappers included)
    STATE/optimizer.safetensors AdamW moments, "state.<param index>.<name>"
    STATE/rng-<rank>.safetensors / rng-<rank>.json   torch CPU/CUDA generators; Python and NumPy generators

Loading reads only these files, so a pickle planted in STATE/ is never opened. Sharded runs (FSDP,
DeepSpeed) keep accelerate's own (pickled) format, which `--resume` loads only with `--allow-pickle`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Dict

from mdlm_bench.errors import UserError
from mdlm_bench.io import read_json, write_json

FORMAT = "mdlm-bench-state-v1"
TRAINER_STATE = "trainer_state.json"


def is_sharded(accelerator) -> bool:
    return accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")


def state_format(state_dir: Path) -> str:
    """FORMAT for the trainer's own state, 'accelerate' for a pickled accelerate state."""
    saved = read_json(Path(state_dir) / TRAINER_STATE)
    if not isinstance(saved, dict):
        raise UserError(f"'{state_dir / TRAINER_STATE}' is not a JSON object; restore it or start a new --output")
    return str(saved.get("format", "accelerate"))


def check_loadable(state_dir: Path, allow_pickle: bool) -> None:
    """Refuse (before anything is written) a state that can only be loaded by unpickling."""
    fmt = state_format(state_dir)
    if fmt == FORMAT:
        return
    if fmt != "accelerate":
        raise UserError(f"'{state_dir}' holds training state in an unknown format '{fmt}'; resume it with the "
                        "mdlm-bench version that wrote it")
    if not allow_pickle:
        raise UserError(f"'{state_dir}' holds pickled accelerate state (loading it can run code); pass "
                        "--allow-pickle only if you trust where it came from")


def _flatten_optimizer(sd: Dict[str, Any]):
    import torch

    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(tensors: Dict[str, Any], meta: Dict[str, Any]) -> Dict[str, Any]:
    state: Dict[int, Dict[str, Any]] = {}
    for key, t in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = t
    for idx, extra in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(extra)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def _rng_state():
    import numpy as np
    import torch

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return tensors, {"python": [version, list(mt), gauss],
                     "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _set_rng_state(tensors: Dict[str, Any], meta: Dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("torch_cuda_")),
                                       key=lambda k: int(k.rsplit("_", 1)[1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])
    version, mt, gauss = meta["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def save(accelerator, state_dir: Path, model, optimizer, scheduler, info: Dict[str, Any]) -> None:
    """Write the state into `state_dir` (a fresh directory); collective: every process calls it."""
    from safetensors.torch import save_file, save_model

    state_dir = Path(state_dir)
    if is_sharded(accelerator):  # sharded optimiser states: accelerate's gathering format (pickled)
        accelerator.save_state(str(state_dir))
        if accelerator.is_main_process:
            write_json(state_dir / TRAINER_STATE, {**info, "format": "accelerate"})
        return
    rank = accelerator.process_index
    state_dir.mkdir(parents=True, exist_ok=True)
    tensors, meta = _rng_state()
    save_file(tensors, str(state_dir / f"rng-{rank}.safetensors"))
    (state_dir / f"rng-{rank}.json").write_text(json.dumps(meta))
    if accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), str(state_dir / "model.safetensors"))
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        save_file(opt_tensors, str(state_dir / "optimizer.safetensors"))
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        write_json(state_dir / TRAINER_STATE, {**info, "format": FORMAT, "optimizer": opt_meta,
                                               "scheduler": sched})
    accelerator.wait_for_everyone()


def load(accelerator, state_dir: Path, model, optimizer, scheduler, allow_pickle: bool) -> None:
    """Restore what `save` wrote (or, with allow_pickle, an accelerate state)."""
    from safetensors.torch import load_file, load_model

    state_dir = Path(state_dir)
    check_loadable(state_dir, allow_pickle)
    if state_format(state_dir) != FORMAT:
        accelerator.load_state(str(state_dir))
        return
    saved = read_json(state_dir / TRAINER_STATE)
    load_model(accelerator.unwrap_model(model), str(state_dir / "model.safetensors"), strict=True,
               device=str(accelerator.device))
    opt = _unflatten_optimizer(load_file(str(state_dir / "optimizer.safetensors")), saved["optimizer"])
    optimizer.load_state_dict(opt)
    scheduler.load_state_dict({**saved["scheduler"], "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
    rank = accelerator.process_index
    rng = state_dir / f"rng-{rank}.safetensors"
    if rng.is_file():  # a run resumed on more processes than it was saved with starts their generators afresh
        _set_rng_state(load_file(str(rng)), json.loads((state_dir / f"rng-{rank}.json").read_text()))
