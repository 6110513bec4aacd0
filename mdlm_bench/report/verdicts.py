"""The verdict boxes on the report's first screen: one per claim, with the comparisons it rests on.

`claim_verdicts` ties each claim of `claims.paper_claims` to its rows in report.json (JSON pointers), so
the boxes print numbers the report holds: effect, interval, Holm-corrected p, prompts and, once the
statistics record it (`mdd`), the smallest difference the comparison could detect.
"""

from __future__ import annotations

from typing import List, Optional

from mdlm_bench.report.claims import power_text
from mdlm_bench.report.tables import Cell, Num, Table, ci_label, format_columns, get, num_at, opt_at, row_verdict

# where the statistics put a comparison's minimum detectable difference / prompt count (first found wins)
MDD_KEYS = ("mdd", "min_detectable_diff", "minimum_detectable_difference")
PROMPT_KEYS = ("n_prompts", "prompts")


def claim_verdicts(claims: List[dict], report: dict, focus: str, others: List[str]) -> List[dict]:
    """Each claim (paper_claims order: (a) scores, (b) drops) with `rows`: per level and other model, the
    pointer to the comparison that decides it."""
    heads = {c["comparison"]: i for i, c in enumerate(report["headline"]["comparisons"])
             if c.get("metric", "exact_match") == "exact_match"}
    drops = {c["comparison"]: i for i, c in enumerate(report.get("drops") or [])}
    out = []
    for tag, c in zip("ab", claims):
        rows = []
        for lv in c["levels"]:
            for m in others:
                if tag == "a":
                    i = heads.get(f"{m} → {focus}, both @{lv}")
                    ref = None if i is None else f"/headline/comparisons/{i}"
                else:
                    i = drops.get(f"drop @{lv}: {m} → {focus}")
                    ref = None if i is None else f"/drops/{i}"
                if ref is not None:
                    rows.append({"level": lv, "against": m, "ref": ref})
        v = {**c, "tag": tag, "focus": focus, "others": list(others), "effect": "score" if tag == "a" else "drop",
             "rows": rows}
        v["sentence"] = verdict_sentence(v, (report.get("settings") or {}).get("alpha", 0.05))
        out.append(v)
    return out


def _first_key(row: dict, keys) -> Optional[str]:
    return next((k for k in keys if row.get(k) is not None), None)


def _pp(report: dict, ref: str) -> Num:
    return Num(get(report, ref), ref, scale=100.0)


def verdict_sentence(v: dict, alpha: float = 0.05) -> str:
    """What the claim needs and where it was found, in words (never 'p < 0.05' as if it had been found)."""
    others = " and ".join(v["others"])
    need = ("a higher exact match than " if v["effect"] == "score" else "a smaller drop under shift than ")
    levels = ", ".join(v["levels"])
    found = ", ".join(v["holds_at"]) if v["holds_at"] else "no level"
    text = (f"Needs {need}{others} at every level ({levels}), each significant (Holm-corrected p below "
            f"alpha = {alpha:g}). Found at {found}.")
    unproven = [lv for lv in v.get("favoured_at", []) if lv not in v["holds_at"]]
    if unproven:
        text += f" The estimates point its way at {', '.join(unproven)}, not significantly."
    if v.get("worse_than_some_at"):
        text += f" Significantly the other way at {', '.join(v['worse_than_some_at'])}."
    if v.get("borderline_at"):
        text += (f" At {', '.join(v['borderline_at'])} it rests on a Holm test whose family-wise interval still "
                 "includes 0 (borderline).")
    power = power_text(v)  # "; its comparisons detect ..." (claims' wording), as a sentence of its own
    if power:
        text += " I" + power[3:] + "."
    return text


def verdict_table(report: dict, v: dict) -> Table:
    """The numbers behind one claim: per level and other model, effect in percentage points with its CI,
    Holm-corrected p, prompts (paired rows where prompts are not recorded) and MDD when recorded."""
    rows = [get(report, r["ref"]) for r in v["rows"]]
    prompts = _first_key(rows[0], PROMPT_KEYS) if rows else None
    mdd = _first_key(rows[0], MDD_KEYS) if rows else None
    what = "B − A, exact match" if v["effect"] == "score" else "drop B − A"
    fam = ("/drops_family" if v["rows"] and v["rows"][0]["ref"].startswith("/drops") else "/headline/family")
    cols: List[Cell] = ["level", "A", [f"{what}, pp ["] + ci_label(report, fam) + ["]"], "p (Holm)",
                        "prompts" if prompts else "rows"]
    if mdd:
        cols.append("MDD, pp")
    cols.append("verdict")
    t = Table(f"Claim ({v['tag']}): {v['claim']}", cols)
    for r, row in zip(v["rows"], rows):
        ref = r["ref"]
        effect: Cell = [_pp(report, ref + "/diff")]
        if row.get("ci_low") is not None:
            effect += [" [", _pp(report, ref + "/ci_low"), ", ", _pp(report, ref + "/ci_high"), "]"]
        cells: List[Cell] = [r["level"], r["against"], effect, opt_at(report, ref + "/p_holm"),
                             num_at(report, f"{ref}/{prompts or 'n'}")]
        if mdd:
            cells.append(_pp(report, f"{ref}/{mdd}") if row.get(mdd) is not None else "n/a")
        cells.append(row_verdict(row) if "significant" in row else "n/a")
        t.rows.append(cells)
    note = (f"B = {v['focus']}, A = the model of the row. pp: percentage points of exact match. " + ("Drop: exact match at 0% minus at the level; B − A < 0: "
            "B loses less. " if v["effect"] == "drop" else "B − A > 0: B scores higher. ")
            + "p (Holm): Holm-corrected over the comparisons of the table it comes from. "
            + ("prompts: distinct prompts compared. " if prompts else
               "rows: paired (task, prompt, seed) present in all runs compared. ")
            + ("MDD: the smallest difference this comparison detects with 80% power at the corrected alpha. "
               if mdd else ""))
    t.note = note.strip()
    return format_columns(t)
