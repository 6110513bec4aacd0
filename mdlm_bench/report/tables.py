"""The report's tables as plain data, rendered to markdown, HTML and rich from this one model.

Every number in a table is a `Num` holding its JSON pointer into report.json, and every number is
written by `fmt`, so the HTML, the markdown, the terminal and report.json cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Sequence, Union


def fmt(x: Any) -> str:
    """The one number format of the report: integers as they are, 3 significant digits otherwise,
    scientific notation below 0.001, no scientific notation at or above 1000."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    if abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.3g}"


P_KEYS = ("p", "p_holm", "p_bh", "sign_p", "sign_p_holm")


def fmt_p(x: Any) -> str:
    """A p-value: three decimals, '< 0.001' below that (never scientific notation)."""
    if x is None:
        return "n/a"
    x = float(x)
    if math.isnan(x):
        return "nan"
    return "< 0.001" if x < 0.0005 else f"{x:.3f}"


def fmt_fixed(x: Any, decimals: int) -> str:
    """A number with a column's fixed count of decimals (no '-0.00')."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    x = float(x)
    if not math.isfinite(x):
        return fmt(x)
    text = f"{x:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


@dataclass
class Num:
    value: Any
    ref: str  # JSON pointer into report.json
    decimals: Optional[int] = None  # set per column by format_columns; None: fmt's 3 significant digits
    scale: float = 1.0  # shown as value * scale (100: a rate in percentage points); report.json keeps the value

    @property
    def is_p(self) -> bool:
        return self.ref.rstrip("/").rsplit("/", 1)[-1] in P_KEYS

    @property
    def text(self) -> str:
        if self.is_p:
            return fmt_p(self.value)
        v = self.shown
        if self.decimals is None:
            return fmt(v)
        return fmt_fixed(v, self.decimals)

    @property
    def shown(self) -> Any:
        if self.scale == 1.0 or self.value is None or isinstance(self.value, bool):
            return self.value
        return float(self.value) * self.scale


Cell = Union[str, Num, List[Union[str, Num]]]


@dataclass
class Table:
    title: str
    columns: List[Cell]
    rows: List[List[Cell]] = field(default_factory=list)
    note: str = ""


def _nums(cell: Cell) -> Iterator[Num]:
    if isinstance(cell, Num):
        yield cell
    elif isinstance(cell, list):
        for c in cell:
            yield from _nums(c)


def column_decimals(values: Sequence[Any], digits: int = 3, most: int = 4) -> int:
    """The decimals of one column: enough for `digits` significant digits of its largest magnitude and one
    of its smallest non-zero one, at most `most`; so every number of a column is written the same way."""
    xs = [abs(float(v)) for v in values if v is not None and not isinstance(v, bool) and math.isfinite(float(v))]
    xs = [x for x in xs if x > 0]
    if not xs:
        return 0
    need = max(digits - 1 - math.floor(math.log10(max(xs))), -math.floor(math.log10(min(xs))))
    return max(0, min(most, need))


def format_columns(t: "Table") -> "Table":
    """One number format per column: p-values as p-values, every other number of a column with the same
    decimals (chosen from the column's values); columns with no value in any row (all n/a) are dropped."""
    if not t.rows:
        return t
    keep = [k for k in range(len(t.columns)) if any(cell_text(row[k]) != "n/a" for row in t.rows)]
    if len(keep) < len(t.columns):
        t.columns = [t.columns[k] for k in keep]
        t.rows = [[row[k] for k in keep] for row in t.rows]
    for k in range(len(t.columns)):
        nums = [n for row in t.rows for n in _nums(row[k]) if not n.is_p]
        if not nums:
            continue
        ints = all(isinstance(n.shown, int) and not isinstance(n.shown, bool) for n in nums if n.value is not None)
        d = 0 if ints else column_decimals([n.shown for n in nums])
        for n in nums:
            n.decimals = d
    return t


def cell_text(cell: Cell) -> str:
    if isinstance(cell, Num):
        return cell.text
    if isinstance(cell, list):
        return "".join(cell_text(c) for c in cell)
    return str(cell)


def get(report: dict, ref: str) -> Any:
    """Resolve a JSON pointer ("/a/0/b") in the report."""
    node: Any = report
    for part in ref.strip("/").split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def num_at(report: dict, ref: str) -> Num:
    return Num(get(report, ref), ref)


def ci_at(report: dict, ref: str) -> Cell:
    if get(report, ref + "/ci_low") is None:
        return "n/a"
    return ["[", num_at(report, ref + "/ci_low"), ", ", num_at(report, ref + "/ci_high"), "]"]


def opt_at(report: dict, ref: str) -> Cell:
    """A number, or 'n/a' for tests that do not apply (no pointer needed for text that is no number)."""
    try:
        v = get(report, ref)
    except (KeyError, IndexError, TypeError):
        return "n/a"
    return "n/a" if v is None else Num(v, ref)


def verdict_text(significant: Optional[bool]) -> str:
    """The verdict column's words (the HTML marks rows whose last cell is 'significant')."""
    return "n/a" if significant is None else ("significant" if significant else "n.s.")


def _family_note(fam: Optional[dict], fallback: str) -> str:
    """The line under a table (stats.clustered.family_note, kept in report.json as the family's 'note')."""
    return fam.get("note") or fallback if fam else fallback


def ci_label(report: dict, fam_ref: str) -> List[Cell]:
    """'99.6% family CI' where the family at `fam_ref` has a family-wise level, else the report's 'N% CI'
    (the number as a pointer into report.json)."""
    try:
        level = get(report, fam_ref + "/family_ci_level")
    except (KeyError, IndexError, TypeError):
        level = None
    if level is None:
        return [num_at(report, "/settings/ci_percent"), "% CI"]
    return [Num(level, fam_ref + "/family_ci_level", scale=100.0), "% family CI"]


def _ci_header(report: dict, fam_ref: str) -> Cell:
    return ["B − A ["] + ci_label(report, fam_ref) + ["]"]


def row_verdict(r: dict) -> str:
    """A row's own verdict where the statistics gave one (e.g. 'borderline'), else from its significance."""
    v = r.get("verdict")
    return v if v and v not in ("significant", "not significant") else verdict_text(r["significant"])


def headline_table(report: dict) -> Table:
    """Each comparison pooled over tasks: the table the report and the terminal lead with."""
    head = report["headline"]
    many = len(head["metrics"]) > 1
    t = Table(f"Pooled over tasks: {', '.join(m.replace('_', ' ') for m in head['metrics'])}",
              ["comparison A → B"] + (["metric"] if many else []) +
              ["prompts (rows)", "A", "B", _ci_header(report, "/headline/family"), "p (Holm)", "verdict"],
              note=_family_note(head.get("family"), "Rows paired by prompt and pooled over tasks.")
                   + " prompts (rows): prompts paired in A and B (rows of A, of B: a prompt's seeds are averaged)."
                   " n.s.: not significant.")
    for i, r in enumerate(head["comparisons"]):
        ref = f"/headline/comparisons/{i}"
        diff: Cell = [num_at(report, ref + "/diff"), " [", num_at(report, ref + "/ci_low"), ", ",
                      num_at(report, ref + "/ci_high"), "]"] if r["ci_low"] is not None else [num_at(report, ref + "/diff")]
        t.rows.append([r["comparison"]] + ([r["metric"]] if many else []) +
                      [[num_at(report, ref + "/n"), " (", opt_at(report, ref + "/rows_a"), ", ",
                        opt_at(report, ref + "/rows_b"), ")"], num_at(report, ref + "/a_mean"),
                       num_at(report, ref + "/b_mean"), diff, opt_at(report, ref + "/p_holm"), row_verdict(r)])
    return format_columns(t)


def drops_table(report: dict) -> Table:
    """Paired drop-under-shift comparisons (report["drops"]): level 0 minus the shifted level, B vs A."""
    t = Table("Drop under shift", ["comparison A → B", "prompts", "A drop", "B drop",
                                   _ci_header(report, "/drops_family"), "p (Holm)", "MDD", "verdict"],
              note="Drop: exact match at 0% minus exact match at the shifted level, per prompt (seeds averaged); "
                   "B − A < 0 means B loses less. MDD: the smallest difference the family detects with 80% power. "
                   + _family_note(report.get("drops_family"), "Holm over the rows of this table.")
                   + " n.s.: not significant.")
    for i, r in enumerate(report["drops"]):
        ref = f"/drops/{i}"
        t.rows.append([r["comparison"], num_at(report, ref + "/n"), num_at(report, ref + "/a_drop"),
                       num_at(report, ref + "/b_drop"),
                       [num_at(report, ref + "/diff"), " [", num_at(report, ref + "/ci_low"), ", ", num_at(report, ref + "/ci_high"),
                        "]"], opt_at(report, ref + "/p_holm"), opt_at(report, ref + "/mdd"), row_verdict(r)])
    return format_columns(t)


def run_table(report: dict) -> Table:
    t = Table("Runs compared", ["run", "path (relative to the report)", "models", "checkpoints", "decoding",
                                "perturbation", "seeds", "judge", "config digest"])
    for i, r in enumerate(report["runs"]):
        d = r["display"]
        t.rows.append([r["label"], r["path"], d["models"], d["checkpoints"], d["decoding"], d["perturbations"],
                       d["seeds"], d["judges"], r["digest"] or "n/a"])
    return t


def comparison_tables(report: dict) -> List[Table]:
    return [t for pair in comparison_sections(report) for t in pair]


def comparison_sections(report: dict) -> List[List[Table]]:
    """[scores, tests] per comparison."""
    out = []
    for ci, comp in enumerate(report["comparisons"]):
        base = f"/comparisons/{ci}/benchmarks"
        scores = Table(f"{comp['name']}: scores",
                       ["benchmark", "kind", "paired", "only A", "only B", "A", "A CI", "B", "B CI",
                        "B - A", "B - A CI", "CI method"],
                       note=f"A = {comp['label_a']}, B = {comp['label_b']}. paired: prompts scored in both "
                            f"runs (rows averaged per prompt over seeds); only A / only B: prompts in one run only, "
                            f"left out. A, B: mean scores with percentile bootstrap intervals over prompts; B - A "
                            f"interval: cluster bootstrap over prompts at the Bonferroni level of every benchmark of "
                            f"every comparison (it holds for the whole family).")
        tests = Table(f"{comp['name']}: tests",
                      ["benchmark", "McNemar p", "permutation p", "Wilcoxon p", "sign test p", "primary",
                       "Holm p", "BH p", "Cohen d_z", "B wins", "ties", "B losses", "verdict"],
                      note="Tests on per-prompt means (permutation = sign-flip; McNemar only where each prompt has "
                           "one row). primary: the test whose p-value decides. Holm (family-wise) and BH (false "
                           "discovery rate) correct the primary p-value over every benchmark of every comparison. "
                           "Cohen d_z: mean difference over its standard deviation. Wins, ties, losses: prompts "
                           "where B scores above, equal to, below A. Columns with no value in any row are left out.")
        for bi, row in enumerate(comp["benchmarks"]):
            ref = f"{base}/{bi}"
            paired = [row["benchmark"], row["kind"], num_at(report, ref + "/pairing/both"),
                      num_at(report, ref + "/pairing/only_a"), num_at(report, ref + "/pairing/only_b")]
            if row["diff"] is None:
                scores.rows.append(paired + ["n/a"] * 7)
                tests.rows.append([row["benchmark"]] + ["n/a"] * 11 + ["no paired items"])
                continue
            scores.rows.append(paired + [
                num_at(report, ref + "/a/mean"), ci_at(report, ref + "/a"), num_at(report, ref + "/b/mean"),
                ci_at(report, ref + "/b"), num_at(report, ref + "/diff/mean"), ci_at(report, ref + "/diff"),
                row["diff"]["method"]])
            verdict = row_verdict(row)
            tests.rows.append([
                row["benchmark"], opt_at(report, ref + "/tests/mcnemar/p"), opt_at(report, ref + "/tests/permutation/p"),
                opt_at(report, ref + "/tests/wilcoxon/p"), opt_at(report, ref + "/tests/sign/p"),
                row["primary_test"], opt_at(report, ref + "/p_holm"), opt_at(report, ref + "/p_bh"),
                opt_at(report, ref + "/effect/cohens_dz"), num_at(report, ref + "/effect/wins"),
                num_at(report, ref + "/effect/ties"), num_at(report, ref + "/effect/losses"), verdict])
        out.append([format_columns(scores), format_columns(tests)])
    return out


def judge_table(report: dict) -> List[Table]:
    if not report["judge"]:
        return []
    t = Table("Judged benchmarks (each run against the judge's baseline)",
              ["run", "bench", "kind", "judge", "baseline", "items", "win rate / mean", "CI", "wins", "ties",
               "losses", "sign test p", "Holm p", "position consistency", "parse failures"],
              note="Win rate: mean per-item score against the baseline, a tie counting half; percentile bootstrap "
                   "CI over items. Position consistency: share of pairs judged the same in both orders. Parse "
                   "failures: share of judge replies with no verdict.")
    for i, r in enumerate(report["judge"]):
        ref = f"/judge/{i}"
        t.rows.append([r["label"], r["bench"], r["kind"], str(r["judge_model"]), str(r["baseline"]),
                       num_at(report, ref + "/n"), num_at(report, ref + "/mean"), ci_at(report, ref),
                       opt_at(report, ref + "/wins"), opt_at(report, ref + "/ties"), opt_at(report, ref + "/losses"),
                       opt_at(report, ref + "/sign_p"), opt_at(report, ref + "/sign_p_holm"),
                       opt_at(report, ref + "/position_consistency"), opt_at(report, ref + "/parse_failure_rate")])
    return [format_columns(t)]


def sweep_tables(report: dict) -> List[Table]:
    out = []
    for si, sw in enumerate(report["sweeps"]):
        metrics = sorted({m for lv in sw["levels"] for m in lv["metrics"]})
        t = Table(f"Sweep: {sw['label']} ({sw['operator']})",
                  ["fraction", "measured", "content moves", "content fraction"] + [f"{m} mean" for m in metrics]
                  + [f"{m} CI" for m in metrics] +
                  ["edit distance", "unchanged", "length change"],
                  note=f"{sw['path']}. fraction: the requested share of generated tokens displaced; measured: the "
                       f"share actually displaced (fewer where a canvas has too few tokens); content moves: moves "
                       f"that changed where a content token sits (not EOS padding, not <slack>); content fraction: "
                       f"content moves over the generated length; edit distance: mean "
                       f"token edits from the unperturbed output; unchanged: share of outputs left as they were; "
                       f"length change: mean tokens gained or lost against the unperturbed output.")
        for li, lv in enumerate(sw["levels"]):
            ref = f"/sweeps/{si}/levels/{li}"
            means = [opt_at(report, f"{ref}/metrics/{m}/mean") for m in metrics]
            cis = [ci_at(report, f"{ref}/metrics/{m}") if m in lv["metrics"] else "n/a" for m in metrics]
            t.rows.append([num_at(report, ref + "/fraction"), opt_at(report, ref + "/effective_fraction"),
                           opt_at(report, ref + "/content_moves"), opt_at(report, ref + "/content_fraction")] + means + cis +
                          [opt_at(report, ref + "/edit_distance/mean"), opt_at(report, ref + "/unchanged_rate"),
                           opt_at(report, ref + "/length_change/mean")])
        out.append(format_columns(t))
    return out


def detail_tables(report: dict) -> List[Table]:
    return comparison_tables(report) + judge_table(report) + sweep_tables(report)


def all_tables(report: dict) -> List[Table]:
    """Every table, in the order of the documents: headline, details, runs."""
    head = [headline_table(report)] if report["headline"]["comparisons"] else []
    return head + detail_tables(report) + [run_table(report)]


def settings_line(report: dict) -> List[Cell]:
    s = "/settings"
    return ["confidence level ", num_at(report, s + "/ci_level"), "; bootstrap resamples ",
            num_at(report, s + "/n_resamples"), "; permutations ", num_at(report, s + "/n_permutations"),
            "; alpha ", num_at(report, s + "/alpha"), " (Holm-corrected); seed ", num_at(report, s + "/seed"),
            "; p-values corrected together (Holm and BH, the per-task tables) ", num_at(report, "/corrections/n_tests")]


def display(values: Sequence[Any]) -> str:
    """Short text of a list of settings (dicts as k=v), stored in report.json beside the values."""
    def one(v: Any, top: bool = True) -> str:
        if isinstance(v, dict):  # settings as 'key value' pairs; unset ones (None, False, empty) left out
            inner = ", ".join(f"{k} {one(x, False)}" for k, x in v.items() if x not in (None, False, [], {}))
            return inner if top else "(" + inner + ")"
        if isinstance(v, list):
            return "–".join(one(x, False) for x in v) if len(v) == 2 and all(
                isinstance(x, (int, float)) for x in v) else ", ".join(one(x, False) for x in v)
        return "none" if v is None else str(v)
    return "; ".join(one(v) for v in values) if values else "n/a"
