"""Render the report dict to markdown, self-contained HTML (well-formed XHTML-style markup with
base64 PNGs) and rich. All three draw the same `tables` model and follow one order:

    the question · headline pooled over tasks · sensitivity and forest plots · findings (at most five)
    · details (collapsed: per comparison, judges, sweeps) · settings and runs.
"""

from __future__ import annotations

import base64
import html
from typing import Dict, List

from mdlm_bench.report.tables import (Cell, Num, Table, _n, comparison_sections, drops_table, headline_table,
                                      judge_table, run_table, settings_line, sweep_tables, cell_text)

CAPTIONS = {
    "sensitivity": "Mean score against the displaced fraction, one line per model; bands are CIs.",
    "forest": "Pooled differences B - A with paired bootstrap CIs; red: significant after Holm.",
    "win_rates": "Judge win rates against each run's baseline, with percentile bootstrap intervals.",
}
TOP_PLOTS = ("sensitivity", "forest")

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #222; line-height: 1.35; }
h1 { font-size: 1.35em; margin: 0 0 0.2em 0; }
h2 { font-size: 1.1em; margin: 1em 0 0.3em 0; }
h3 { font-size: 0.95em; margin: 0.8em 0 0.2em 0; }
p.meta, p.note { color: #666; font-size: 0.8em; margin: 0.2em 0 0.6em 0; }
table { border-collapse: collapse; margin: 0.3em 0 0.6em 0; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 0.15em 0.45em; text-align: left; }
th { background: #f0f0f0; }
td.n { text-align: right; white-space: nowrap; }
tr.sig td.verdict { color: #a01010; font-weight: 600; }
.top { display: grid; grid-template-columns: auto minmax(360px, 1fr); gap: 1.2em; align-items: start; }
.top > div { min-width: 0; overflow-x: auto; }
.top h2 { margin-top: 0.2em; }
@media (max-width: 1000px) { .top { grid-template-columns: minmax(0, 1fr); } }
figure { margin: 0 0 0.6em 0; }
figure img { max-width: 100%; display: block; }
figcaption { color: #666; font-size: 0.75em; }
ul.findings li { margin: 0.25em 0; }
details { margin: 0.3em 0; border: 1px solid #ddd; border-radius: 4px; padding: 0.2em 0.6em; }
summary { cursor: pointer; font-weight: 600; font-size: 0.9em; }
"""

def _comparison_summary(report: dict, i: int) -> List[Cell]:
    """'name: k of n per-task differences significant' (numbers as pointers into report.json)."""
    ref = f"/comparisons/{i}"
    return [report["comparisons"][i]["name"], ": ", _n(report, ref + "/n_significant"), " of ",
            _n(report, ref + "/n_tested"), " per-task tests significant (Holm)"]


def _sections(report: dict) -> List[tuple]:
    """[(summary cells, [tables])] of the collapsed details, in order."""
    out = [(_comparison_summary(report, i), tables) for i, tables in enumerate(comparison_sections(report))]
    out += [([t.title], [t]) for t in judge_table(report)]
    out += [([t.title], [t]) for t in sweep_tables(report)]
    return out


def _has_headline(report: dict) -> bool:
    return bool(report["headline"]["comparisons"])


# ------------------------------------------------------------------------------------------ markdown
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(t: Table, level: str = "###") -> str:
    lines = [f"{level} {t.title}", ""]
    lines.append("| " + " | ".join(_md_escape(cell_text(c)) for c in t.columns) + " |")
    numeric = [bool(t.rows) and all(not isinstance(row[k], str) for row in t.rows) for k in range(len(t.columns))]
    lines.append("|" + "".join("---:|" if n else "---|" for n in numeric))
    for row in t.rows:
        lines.append("| " + " | ".join(_md_escape(cell_text(c)) for c in row) + " |")
    if t.note:
        lines += ["", f"_{_md_escape(t.note)}_"]
    return "\n".join(lines) + "\n"


def to_markdown(report: dict, plot_files: Dict[str, str]) -> str:
    out = [f"# {report['question']}", "",
           f"_{report['producer']}, created {report['created']}. Details, settings and runs follow the "
           f"findings._", ""]
    if _has_headline(report):
        out.append(table_markdown(headline_table(report), "##"))
    for name in TOP_PLOTS:
        if name in plot_files:
            out += [f"![{CAPTIONS[name]}]({plot_files[name]})", "", f"_{CAPTIONS[name]}_", ""]
    if report.get("claims"):
        out += ["## The paper's claims", ""] + [f"- {c}" for c in report["claims"]] + [""]
    if report.get("drops"):
        out.append(table_markdown(drops_table(report), "###"))
    out += ["## Findings", ""] + [f"- {f}" for f in report["findings"]] + ["", "## Details", ""]
    for summary, tables in _sections(report):
        out += [f"<details><summary>{html.escape(cell_text(summary))}</summary>", ""]
        out += [table_markdown(t, "####") for t in tables]
        out += ["</details>", ""]
    if "win_rates" in plot_files:
        out += [f"![{CAPTIONS['win_rates']}]({plot_files['win_rates']})", ""]
    out += ["## Settings and runs", "", cell_text(settings_line(report)), "", f"Report digest {report['digest']}.",
            "", "<details><summary>Runs compared, with config digests</summary>", "",
            table_markdown(run_table(report), "####"), "</details>", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- html
def _cell_html(cell: Cell) -> str:
    if isinstance(cell, Num):
        return f'<span class="num" data-ref="{html.escape(cell.ref)}">{html.escape(cell.text)}</span>'
    if isinstance(cell, list):
        return "".join(_cell_html(c) for c in cell)
    return html.escape(str(cell))


def table_html(t: Table, level: str = "h3", table_id: str = "") -> str:
    head = "".join(f"<th>{_cell_html(c)}</th>" for c in t.columns)
    body = []
    for row in t.rows:
        sig = ' class="sig"' if row and row[-1] == "significant" else ""
        kinds = ["t" if isinstance(c, str) else "n" for c in row[:-1]] + ["verdict"]
        cells = "".join(f'<td class="{k}">{_cell_html(c)}</td>' for k, c in zip(kinds, row))
        body.append(f"<tr{sig}>{cells}</tr>\n")
    note = f'<p class="note">{html.escape(t.note)}</p>\n' if t.note else ""
    tid = f' id="{table_id}"' if table_id else ""
    return (f"<{level}>{html.escape(t.title)}</{level}>\n<table{tid}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
            f"{''.join(body)}</tbody>\n</table>\n{note}")


def _figure(name: str, png: bytes) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{name}"><img alt="{html.escape(CAPTIONS[name])}" src="data:image/png;base64,{b64}"/>'
            f"<figcaption>{html.escape(CAPTIONS[name])}</figcaption></figure>\n")


def to_html(report: dict, pngs: Dict[str, bytes]) -> str:
    parts: List[str] = [
        "<!DOCTYPE html>\n",
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n<head>\n<meta charset="utf-8"/>\n',
        f"<title>{html.escape(report['question'])}</title>\n",
        f"<style>{CSS}</style>\n</head>\n<body>\n",
        f'<h1 id="question">{html.escape(report["question"])}</h1>\n',
        f'<p class="meta">{html.escape(report["producer"])}, created {html.escape(report["created"])}. '
        f"Details, settings and runs follow the findings.</p>\n",
        '<div class="top">\n<div>\n',
    ]
    # left: the headline and, below it, the forest plot of the same rows; right: the sensitivity plot
    if _has_headline(report):
        parts.append(table_html(headline_table(report), "h2", "headline"))
    if "forest" in pngs:
        parts.append(_figure("forest", pngs["forest"]))
    parts.append("</div>\n<div>\n")
    if "sensitivity" in pngs:
        parts.append(_figure("sensitivity", pngs["sensitivity"]))
    parts.append("</div>\n</div>\n")
    if report.get("claims"):
        parts.append("<h2>The paper's claims</h2>\n<ul class=\"findings\">\n" +
                     "".join(f"<li>{html.escape(c)}</li>\n" for c in report["claims"]) + "</ul>\n")
    if report.get("drops"):
        parts.append(table_html(drops_table(report), "h3", "drops"))
    parts.append('<h2>Findings</h2>\n<ul class="findings">\n' +
                 "".join(f"<li>{html.escape(f)}</li>\n" for f in report["findings"]) + "</ul>\n")
    parts.append('<h2>Details</h2>\n')
    for summary, tables in _sections(report):
        parts.append(f"<details><summary>{_cell_html(summary)}</summary>\n"
                     + "".join(table_html(t) for t in tables) + "</details>\n")
    if "win_rates" in pngs:
        parts.append(_figure("win_rates", pngs["win_rates"]))
    parts += [
        "<h2>Settings and runs</h2>\n",
        f"<p>{_cell_html(settings_line(report))}</p>\n",
        f'<p class="meta">Report digest {html.escape(report["digest"])}.</p>\n',
        "<details><summary>Runs compared, with config digests</summary>\n", table_html(run_table(report)),
        "</details>\n</body>\n</html>\n",
    ]
    return "".join(parts)


# ---------------------------------------------------------------------------------------------- rich
def rich_table(t: Table):
    from rich.table import Table as RichTable
    from rich.text import Text

    # Text() everywhere: labels and settings may contain [brackets] that rich would read as markup
    rt = RichTable(title=Text(t.title), caption=Text(t.note) if t.note else None, caption_justify="left")
    for c in t.columns:
        rt.add_column(Text(cell_text(c)), overflow="fold")
    for row in t.rows:
        rt.add_row(*[Text(cell_text(c)) for c in row])
    return rt


def print_wide(console, renderable) -> None:
    """Print without folding when the output is a file or pipe: rich would wrap to 80 columns there,
    breaking labels over lines; use the renderable's natural width instead."""
    from rich.measure import Measurement

    if console.is_terminal:
        console.print(renderable)
        return
    need = Measurement.get(console, console.options.update(max_width=100_000), renderable).maximum
    old = console.width
    console.width = max(old, need)
    try:
        console.print(renderable)
    finally:
        console.width = old


def print_headline(report: dict, console) -> None:
    if _has_headline(report):
        print_wide(console, rich_table(headline_table(report)))


def print_tables(report: dict, console) -> None:
    from rich.text import Text

    print_wide(console, Text(report["question"], style="bold"))
    print_headline(report, console)
    print_wide(console, Text("Findings", style="bold"))
    for f in report["findings"]:
        print_wide(console, Text(f"- {f}"))
    for _, tables in _sections(report):
        for t in tables:
            print_wide(console, rich_table(t))
    print_wide(console, rich_table(run_table(report)))
    print_wide(console, Text(cell_text(settings_line(report))))
