"""The reference experiment: `mdlm-bench run` with no arguments.

Both bundled tiny models go through the synthetic tasks under a shift sweep; the paired report
compares CE with slack-CTC at every level, and each model with its own unperturbed outputs.
Settings live in reports/reference.yaml.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from mdlm_bench.config import from_dict, load_yaml
from mdlm_bench.resources import bundled_dir

JUDGE_HINT = ("judge-based parts skipped: pass --judge-base-url URL --judge-model NAME (or set "
              "MDLM_JUDGE_BASE_URL and MDLM_JUDGE_MODEL) to add win rates against each model's level 0")


@dataclass
class ReferenceConfig:
    models: Dict[str, str] = field(default_factory=lambda: {"tiny-ce": "tiny-ce", "tiny-slack-ctc": "tiny-slack-ctc"})
    tasks: List[str] = field(default_factory=lambda: ["synth"])
    limit: Optional[int] = 12
    perturbation: str = "reference-sweep"
    fractions: Optional[List[float]] = None  # default: the spec's sweep block
    seeds: Optional[List[int]] = None
    decoding: Dict[str, object] = field(default_factory=dict)
    batch_size: int = 32
    out: str = "runs/reference"
    report_out: str = "runs/reference/report"


def load_reference_config(path: Optional[str] = None) -> ReferenceConfig:
    p = Path(path) if path else bundled_dir("reports") / "reference.yaml"
    return from_dict(ReferenceConfig, load_yaml(p, "reference config") or {}, f"reference config '{p}'")


def judge_config_from(args):
    """JudgeConfig when an endpoint is configured by flags or environment, else None."""
    url = getattr(args, "judge_base_url", None) or os.environ.get("MDLM_JUDGE_BASE_URL")
    model = getattr(args, "judge_model", None) or os.environ.get("MDLM_JUDGE_MODEL")
    if not url or not model:
        return None
    from mdlm_bench.judge.config import JudgeConfig

    return JudgeConfig(base_url=url, model=model, api_key_env=getattr(args, "judge_api_key_env", None)
                       or "OPENAI_API_KEY")


def run_reference(args, console, ref: Optional[ReferenceConfig] = None) -> int:
    from rich.console import Console

    from mdlm_bench.perturb.spec import load_spec, sweep_defaults
    from mdlm_bench.report import build_report
    from mdlm_bench.run import RunConfig
    from mdlm_bench.sweep import SweepConfig, execute_sweep, level_dir

    ref = ref or load_reference_config(getattr(args, "reference_config", None))
    out = Path(getattr(args, "out", None) or ref.out).resolve()
    report_out = Path(getattr(args, "report_out", None) or ref.report_out).resolve()
    spec = load_spec(ref.perturbation)
    sweep_block = sweep_defaults(ref.perturbation)
    fractions = ref.fractions or sweep_block.get("fractions") or [0.0, 0.01, 0.05, 0.1]
    seeds = ref.seeds or sweep_block.get("seeds") or [0, 1, 2]
    judge = judge_config_from(args)
    console.print(f"[bold]reference experiment[/bold]: {', '.join(ref.models)} on {', '.join(ref.tasks)} "
                  f"(limit {ref.limit}), {spec.operator} at {', '.join(f'{f:g}' for f in fractions)}, "
                  f"seeds {seeds}", soft_wrap=True)
    sweeps: Dict[str, dict] = {}
    for label, model in ref.models.items():
        cfg = RunConfig(model=model, tasks=list(ref.tasks), limit=ref.limit, seeds=list(seeds),
                        decoding=dict(ref.decoding), perturbation=spec.to_dict(), batch_size=ref.batch_size)
        console.print(f"\n[bold]{label}[/bold]")
        sweeps[label] = execute_sweep(SweepConfig(run=cfg, fractions=list(fractions)), out / label,
                                      console=console, judge=judge)
    if judge is None:
        console.print(JUDGE_HINT)

    labels, run_dirs = [], []
    index: Dict[tuple, int] = {}
    fr = sweeps[next(iter(sweeps))]["fractions"]
    for f in fr:
        for label in ref.models:
            index[(label, f)] = len(run_dirs)
            run_dirs.append(level_dir(out / label, f))
            labels.append(f"{label} @{f * 100:g}%")
    names = list(ref.models)
    pairs, what = [], []
    if len(names) == 2:  # the models against each other at every level
        pairs += [(index[(names[0], f)], index[(names[1], f)]) for f in fr]
        what += [f"{names[0]} → {names[1]}, both @{f * 100:g}%" for f in fr]
    for label in names:  # each model against its own unperturbed outputs
        pairs += [(index[(label, 0.0)], index[(label, f)]) for f in fr if f > 0]
        what += [f"{label}: 0% → {f * 100:g}%" for f in fr if f > 0]
    both = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    question = (f"How do {both} compare on {', '.join(ref.tasks)} exact match, and how much does each "
                f"lose when {', '.join(f'{f * 100:g}%' for f in fr if f > 0)} of generated tokens are displaced?")
    report = build_report(run_dirs, [out / label for label in names], report_out, labels=labels, comparisons=pairs,
                          names=what, question=question, console=console)
    headline = report["headline"]
    from mdlm_bench.io import atomic_write_text, write_json
    from mdlm_bench.report.render import print_headline, table_markdown
    from mdlm_bench.report.tables import headline_table

    write_json(report_out / "headline.json", headline)
    atomic_write_text(report_out / "headline.md", table_markdown(headline_table(report), "##"))
    print_headline(report, Console())
    n = headline["comparisons"][0]["n"] if headline["comparisons"] else 0
    console.print(f"{n} paired rows per comparison; per-task tables, sweeps and plots are in the report.")
    console.print(f"\nHTML report: [bold]{report_out / 'report.html'}[/bold]", soft_wrap=True)
    return 0

