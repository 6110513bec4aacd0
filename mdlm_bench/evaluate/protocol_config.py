"""ProtocolConfig: the paper's judged protocol (models x benchmarks x shift levels x seeds) in one object,
shared by YAML (reports/paper.yaml), the CLI (`mdlm-bench run --config FILE`) and Python; importable
without torch. A YAML file is a protocol config when it has the keys `benchmarks` and `models`
(`is_protocol_config`); any other mapping stays a RunConfig.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from mdlm_bench.config import PosInt, from_dict
from mdlm_bench.errors import UserError, did_you_mean

# The paper's decoding for the judged benchmarks (LLaDA-8B-Instruct's chat settings): 1,024 new tokens,
# semi-autoregressive blocks of 32, one token per step.
PAPER_DECODING = {"gen_length": 1024, "block_length": 32, "steps": 1024}
BASELINES = ("original", "published", "none")


@dataclass
class BenchmarkSpec:
    """One judged benchmark: the judge protocol (a name in judge.protocols.PROTOCOLS), the run task whose
    rows it judges (default: the protocol's own task) and its baseline: `original` = the original model's
    unperturbed run (pairwise, as the paper), `published` = the benchmark's published answers, `none` =
    single-answer grading."""

    judge: str
    task: Optional[str] = None
    baseline: str = "none"
    options: Dict[str, Any] = field(default_factory=dict)  # JudgeOptions fields (style_control, ci_level, ...)


@dataclass
class JudgeEndpoint:
    """The judge endpoint, by environment: the config names variables, never the values."""

    base_url_env: str = "MDLM_JUDGE_BASE_URL"
    model_env: str = "MDLM_JUDGE_MODEL"
    api_key_env: str = "OPENAI_API_KEY"  # 'none' for keyless local endpoints
    concurrency: PosInt = 8

    def resolve(self):
        """JudgeConfig from the environment, or a UserError naming the variable to set."""
        from mdlm_bench.judge.config import JudgeConfig

        url, model = os.environ.get(self.base_url_env), os.environ.get(self.model_env)
        for var, val in ((self.base_url_env, url), (self.model_env, model)):
            if not val:
                raise UserError(f"the protocol's judge needs ${var}; export it (judge endpoint and model by "
                                f"environment, see the config's `judge` block)")
        return JudgeConfig(base_url=url, model=model, api_key_env=self.api_key_env, concurrency=self.concurrency)


@dataclass
class ProtocolConfig:
    models: Dict[str, str]  # label -> checkpoint directory, bundled name or hub id
    original: str  # label of the original model (the pairwise baseline)
    focus: str  # label of the model under test, compared with every other model
    benchmarks: Dict[str, Dict[str, Any]]  # label -> BenchmarkSpec fields
    levels: List[float] = field(default_factory=lambda: [0.0, 0.01])  # displaced fraction of generated tokens
    seeds: List[int] = field(default_factory=lambda: [0])
    perturbation: str = "shift"  # spec name or YAML; its fraction is set per level
    decoding: Dict[str, Any] = field(default_factory=lambda: dict(PAPER_DECODING))
    limit: Optional[int] = None  # prompts per benchmark (None: all)
    chat: bool = True
    batch_size: PosInt = 16
    dtype: str = "auto"
    device: str = "auto"
    bench_dir: Optional[str] = None  # default $MDLM_BENCH_DATA
    judge: Dict[str, Any] = field(default_factory=dict)  # JudgeEndpoint fields
    out: str = "runs/paper"
    report_out: Optional[str] = None  # default OUT/report
    trust_remote_code: bool = False

    def validate(self, where: str = "protocol config") -> "ProtocolConfig":
        from mdlm_bench.judge.protocols import PROTOCOLS

        if len(self.models) < 2:
            raise UserError(f"{where}: `models` needs at least two labels (the original and the focus model)")
        for role in ("original", "focus"):
            name = getattr(self, role)
            if name not in self.models:
                raise UserError(f"{where}: {role} '{name}' is not a model label{did_you_mean(name, self.models)}")
        if self.original == self.focus:
            raise UserError(f"{where}: focus and original are both '{self.focus}'; name two different models")
        if not self.benchmarks:
            raise UserError(f"{where}: `benchmarks` is empty; list e.g. mt-bench: {{judge: mt-bench}}")
        for label in self.benchmarks:
            spec = self.benchmark(label, where)
            if spec.judge not in PROTOCOLS:
                raise UserError(f"{where}: benchmark '{label}': unknown judge protocol '{spec.judge}'"
                                f"{did_you_mean(spec.judge, PROTOCOLS)}; see 'mdlm-bench ls'")
            if spec.baseline not in BASELINES:
                raise UserError(f"{where}: benchmark '{label}': baseline '{spec.baseline}' is not one of "
                                f"{', '.join(BASELINES)}")
            paired = PROTOCOLS.get(spec.judge).needs_baseline
            if paired and spec.baseline == "none":
                raise UserError(f"{where}: benchmark '{label}': {spec.judge} compares with a baseline; set baseline: "
                                "original (the original model's unperturbed run) or published")
            if not paired and spec.baseline != "none":
                raise UserError(f"{where}: benchmark '{label}': {spec.judge} grades single answers; drop its "
                                f"baseline ('{spec.baseline}')")
        if not self.levels or any(not 0.0 <= f <= 1.0 for f in self.levels):
            raise UserError(f"{where}: `levels` must be fractions in [0, 1], got {self.levels}")
        self.levels = sorted(set(float(f) for f in self.levels) | {0.0})  # every drop is against level 0
        if not self.seeds:
            raise UserError(f"{where}: `seeds` is empty; give e.g. [0]")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"{where}: `limit` must be at least 1 (or null for every prompt), got {self.limit}")
        self.endpoint(where)
        from mdlm_bench.decode.config import DecodeConfig

        from_dict(DecodeConfig, self.decoding, f"{where} decoding").validate()
        return self

    def benchmark(self, label: str, where: str = "protocol config") -> BenchmarkSpec:
        return from_dict(BenchmarkSpec, self.benchmarks[label], f"{where} benchmark '{label}'")

    def endpoint(self, where: str = "protocol config") -> JudgeEndpoint:
        return from_dict(JudgeEndpoint, self.judge, f"{where} judge")

    def others(self) -> List[str]:
        return [m for m in self.models if m != self.focus]

    def out_dir(self) -> Path:
        return Path(self.out).resolve()

    def report_dir(self) -> Path:
        return Path(self.report_out).resolve() if self.report_out else self.out_dir() / "report"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def is_protocol_config(data: Any) -> bool:
    return isinstance(data, dict) and "benchmarks" in data and "models" in data


def load_protocol(path: str) -> ProtocolConfig:
    from mdlm_bench.config import load_yaml

    data = load_yaml(path, "protocol config")
    if not is_protocol_config(data):
        raise UserError(f"'{path}' is not a protocol config (it needs `models` and `benchmarks`)")
    where = f"protocol config '{path}'"
    return from_dict(ProtocolConfig, data, where).validate(where)
