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

    def add_drops_and_claims(report: dict) -> None:  # shown in the report right after its top screen
        report["drops"] = drop_comparisons(run_dirs, labels, drops, drop_what)
        headline.update(report["headline"], drops=report["drops"])
        headline["claims"] = paper_claims(headline, focus, others, list(fr))
        report["claims"] = [line.replace("**", "") for line in claims_text(headline["claims"])]

    report = build_report(run_dirs, [out / label for label in names], report_out, labels=labels, comparisons=pairs,
                          names=what, question=question, console=console, extend=add_drops_and_claims)
    from mdlm_bench.io import atomic_write_text, write_json
    from mdlm_bench.report.render import print_headline, table_markdown
    from mdlm_bench.report.tables import headline_table

    write_json(report_out / "headline.json", headline)
    atomic_write_text(report_out / "headline.md", table_markdown(headline_table(report), "##")
                      + drops_markdown(headline))
    print_headline(report, Console())
    print_drops(headline, Console())
    n = headline["comparisons"][0]["n"] if headline["comparisons"] else 0
    console.print(f"{n} paired rows per comparison; per-task tables, sweeps and plots are in the report.")
    console.print(f"\nHTML report: [bold]{report_out / 'report.html'}[/bold]", soft_wrap=True)
    return 0


def drop_comparisons(run_dirs: List[Path], labels: List[str], drops: List[tuple], what: List[str],
                     metric: str = "exact_match") -> List[dict]:
    """Drop under shift, paired: for (a0, af, b0, bf) run indices, per row (task, uid, seed) present in all
    four runs, A's drop a0 - af against B's drop b0 - bf. Reported as B's drop minus A's drop (negative: B
    loses less) with its paired bootstrap CI and a paired permutation test; Holm / BH over these rows."""
    import numpy as np

    from mdlm_bench import stats
    from mdlm_bench.rundir import load_generations, row_key

    scores = []
    for d in run_dirs:
        scores.append({row_key(r): float(r["metrics"][metric]) for r in load_generations(d)
                       if metric in (r.get("metrics") or {})})
    out = []
    for (a0, af, b0, bf), desc in zip(drops, what):
        keys = sorted(set(scores[a0]) & set(scores[af]) & set(scores[b0]) & set(scores[bf]), key=repr)
        da = np.array([scores[a0][k] - scores[af][k] for k in keys])
        db = np.array([scores[b0][k] - scores[bf][k] for k in keys])
        ci = stats.paired_bootstrap_ci(da, db, n_resamples=5000)
        out.append({"comparison": desc, "a": labels[a0].split(" @")[0], "b": labels[b0].split(" @")[0],
                    "metric": metric, "n": len(keys), "a_drop": float(da.mean()), "b_drop": float(db.mean()),
                    "diff": ci.estimate, "ci_low": ci.low, "ci_high": ci.high, "ci_method": ci.method,
                    "test": "permutation", "p": stats.paired_permutation_p(da, db)})
    adj = stats.correct_pvalues([c["p"] for c in out])
    for c, holm, bh in zip(out, adj["holm"], adj["fdr_bh"]):
        c.update(p_holm=holm, p_bh=bh, significant=holm is not None and holm < 0.05)
    return out


