"""The judged protocol's report: per benchmark the focus model against every other model at every level,
the drop under shift per model, and the paper's two claims decided across benchmarks (pure functions of
per-prompt scores; `evaluate.protocol` reads those from the judgment summaries).

    scores[bench][(model, level)] = {uid: score}   # a prompt's judged score, averaged over seeds

The unit is the prompt: two (model, level) cells are paired on the prompts both have; the difference of
means gets a paired bootstrap CI (BCa) and a paired permutation test (signs flipped per prompt).
Claim (a), the focus model scores higher than each other model, is tested at every level on every
benchmark; claim (b), the focus model loses less under shift, at every shifted level on every benchmark;
Holm runs over each claim's family (benchmarks x other models x levels), and the report states its size.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

Cell = Tuple[str, float]
ALPHA = 0.05


def _lv(f: float) -> str:
    return f"{f * 100:g}%"


def _paired(x: Dict[str, float], y: Dict[str, float]) -> Tuple[list, list]:
    keys = sorted(set(x) & set(y))
    return [x[k] for k in keys], [y[k] for k in keys]


def _test(a: List[float], b: List[float]) -> dict:
    """mean(b - a) over prompts with its paired CI and permutation p."""
    import numpy as np

    from mdlm_bench import stats

    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    if not a_.size:
        return {"n": 0, "diff": None, "ci_low": None, "ci_high": None, "p": None, "ci_method": "none"}
    ci = stats.paired_bootstrap_ci(a_, b_, n_resamples=5000)
    return {"n": int(a_.size), "diff": ci.estimate, "ci_low": ci.low, "ci_high": ci.high, "ci_method": ci.method,
            "p": stats.paired_permutation_p(a_, b_, n_resamples=10000)}


def benchmark_block(label: str, scores: Dict[Cell, Dict[str, float]], models: List[str], levels: List[float],
                    focus: str, info: dict) -> dict:
    others = [m for m in models if m != focus]
    cells = []
    for m in models:
        for f in levels:
            s = scores.get((m, f), {})
            cells.append({"model": m, "level": f, "n_prompts": len(s),
                          "mean": sum(s.values()) / len(s) if s else None,
                          **{k: v for k, v in (info.get("summaries", {}).get((m, f)) or {}).items()}})
    comps = []
    for m in others:
        for f in levels:
            a, b = _paired(scores.get((m, f), {}), scores.get((focus, f), {}))
            comps.append({"comparison": f"{m} → {focus}, both @{_lv(f)}", "a": m, "b": focus, "level": f,
                          "a_mean": _mean(a), "b_mean": _mean(b), **_test(a, b)})
    drops, drop_comps = [], []
    shifted = [f for f in levels if f > 0]
    for m in models:
        for f in shifted:
            z, s = _paired(scores.get((m, 0.0), {}), scores.get((m, f), {}))
            t = _test(s, z)  # drop = level 0 minus the shifted level
            drops.append({"model": m, "level": f, "drop": t["diff"], "ci_low": t["ci_low"], "ci_high": t["ci_high"],
                          "n": t["n"], "p": t["p"]})
    for m in others:
        for f in shifted:
            keys = sorted(set(scores.get((m, 0.0), {})) & set(scores.get((m, f), {}))
                          & set(scores.get((focus, 0.0), {})) & set(scores.get((focus, f), {})))
            da = [scores[(m, 0.0)][k] - scores[(m, f)][k] for k in keys]
            db = [scores[(focus, 0.0)][k] - scores[(focus, f)][k] for k in keys]
            drop_comps.append({"comparison": f"drop @{_lv(f)}: {m} → {focus}", "a": m, "b": focus, "level": f,
                               "a_drop": _mean(da), "b_drop": _mean(db), **_test(da, db)})
    return {"benchmark": label, **{k: v for k, v in info.items() if k != "summaries"}, "cells": cells,
            "comparisons": comps, "drops": drops, "drop_comparisons": drop_comps}


def _mean(v: List[float]) -> Optional[float]:
    return sum(v) / len(v) if v else None


def decide_claims(blocks: List[dict], focus: str, others: List[str], levels: List[float]) -> List[dict]:
    """Holm within each claim's family across benchmarks; a claim holds on a benchmark at a level when the
    focus model is significantly better (higher score / smaller drop) than every other model there."""
    from mdlm_bench import stats

    out = []
    for tag, key, sign, lvls, what in (
            ("a", "comparisons", 1, levels, f"{focus} scores higher than {' and '.join(others)}"),
            ("b", "drop_comparisons", -1, [f for f in levels if f > 0],
             f"{focus} loses less under shift than {' and '.join(others)}")):
        family = [c for b in blocks for c in b[key]]
        adj = stats.correct_pvalues([c["p"] for c in family])
        for c, h in zip(family, adj["holm"]):
            c["p_holm"] = h
            c["significant"] = h is not None and h < ALPHA
            c["favours_focus"] = c["diff"] is not None and sign * c["diff"] > 0
        per_bench = []
        for b in blocks:
            holds, against = [], []
            for f in lvls:
                cs = [c for c in b[key] if c["level"] == f]
                if cs and all(c["significant"] and c["favours_focus"] for c in cs):
                    holds.append(_lv(f))
                if any(c["significant"] and not c["favours_focus"] and c["diff"] for c in cs):
                    against.append(_lv(f))
            per_bench.append({"benchmark": b["benchmark"], "holds_at": holds, "against_at": against})
        n_cells = len(blocks) * len(lvls)
        n_hold = sum(len(p["holds_at"]) for p in per_bench)
        verdict = "holds" if n_cells and n_hold == n_cells else ("holds in part" if n_hold else "does not hold")
        out.append({"claim": f"({tag}) {what}", "verdict": verdict, "per_benchmark": per_bench,
                    "levels": [_lv(f) for f in lvls], "family_size": len(family),
                    "multiplicity": f"Holm over {len(family)} paired tests ({len(blocks)} benchmarks x "
                                    f"{len(others)} other models x {len(lvls)} levels), alpha {ALPHA}"})
    return out


def claims_lines(claims: List[dict]) -> List[str]:
    lines = []
    for c in claims:
        parts = []
        for p in c["per_benchmark"]:
            s = f"{p['benchmark']}: " + (", ".join(p["holds_at"]) if p["holds_at"] else "no level")
            if p["against_at"]:
                s += f" (significantly the other way at {', '.join(p['against_at'])})"
            parts.append(s)
        lines.append(f"Claim {c['claim']}: {c['verdict']} — holds at {'; '.join(parts)}. {c['multiplicity']}.")
    return lines


def _f(x, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _ci(c: dict) -> str:
    return f"{_f(c['diff'], True)} [{_f(c['ci_low'], True)}, {_f(c['ci_high'], True)}]"


def to_markdown(report: dict) -> str:
    L = [f"# {report['title']}", "", report["question"], ""]
    L += [f"- {line}" for line in report["claims_text"]] + [""]
    L += ["| benchmark | comparison | prompts | A | B | B − A [95% CI] | p (Holm) |", "|---|---|---:|---:|---:|---:|---:|"]
    for b in report["benchmarks"]:
        for c in b["comparisons"]:
            L.append(f"| {b['benchmark']} | {c['comparison']} | {c['n']} | {_f(c['a_mean'])} | {_f(c['b_mean'])} | "
                     f"{_ci(c)} | {_f(c.get('p_holm'))} |")
    L += ["", "Drop under shift (level 0 minus the level; B − A < 0: the focus model loses less):", "",
          "| benchmark | comparison | prompts | A drop | B drop | B − A [95% CI] | p (Holm) |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for b in report["benchmarks"]:
        for c in b["drop_comparisons"]:
            L.append(f"| {b['benchmark']} | {c['comparison']} | {c['n']} | {_f(c['a_drop'])} | {_f(c['b_drop'])} | "
                     f"{_ci(c)} | {_f(c.get('p_holm'))} |")
    L += ["", "## Scores per model and level", "", "| benchmark | judge | baseline | model | level | prompts | "
          "mean per-prompt score | protocol score | drop vs 0% [95% CI] |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for b in report["benchmarks"]:
        drops = {(d["model"], d["level"]): d for d in b["drops"]}
        for c in b["cells"]:
            d = drops.get((c["model"], c["level"]))
            dtxt = f"{_f(d['drop'], True)} [{_f(d['ci_low'], True)}, {_f(d['ci_high'], True)}]" if d else ""
            L.append(f"| {b['benchmark']} | {b['judge']} | {b['baseline']} | {c['model']} | {_lv(c['level'])} | "
                     f"{c['n_prompts']} | {_f(c['mean'])} | {_f(c.get('score'))} | {dtxt} |")
    t = report.get("timing") or {}
    if t:
        L += ["", "## Cost", "", f"Forwards: {report['forwards']['measured']:,} (planned "
              f"{report['forwards']['planned']:,}). Decode wall time (sum of the rows' wall_s): "
              f"{t['decode_seconds']:.1f} s; judge requests: {report['judge_requests']:,}.", "",
              "| model | benchmark | rows | seconds |", "|---|---|---:|---:|"]
        for r in t["per_model_benchmark"]:
            L.append(f"| {r['model']} | {r['benchmark']} | {r['rows']} | {r['seconds']:.2f} |")
    return "\n".join(L) + "\n"


def print_first_screen(report: dict, console) -> None:
    from rich.table import Table

    from mdlm_bench.report.render import print_wide

    console.print(f"[bold]{report['title']}[/bold]")
    console.print(report["question"], soft_wrap=True)
    for line in report["claims_text"]:
        console.print(line, soft_wrap=True)
    t = Table(title="focus model − other model, paired by prompt (Holm across benchmarks)")
    for col in ("benchmark", "comparison", "n", "B − A (95% CI)", "p Holm", "sig."):
        t.add_column(col, justify="left" if col in ("benchmark", "comparison") else "right")
    for b in report["benchmarks"]:
        for c in b["comparisons"] + b["drop_comparisons"]:
            t.add_row(b["benchmark"], c["comparison"], str(c["n"]), _ci(c), _f(c.get("p_holm")),
                      "[green]yes[/green]" if c.get("significant") else "no")
    print_wide(console, t)
