"""The reference experiment's verdicts: paired drop-under-shift comparisons and the paper's two claims,
decided from Holm-corrected comparisons (pure functions of run directories and the report's headline).
"""

from __future__ import annotations

from pathlib import Path
from typing import List


def drop_comparisons(run_dirs: List[Path], labels: List[str], drops: List[tuple], what: List[str],
                     metric: str = "exact_match", settings=None) -> dict:
    """Drop under shift, paired by prompt: for (a0, af, b0, bf) run indices, per prompt (task, uid) present
    in all four runs, A's drop mean_a0 - mean_af against B's drop mean_b0 - mean_bf (means over each run's
    seeds, so a one-seed level 0 pairs with seeded levels). Reported as B's drop minus A's drop (negative:
    B loses less) with its cluster-bootstrap interval and the sign-flip permutation test on per-prompt
    differences; Holm / BH over these rows, family-wise intervals and the minimum detectable difference.
    Returns {"family": ..., "rows": [...]}."""
    import numpy as np

    from mdlm_bench.report.settings import ReportSettings
    from mdlm_bench.rundir import load_generations, row_key
    from mdlm_bench.stats.clustered import add_family_intervals, cluster_bootstrap_ci, prompt_means, sign_flip_p

    s = settings or ReportSettings()
    means, rows_n = [], []
    for d in run_dirs:
        m, c = prompt_means({row_key(r): float(r["metrics"][metric]) for r in load_generations(d)
                             if metric in (r.get("metrics") or {})})
        means.append(m)
        rows_n.append(c)
    out, ds = [], []
    for (a0, af, b0, bf), desc in zip(drops, what):
        keys = sorted(set(means[a0]) & set(means[af]) & set(means[b0]) & set(means[bf]), key=repr)
        da = np.array([means[a0][k] - means[af][k] for k in keys])
        db = np.array([means[b0][k] - means[bf][k] for k in keys])
        d = db - da
        est, lo, hi = cluster_bootstrap_ci(d, s.ci_level, s.n_resamples, s.seed)
        out.append({"comparison": desc, "a": labels[a0].split(" @")[0], "b": labels[b0].split(" @")[0],
                    "metric": metric, "n": len(keys), "prompts": len(keys),
                    "rows": {labels[i]: sum(rows_n[i][k] for k in keys) for i in (a0, af, b0, bf)},
                    "a_drop": float(da.mean()) if keys else None, "b_drop": float(db.mean()) if keys else None,
                    "diff": est, "ci95_low": lo, "ci95_high": hi, "ci_method": "cluster bootstrap",
                    "sd_prompt": float(d.std(ddof=1)) if d.size > 1 else None,
                    "test": "sign-flip permutation", "p": sign_flip_p(d, s.n_permutations, s.seed)})
        ds.append(d)
    family = add_family_intervals(out, ds, s.ci_level, s.alpha, s.n_resamples, s.seed)
    for r in out:
        r.update(ci_low=r.pop("family_ci_low"), ci_high=r.pop("family_ci_high"), ci_level=r.pop("family_ci_level"))
    return {"family": family, "rows": out}


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
    for c, rows, fam in ((out[0], [comp[f"{m} → {focus}, both @{level(f)}"] for m in others for f in fractions],
                          headline.get("family")),
                         (out[1], [drops[f"drop @{level(f)}: {m} → {focus}"] for m in others for f in shifted],
                          headline.get("drops_family"))):
        n, k = len(c["levels"]), len(c["holds_at"])
        c["verdict"] = "holds" if k == n else ("holds in part" if k else "does not hold")
        c["borderline_at"] = [lv for lv in c["holds_at"] if any(
            r.get("verdict") == "borderline" and f"@{lv}" in r["comparison"] for r in rows)]
        mdds = [r.get("mdd") for r in rows if r.get("mdd") is not None]
        c["power"] = {"mdd_max": max(mdds) if mdds else None, "mdd_min": min(mdds) if mdds else None,
                      "largest_abs_diff": max((abs(r["diff"]) for r in rows), default=None),
                      "power": (fam or {}).get("power", {}).get("power", 0.8),
                      "alpha_corrected": (fam or {}).get("power", {}).get("alpha_corrected"),
                      "tests": (fam or {}).get("tests")}
    return out


def power_text(c: dict) -> str:
    """Whether the data could have shown the claim: its comparisons' minimum detectable difference."""
    pw = c.get("power") or {}
    if pw.get("mdd_max") is None:
        return ""
    text = (f"; its comparisons detect a difference of {pw['mdd_max']:.3f} or more with "
            f"{pw['power']:.0%} power (α {pw['alpha_corrected']:.3g} per test, Holm over {pw['tests']})")
    if c["verdict"] != "holds":
        seen = pw["largest_abs_diff"]
        text += (", so the data could have shown an effect of that size" +
                 (f"; the observed differences (|B − A| ≤ {seen:.3f}) are below it, so smaller effects are "
                  "neither shown nor ruled out" if seen is not None and seen < pw["mdd_max"] else ""))
    return text


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
        if c.get("borderline_at"):
            extra += (f"; at {', '.join(c['borderline_at'])} it rests on a Holm test whose family-wise interval "
                      "still includes 0 (borderline)")
        lines.append(f"Claim ({tag}), {c['claim']}: **{c['verdict']}**{where} over levels "
                     f"{', '.join(c['levels'])} (Holm p < 0.05){extra}{power_text(c)}.")
    return lines
