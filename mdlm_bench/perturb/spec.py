"""PerturbSpec: the YAML-described perturbation (operator, fraction, direction, distance, schedule, seed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

from mdlm_bench.config import digest, from_dict, load_yaml
from mdlm_bench.errors import UserError, did_you_mean

DIRECTIONS = ("left", "right", "random")
SCHEDULES = ("every_step", "window", "once", "post_hoc")
ON_SLACK = ("spend", "carry")


@dataclass
class PerturbSpec:
    """What to displace during decoding.

    operator   shift | swap | span_shift | replace | remask (see `mdlm-bench ls perturbations`)
    fraction   share of the generated tokens (gen_length) to perturb per row, in [0, 1]
    direction  left | right | random (shift, swap, span_shift)
    distance   positions to move (shift); swap/span_shift always use 1
    schedule   every_step | window | once | post_hoc
    window     [start, end] of decoding progress (share of tokens committed) for `window`
    at_step    the step for `once`
    span       longest run moved by span_shift
    seed       selection seed (combined with each row's identity)
    on_slack   spend | carry: what an operation selected on a <slack> the sampler commits does. `spend`
               (default): it is used up with no effect, as a move of EOS inside EOS padding is, so a
               slack-padded and an EOS-padded model see the same share of content moved. `carry`: it
               passes to the row's next committed non-slack token (moves concentrate on content).
    select     all | content: which commits an operation may land on. `all` (default): any commit, a move
               of padding counting as done and changing nothing. `content`: content commits only
               (perturb.content: not slack, not an end token, nothing past a committed end token), so
               models with different padding get the same number of content moves.
    """

    operator: str = "shift"
    fraction: float = 0.01
    direction: str = "random"
    distance: int = 1
    schedule: str = "every_step"
    window: List[float] = field(default_factory=lambda: [0.0, 1.0])
    at_step: int = 0
    span: int = 3
    seed: int = 0
    on_slack: str = "spend"
    select: str = "all"
    name: Optional[str] = None

    def validate(self) -> "PerturbSpec":
        from mdlm_bench.perturb.operators import OPERATORS

        OPERATORS.get(self.operator)
        if not isinstance(self.fraction, (int, float)) or not 0.0 <= float(self.fraction) <= 1.0:
            raise UserError(f"perturbation fraction must lie in [0, 1], got {self.fraction}; e.g. 0.01 for 1%")
        if self.direction not in DIRECTIONS:
            raise UserError(f"unknown direction '{self.direction}'{did_you_mean(self.direction, DIRECTIONS)}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule '{self.schedule}'{did_you_mean(self.schedule, SCHEDULES)}")
        w = self.window
        if (not isinstance(w, (list, tuple)) or len(w) != 2 or not all(isinstance(v, (int, float)) for v in w)
                or not 0.0 <= w[0] < w[1] <= 1.0):
            raise UserError(f"schedule window must be [start, end] with 0 <= start < end <= 1, got {w}")
        if self.on_slack not in ON_SLACK:
            raise UserError(f"unknown on_slack '{self.on_slack}'{did_you_mean(self.on_slack, ON_SLACK)}; "
                            "use spend or carry")
        from mdlm_bench.perturb.content import SELECT

        if self.select not in SELECT:
            raise UserError(f"unknown select '{self.select}'{did_you_mean(self.select, SELECT)}; use all or content")
        if int(self.distance) < 1:
            raise UserError(f"distance must be >= 1, got {self.distance}")
        if int(self.span) < 1:
            raise UserError(f"span must be >= 1, got {self.span}")
        if int(self.at_step) < 0:
            raise UserError(f"at_step must be >= 0, got {self.at_step}")
        self.fraction = float(self.fraction)
        self.window = [float(w[0]), float(w[1])]
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["select"] == "all":  # the default is left out, so runs made before `select` existed keep their digest
            del d["select"]
        return d

    def with_fraction(self, fraction: float) -> "PerturbSpec":
        d = self.to_dict()
        d["fraction"] = fraction
        return PerturbSpec(**d).validate()

    @property
    def digest(self) -> str:
        return digest(self.to_dict())


def _spec_path(path_or_name: str) -> Path:
    """A YAML path, or the name of a bundled spec in perturbations/ (with or without .yaml)."""
    from mdlm_bench.resources import bundled_dir

    p = Path(path_or_name)
    if p.is_file():
        return p
    bundled = bundled_dir("perturbations")
    cand = bundled / (p.name if p.suffix in (".yaml", ".yml") else p.name + ".yaml")
    if p.parent in (Path("."), Path("perturbations")) and cand.is_file():
        return cand
    names = sorted(x.stem for x in bundled.glob("*.yaml"))
    raise UserError(f"perturbation spec '{path_or_name}' not found{did_you_mean(p.stem, names)}; "
                    "pass a YAML file or a bundled spec name")


def load_spec(path_or_name: str) -> PerturbSpec:
    p = _spec_path(path_or_name)
    data = load_yaml(p, "perturbation spec")
    if not isinstance(data, dict):
        raise UserError(f"perturbation spec '{p}' must be a YAML mapping (operator: shift, fraction: 0.01, ...)")
    data = {k: v for k, v in data.items() if k != "sweep"}
    spec = from_dict(PerturbSpec, data, f"perturbation spec '{p}'")
    if spec.name is None:
        spec.name = p.stem
    return spec.validate()


@dataclass
class SweepBlock:
    """The optional `sweep:` block of a spec file."""

    fractions: Optional[List[float]] = None
    seeds: Optional[List[int]] = None


def sweep_defaults(path_or_name: str) -> dict:
    """The optional `sweep:` block of a spec file (fractions, seeds), type-checked."""
    p = _spec_path(path_or_name)
    data = load_yaml(p, "perturbation spec")
    sweep = data.get("sweep") if isinstance(data, dict) else None
    if sweep is None:
        return {}
    block = from_dict(SweepBlock, sweep, f"perturbation spec '{p}' sweep")
    return {k: v for k, v in asdict(block).items() if v is not None}