def paper_claims(headline: dict, focus: str, others: List[str], fractions: List[float]) -> List[dict]:
    """The paper's two claims, decided from the headline's Holm-corrected comparisons.

    (a) the focus model beats every other model: at a level, B - A > 0 and significant against each;
    (b) the focus model is more robust: at a shifted level, its drop is smaller than each other model's
    drop, significantly. Each claim lists the levels where it holds and where the opposite holds.
    """
    def level(f):
        return f"{f * 100:g}%"

    comp = {c["comparison"]: c for c in headline["comparisons"] if c.get("metric", "exact_match") == "exact_match"}
    drops = {c["comparison"]: c for c in headline.get("drops", [])}
    out = []
    a_hold, a_opp, a_dir = [], [], []
    for f in fractions:
        cs = [comp[f"{m} → {focus}, both @{level(f)}"] for m in others]
        if all(c["diff"] > 0 for c in cs):
            a_dir.append(level(f))
        if all(c["significant"] and c["diff"] > 0 for c in cs):  # Holm over the headline rows
            a_hold.append(level(f))
        if any(c["significant"] and c["diff"] < 0 for c in cs):
            a_opp.append(level(f))
    out.append({"claim": f"{focus} beats {' and '.join(others)}", "holds_at": a_hold,
                "worse_than_some_at": a_opp, "favoured_at": a_dir, "levels": [level(f) for f in fractions]})
    b_hold, b_opp, b_dir = [], [], []
    shifted = [f for f in fractions if f > 0]
    for f in shifted:
        cs = [drops[f"drop @{level(f)}: {m} → {focus}"] for m in others]
        if all(c["diff"] < 0 for c in cs):
            b_dir.append(level(f))
        if all(c["significant"] and c["diff"] < 0 for c in cs):
            b_hold.append(level(f))
        if any(c["significant"] and c["diff"] > 0 for c in cs):
            b_opp.append(level(f))
    out.append({"claim": f"{focus} is more robust to shift (smaller drop) than {' and '.join(others)}",
                "holds_at": b_hold, "worse_than_some_at": b_opp, "favoured_at": b_dir,
                "levels": [level(f) for f in shifted]})
    for c in out:
        n, k = len(c["levels"]), len(c["holds_at"])
        c["verdict"] = "holds" if k == n else ("holds in part" if k else "does not hold")
    return out


def claims_text(claims: List[dict]) -> List[str]:
    lines = []
    for tag, c in zip("ab", claims):
        where = f" (at {', '.join(c['holds_at'])})" if c["holds_at"] and c["verdict"] != "holds" else ""
        extra = (f"; significantly the other way against at least one model at {', '.join(c['worse_than_some_at'])}"
                 if c["worse_than_some_at"] else "")
        unproven = [lv for lv in c.get("favoured_at", []) if lv not in c["holds_at"]]
        if unproven:
            extra += (f"; the point estimates favour it over every other model at {', '.join(unproven)}, "
                      "but not significantly there")
        lines.append(f"Claim ({tag}), {c['claim']}: **{c['verdict']}**{where} over levels "
                     f"{', '.join(c['levels'])} (Holm p < 0.05){extra}.")
    return lines


def drops_markdown(headline: dict) -> str:
    lines = ["", "Drop under shift (level 0 minus the shifted level; B − A < 0 means B loses less; Holm over "
             "these rows):", "", "| A → B | paired rows | A drop | B drop | B − A [95% CI] | p (Holm) | |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for c in headline.get("drops", []):
        lines.append(f"| {c['comparison']} | {c['n']} | {c['a_drop']:+.3f} | {c['b_drop']:+.3f} | "
                     f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] | {c['p_holm']:.3g} | "
                     f"{'significant' if c['significant'] else 'not significant'} |")
    lines += [""] + [f"- {x}" for x in claims_text(headline.get("claims", []))]
    return "\n".join(lines) + "\n"


def print_drops(headline: dict, console) -> None:
    from rich.table import Table

    from mdlm_bench.report.render import print_wide

    t = Table(title="drop under shift (level 0 minus shifted level), paired; B − A < 0: B loses less")
    t.add_column("A → B", justify="left")
    for col in ("A drop", "B drop", "B − A (95% CI)", "p Holm", "sig."):
        t.add_column(col, justify="right", no_wrap=True)
    for c in headline.get("drops", []):
        t.add_row(c["comparison"], f"{c['a_drop']:+.3f}", f"{c['b_drop']:+.3f}",
                  f"{c['diff']:+.3f} ({c['ci_low']:+.2f}, {c['ci_high']:+.2f})", f"{c['p_holm']:.2g}",
                  "[green]yes[/green]" if c["significant"] else "no")
    print_wide(console, t)
    for line in claims_text(headline.get("claims", [])):
        console.print(line.replace("**", ""), soft_wrap=True)
