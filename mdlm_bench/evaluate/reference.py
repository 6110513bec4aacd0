"""The reference experiment: `mdlm-bench run` with no arguments.

The paper's protocol on the bundled tiny models: the original (tiny-base), its matched CE fine-tune
(tiny-ce) and its slack-CTC fine-tune (tiny-slack-ctc) go through the synthetic tasks under a shift sweep.
The paired report compares the `focus` model (slack-CTC) with each other model at every level, each model
with its own unperturbed outputs, and the focus model's drop under shift with each other model's drop;
Holm runs over all of them. The two claims of the paper are then checked from those numbers.
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
    models: Dict[str, str] = field(default_factory=lambda: {"tiny-base": "tiny-base", "tiny-ce": "tiny-ce",
                                                            "tiny-slack-ctc": "tiny-slack-ctc"})
    focus: Optional[str] = None  # the model under test (default: the last one); compared with every other
    tasks: List[str] = field(default_factory=lambda: ["synth"])
    limit: Optional[int] = 12
    perturbation: str = "reference-sweep"
    fractions: Optional[List[float]] = None  # default: the spec's sweep block
    seeds: Optional[List[int]] = None
    decoding: Dict[str, object] = field(default_factory=dict)
    batch_size: int = 32
    out: str = "runs/reference"
    report_out: str = "runs/reference/report"
    note: Optional[str] = None  # one line printed first (e.g. that a larger committed reference exists)


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
    from mdlm_bench.report import build_report, print_headline, write_headline
    from mdlm_bench.report.claims import claims_text, drop_comparisons, paper_claims
    from mdlm_bench.report.verdicts import claim_verdicts
    from mdlm_bench.evaluate.config import RunConfig
    from mdlm_bench.evaluate.sweep import SweepConfig, execute_sweep, level_dir

    import time
    from dataclasses import asdict

    from mdlm_bench.config import digest

    started = time.time()
    config_file = getattr(args, "reference_config", None)
    ref = ref or load_reference_config(config_file)
    out = Path(getattr(args, "out", None) or ref.out).resolve()
    report_out = Path(getattr(args, "report_out", None) or ref.report_out).resolve()
    spec = load_spec(ref.perturbation)
    sweep_block = sweep_defaults(ref.perturbation)
    fractions = ref.fractions or sweep_block.get("fractions") or [0.0, 0.01, 0.05, 0.1]
    seeds = ref.seeds or sweep_block.get("seeds") or [0, 1, 2]
    judge = judge_config_from(args)
    if ref.note:
        console.print(ref.note, soft_wrap=True)
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
    focus = ref.focus or names[-1]
    if focus not in names:
        from mdlm_bench.errors import unknown

        raise unknown("focus model", focus, names)
    others = [m for m in names if m != focus]
    pairs, what = [], []
    for m in others:  # the focus model against each other model at every level
        pairs += [(index[(m, f)], index[(focus, f)]) for f in fr]
        what += [f"{m} → {focus}, both @{f * 100:g}%" for f in fr]
    for label in names:  # each model against its own unperturbed outputs
        pairs += [(index[(label, 0.0)], index[(label, f)]) for f in fr if f > 0]
        what += [f"{label}: 0% → {f * 100:g}%" for f in fr if f > 0]
    drops = [(index[(m, 0.0)], index[(m, f)], index[(focus, 0.0)], index[(focus, f)]) for m in others
             for f in fr if f > 0]
    drop_what = [f"drop @{f * 100:g}%: {m} → {focus}" for m in others for f in fr if f > 0]
    both = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    question = (f"How do {both} compare on {', '.join(ref.tasks)} exact match, and how much does each "
                f"lose when {', '.join(f'{f * 100:g}%' for f in fr if f > 0)} of generated tokens are displaced?")
    headline: dict = {}

    produced_by = {"command": "mdlm-bench run" + (f" --reference-config {config_file}" if config_file else ""),
                   "reference_config": asdict(ref), "config_digest": digest(asdict(ref)),
                   "fractions": list(fractions), "seeds": list(seeds)}

    def add_drops_and_claims(report: dict) -> None:  # shown in the report right after its top screen
        produced_by.update(decode_and_compare_seconds=round(time.time() - started, 1), report_digest=report["digest"],
                           provenance=report["provenance"], created=report["created"])
        report["reference"] = produced_by
        res = drop_comparisons(run_dirs, labels, drops, drop_what)
        report["drops"], report["drops_family"] = res["rows"], res["family"]
        headline.update(report["headline"], drops=report["drops"], drops_family=report["drops_family"],
                        produced_by=produced_by)
        headline["claims"] = paper_claims(headline, focus, others, list(fr))
        report["claims"] = [line.replace("**", "") for line in claims_text(headline["claims"])]
        report["verdicts"] = claim_verdicts(headline["claims"], report, focus, others)  # the first screen's boxes

    report = build_report(run_dirs, [out / label for label in names], report_out, labels=labels, comparisons=pairs,
                          names=what, question=question, console=console, extend=add_drops_and_claims)
    produced_by["seconds"] = round(time.time() - started, 1)  # this invocation (rows already decoded are reused)
    write_headline(report_out, report, headline)
    print_headline(report, Console(), headline)
    c0 = headline["comparisons"][0] if headline["comparisons"] else {}
    console.print(f"{c0.get('n', 0)} prompts per comparison ({c0.get('rows_a', 0)} and {c0.get('rows_b', 0)} rows in "
                  "the first; seeds are averaged within a prompt); per-task tables, sweeps and plots are in the "
                  "report.", soft_wrap=True)
    console.print(f"\nHTML report: [bold]{report_out / 'report.html'}[/bold]", soft_wrap=True)
    return 0
