"""The paper's two claims are decided from the Holm-corrected comparisons, never hard-coded."""

from mdlm_bench.report.claims import claims_text, paper_claims


def _headline(diffs, drop_diffs, sig=True):
    comps = [{"comparison": f"{m} → s, both @{lv}", "diff": d, "significant": sig}
             for (m, lv), d in diffs.items()]
    drops = [{"comparison": f"drop @{lv}: {m} → s", "diff": d, "significant": sig}
             for (m, lv), d in drop_diffs.items()]
    return {"comparisons": comps, "drops": drops}


def test_claims_hold_fail_and_hold_in_part():
    levels = [0.0, 0.05]
    diffs = {("base", "0%"): 0.1, ("ce", "0%"): 0.2, ("base", "5%"): 0.1, ("ce", "5%"): -0.1}
    drops = {("base", "5%"): -0.05, ("ce", "5%"): -0.02}
    a, b = paper_claims(_headline(diffs, drops), "s", ["base", "ce"], levels)
    assert a["verdict"] == "holds in part" and a["holds_at"] == ["0%"] and a["worse_than_some_at"] == ["5%"]
    assert b["verdict"] == "holds" and b["holds_at"] == ["5%"]
    text = claims_text([a, b])
    assert "holds in part" in text[0] and "other way" in text[0] and "**holds**" in text[1]
    # Not significant: neither claim holds, whatever the sign.
    a, b = paper_claims(_headline(diffs, drops, sig=False), "s", ["base", "ce"], levels)
    assert a["verdict"] == b["verdict"] == "does not hold" and not a["worse_than_some_at"]
    assert b["favoured_at"] == ["5%"] and a["favoured_at"] == ["0%"]
    assert "favour it over every other model at 5%, but not significantly" in claims_text([a, b])[1]
    # A larger drop than the CE fine-tune's refutes (b) at that level.
    a, b = paper_claims(_headline(diffs, {("base", "5%"): -0.05, ("ce", "5%"): 0.04}), "s", ["base", "ce"], levels)
    assert b["verdict"] == "does not hold" and b["worse_than_some_at"] == ["5%"]


def test_a_claim_that_does_not_hold_says_whether_the_data_could_have_shown_it():
    levels = [0.0, 0.05]
    h = _headline({("base", "0%"): 0.01, ("ce", "0%"): 0.0, ("base", "5%"): 0.0, ("ce", "5%"): 0.01},
                  {("base", "5%"): -0.01, ("ce", "5%"): -0.02}, sig=False)
    for c in h["comparisons"]:
        c["mdd"] = 0.05
    for c, m in zip(h["drops"], (0.025, 0.028)):
        c["mdd"] = m
    fam = {"tests": 2, "power": {"power": 0.8, "alpha_corrected": 0.025}}
    h["family"], h["drops_family"] = {**fam, "tests": 4}, fam
    a, b = paper_claims(h, "s", ["base", "ce"], levels)
    assert b["power"]["mdd_max"] == 0.028 and b["power"]["largest_abs_diff"] == 0.02
    text = claims_text([a, b])
    assert "detect a difference of 0.028 or more with 80% power (α 0.025 per test, Holm over 2)" in text[1]
    assert "could have shown an effect of that size" in text[1]
    assert "observed differences (|B − A| ≤ 0.020) are below it" in text[1]
    assert "0.050 or more" in text[0] and "Holm over 4" in text[0]


def test_committed_reference_is_powered_and_its_intervals_agree_with_its_verdicts():
    """The committed reference (reports/reference/): drop comparisons detect 0.03 at 80% power under Holm, and
    no interval that excludes zero sits next to 'not significant', in the headline or the drop table."""
    import json
    from pathlib import Path

    ref = Path(__file__).resolve().parents[1] / "reports" / "reference"
    report = json.loads((ref / "report.json").read_text())
    headline = json.loads((ref / "headline.json").read_text())
    assert headline["drops_family"]["power"]["power"] == 0.8
    assert all(r["mdd"] <= 0.03 for r in headline["drops"]), [r["mdd"] for r in headline["drops"]]
    for rows in (report["headline"]["comparisons"], report["drops"], headline["comparisons"], headline["drops"]):
        for r in rows:
            excludes = r["ci_low"] > 0 or r["ci_high"] < 0
            assert not (excludes and r["verdict"] == "not significant"), r["comparison"]
            assert r["verdict"] == ("significant" if r["significant"] else "not significant") or \
                r["verdict"].startswith("borderline")
    assert headline["produced_by"]["reference_config"]["limit"] == 200
    assert headline["produced_by"]["config_digest"] == report["reference"]["config_digest"]


def test_a_claim_resting_on_a_borderline_comparison_says_so():
    h = _headline({(m, lv): -0.1 for m in ("base", "ce") for lv in ("0%", "5%", "10%")},
                  {("base", "5%"): -0.05, ("ce", "5%"): -0.02, ("base", "10%"): -0.05, ("ce", "10%"): -0.03})
    for c in h["drops"]:
        c["verdict"] = "borderline" if c["comparison"] == "drop @10%: ce → s" else "significant"
    a, b = paper_claims(h, "s", ["base", "ce"], [0.0, 0.05, 0.1])
    assert b["verdict"] == "holds" and b["borderline_at"] == ["10%"]
    assert "at 10% it rests on a Holm test whose family-wise interval still includes 0" in claims_text([a, b])[1]
