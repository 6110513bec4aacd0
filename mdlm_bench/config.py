"""Config dataclass helpers shared by YAML, CLI and Python: strict loading, digests, provenance."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Annotated, Any, Dict, Mapping, Type, TypeVar

from mdlm_bench.errors import UserError

C = TypeVar("C")


class Bound:
    """Field bounds for `from_dict`, e.g. `warmup_steps: Annotated[int, Bound(ge=0)]` (kept free of pydantic
    so importing a config class stays cheap)."""

    def __init__(self, **limits: float):
        self.limits = limits


NonNegInt = Annotated[int, Bound(ge=0)]
PosInt = Annotated[int, Bound(ge=1)]
NonNegFloat = Annotated[float, Bound(ge=0)]


def from_dict(cls: Type[C], data: Mapping[str, Any], where: str = "config") -> C:
    """Build dataclass `cls` from a mapping, checking every value against the field's type (pydantic, strict:
    no '16' for an int, no `yes` for a float, no NaN or infinity) and the field's bounds (annotated_types
    metadata such as Ge(0)). Unknown keys and wrong types give one UserError naming `where`, the key and the
    expected type."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(map(str, data)) - names)
    if extra:
        raise UserError(
            f"{where}: unknown key(s) {', '.join(extra)}; valid keys are {', '.join(sorted(names))}"
        )
    from pydantic import ValidationError

    try:
        checked = _checker(cls).model_validate(dict(data))
    except ValidationError as e:
        raise UserError(f"{where}: {_describe(e)}") from None
    try:
        return cls(**{k: getattr(checked, k) for k in data})
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: {e}") from None


_CHECKERS: Dict[type, Any] = {}


def _checker(cls: type):
    """A strict pydantic model with the dataclass's fields (cached per class)."""
    if cls not in _CHECKERS:
        import typing

        from pydantic import ConfigDict, Field, create_model

        hints = typing.get_type_hints(cls, include_extras=True)
        for name, hint in hints.items():
            bounds = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Bound)]
            if bounds:
                hints[name] = Annotated[hint.__origin__, Field(**bounds[0].limits)]
        fields: Dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                fields[f.name] = (hints[f.name], f.default)
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                fields[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
            else:
                fields[f.name] = (hints[f.name], ...)
        _CHECKERS[cls] = create_model(f"{cls.__name__}Check", __config__=ConfigDict(
            extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True), **fields)
    return _CHECKERS[cls]


_EXPECT = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
           "string_type": "a string", "list_type": "a list", "dict_type": "a mapping", "finite_number":
           "a finite number", "missing": "a value (the key is required)", "none_required": "null"}


def _describe(e) -> str:
    """One line for a pydantic ValidationError: the first bad key, what it should be, what it was."""
    errs = e.errors(include_url=False)
    first = errs[0]
    loc = ".".join(str(x) for x in first["loc"]) or "value"
    what = _EXPECT.get(first["type"]) or first["msg"][0].lower() + first["msg"][1:]
    if first["type"] in _EXPECT:
        what = f"expected {what}"
    got = "" if first["type"] == "missing" else f", got {first.get('input')!r}"[:80]
    more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
    return f"key '{loc}': {what}{got}{more}; fix that value"


def to_dict(obj: Any) -> Dict[str, Any]:
    return dataclasses.asdict(obj)


def digest(obj: Any, n: int = 12) -> str:
    """Stable short hex digest of a JSON-able object (dataclasses allowed)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def load_yaml(path: str | os.PathLike, what: str = "file") -> Any:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} '{path}' does not exist; check the path")
    try:
        with open(p, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{what} '{path}' is not valid YAML{loc}; fix the syntax") from None


def package_versions() -> Dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for name in ("mdlm-bench", "torch", "transformers", "accelerate", "lm-eval", "openai", "scipy",
                 "statsmodels", "numpy", "datasets", "peft"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine_info() -> Dict[str, Any]:
    info: Dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # provenance must never break a run
        pass
    return info


def provenance() -> Dict[str, Any]:
    return {"versions": package_versions(), "machine": machine_info()}
