"""The reference experiment's verdicts: paired drop-under-shift comparisons and the paper's two claims,
decided from Holm-corrected comparisons (pure functions of run directories and the report's headline).
"""

from __future__ import annotations

from pathlib import Path
from typing import List


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
