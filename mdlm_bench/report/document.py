"""The report's one block order: `document(report)` lists its blocks, and the markdown, HTML and terminal
renderers (report.render) each loop over that list, so a block is added, moved or dropped in one place.

    first screen: the question · a verdict box per claim (reference runs) · the drop-under-shift plot,
    one panel per model · the pooled table, then its forest plot; then the drop table · findings ·
    details (collapsed: per comparison, judges, sweeps) · win rates · settings and runs.

A renderer shows every block type it can: the terminal skips figures, and shows the short tables only
(`terminal=True` blocks); the long ones (per-task tests, runs) are in the files it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Union

from mdlm_bench.report.tables import (Cell, Table, comparison_sections, drops_table, headline_table, judge_table,
                                      num_at, run_table, settings_line, sweep_tables)


@dataclass
class Title:
    text: str


@dataclass
class Meta:
    """A line about the document (producer, date): small print."""

    text: str


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    cells: List[Cell]
    note: bool = False  # small print


@dataclass
class TableBlock:
    table: Table
    level: int = 3
    id: str = ""


@dataclass
class Figure:
    """A plot by name (report["plots"]); left out where the report has no such plot."""

    name: str


@dataclass
class Bullets:
    title: str
    items: List[str]


@dataclass
class Details:
    """A collapsed section (HTML <details>): its summary line and its blocks."""

    summary: List[Cell]
    blocks: List["Block"] = field(default_factory=list)


@dataclass
class Verdict:
    """One claim's box: its verdict word (holds / holds in part / does not hold), a sentence, its numbers."""

    word: str
    tag: str
    sentence: str
    table: Table


@dataclass
class Verdicts:
    boxes: List[Verdict]


@dataclass
class Pointer:
    """A line telling the terminal reader where the long tables are (the files only)."""

    text: str


@dataclass
class Columns:
    """Blocks side by side where the format allows (HTML grid), else one column after the other."""

    left: List["Block"]
    right: List["Block"]


Block = Union[Title, Meta, Heading, Para, TableBlock, Figure, Bullets, Details, Columns, Verdicts, Pointer]

CAPTIONS = {
    "sensitivity": "Exact match (or each metric) against the share of generated tokens displaced, in percent: one "
                   "panel per model, its band the cluster-bootstrap CI over prompts, the other models in grey; labels give the change "
                   "from the unperturbed level in percentage points.",
    "forest": "Pooled differences B - A with family-wise cluster-bootstrap CIs over prompts; red: significant after Holm.",
    "win_rates": "Judge win rates against each run's baseline, with percentile bootstrap intervals.",
}


def _comparison_summary(report: dict, i: int) -> List[Cell]:
    """'name: k of n per-task differences significant' (numbers as pointers into report.json)."""
    ref = f"/comparisons/{i}"
    return [report["comparisons"][i]["name"], ": ", num_at(report, ref + "/n_significant"), " of ",
            num_at(report, ref + "/n_tested"), " per-task tests significant (Holm)"]


def detail_sections(report: dict) -> List[Details]:
    """The collapsed sections, in order: per comparison, judged benchmarks, sweeps."""
    out = [Details(_comparison_summary(report, i), [TableBlock(t, 4) for t in tables])
           for i, tables in enumerate(comparison_sections(report))]
    out += [Details([t.title], [TableBlock(t, 4)]) for t in judge_table(report) + sweep_tables(report)]
    return out


def headline_blocks(report: dict) -> List[Block]:
    """The headline table, when the report compares runs."""
    if not report["headline"]["comparisons"]:
        return []
    return [TableBlock(headline_table(report), 2, "headline")]


def verdict_blocks(report: dict) -> List[Block]:
    """A box per claim of report["verdicts"] (the reference experiment); nothing for other reports."""
    from mdlm_bench.report.verdicts import verdict_sentence, verdict_table

    alpha = report["settings"].get("alpha", 0.05)
    boxes = [Verdict(v["verdict"], v["tag"], v.get("sentence") or verdict_sentence(v, alpha),
                     verdict_table(report, v))
             for v in report.get("verdicts") or [] if v.get("rows")]
    return [Verdicts(boxes)] if boxes else []


def document(report: dict, terminal: bool = False) -> List[Block]:
    """Every block of the report, in the order every format shows them; `terminal`: the short form
    (no per-task tables, settings or runs: a pointer to the files instead)."""
    blocks: List[Block] = [
        Title(report["question"]),
        Meta(f"{report['producer']}, created {report['created']}. Details, settings and runs follow the findings."),
    ]
    blocks += verdict_blocks(report)
    blocks += [Figure("sensitivity")] + headline_blocks(report) + [Figure("forest")]
    if report.get("drops"):
        blocks.append(TableBlock(drops_table(report), 3, "drops"))
    blocks.append(Bullets("Findings", list(report["findings"])))
    if terminal:
        return blocks + [Pointer("Per-task tests, judged benchmarks, sweeps, settings and runs (paths, decoding, "
                                 "config digests) are in report.md and report.html.")]
    blocks.append(Heading("Details", 2))
    blocks += detail_sections(report)
    blocks += [
        Figure("win_rates"),
        Heading("Settings and runs", 2),
        Para(settings_line(report)),
        Para([f"Report digest {report['digest']}."], note=True),
        Details(["Runs compared, with config digests"], [TableBlock(run_table(report), 4)]),
    ]
    return blocks


def tables_of(blocks: List[Block]) -> List[Table]:
    """Every table the blocks show (inside sections, columns and verdict boxes too)."""
    out: List[Table] = []
    for b in blocks:
        if isinstance(b, TableBlock):
            out.append(b.table)
        elif isinstance(b, Details):
            out += tables_of(b.blocks)
        elif isinstance(b, Columns):
            out += tables_of(b.left + b.right)
        elif isinstance(b, Verdicts):
            out += [v.table for v in b.boxes]
    return out
