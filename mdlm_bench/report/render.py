"""Render the report dict to markdown, self-contained HTML (well-formed XHTML-style markup with
base64 PNGs) and rich. All three loop over the same blocks, `document.document(report)`, so they show
the same things in the same order; each renderer only knows how to draw one block of each kind.
"""

from __future__ import annotations

import base64
import html
from typing import Dict, List

from mdlm_bench.report.document import (CAPTIONS, Bullets, Columns, Details, Figure, Heading, Meta, Para, TableBlock,
                                        Title, document, headline_blocks)
from mdlm_bench.report.tables import Cell, Num, Table, cell_text

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


def _md_block(b, plot_files: Dict[str, str]) -> List[str]:
    if isinstance(b, Title):
        return [f"# {b.text}", ""]
    if isinstance(b, Meta):
        return [f"_{b.text}_", ""]
    if isinstance(b, Heading):
        return ["#" * b.level + " " + b.text, ""]
    if isinstance(b, Para):
        return [f"_{cell_text(b.cells)}_" if b.note else cell_text(b.cells), ""]
    if isinstance(b, TableBlock):
        return [table_markdown(b.table, "#" * b.level)]
    if isinstance(b, Figure):
        if b.name not in plot_files:
            return []
        return [f"![{CAPTIONS[b.name]}]({plot_files[b.name]})", "", f"_{CAPTIONS[b.name]}_", ""]
    if isinstance(b, Bullets):
        return [f"## {b.title}", ""] + [f"- {x}" for x in b.items] + [""]
    if isinstance(b, Details):
        inner = [line for c in b.blocks for line in _md_block(c, plot_files)]
        return [f"<details><summary>{html.escape(cell_text(b.summary))}</summary>", ""] + inner + ["</details>", ""]
    if isinstance(b, Columns):
        return [line for c in b.left + b.right for line in _md_block(c, plot_files)]
    raise TypeError(f"no markdown for {type(b).__name__}")


def to_markdown(report: dict, plot_files: Dict[str, str]) -> str:
    return "\n".join(line for b in document(report) for line in _md_block(b, plot_files))


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


def _html_block(b, pngs: Dict[str, bytes]) -> str:
    if isinstance(b, Title):
        return f'<h1 id="question">{html.escape(b.text)}</h1>\n'
    if isinstance(b, Meta):
        return f'<p class="meta">{html.escape(b.text)}</p>\n'
    if isinstance(b, Heading):
        return f"<h{b.level}>{html.escape(b.text, quote=False)}</h{b.level}>\n"
    if isinstance(b, Para):
        return f'<p class="meta">{_cell_html(b.cells)}</p>\n' if b.note else f"<p>{_cell_html(b.cells)}</p>\n"
    if isinstance(b, TableBlock):
        return table_html(b.table, f"h{b.level}", b.id)
    if isinstance(b, Figure):
        return _figure(b.name, pngs[b.name]) if b.name in pngs else ""
    if isinstance(b, Bullets):
        return (f"<h2>{html.escape(b.title, quote=False)}</h2>\n<ul class=\"findings\">\n"
                + "".join(f"<li>{html.escape(x)}</li>\n" for x in b.items) + "</ul>\n")
    if isinstance(b, Details):
        return (f"<details><summary>{_cell_html(b.summary)}</summary>\n"
                + "".join(_html_block(c, pngs) for c in b.blocks) + "</details>\n")
    if isinstance(b, Columns):
        return ('<div class="top">\n<div>\n' + "".join(_html_block(c, pngs) for c in b.left) + "</div>\n<div>\n"
                + "".join(_html_block(c, pngs) for c in b.right) + "</div>\n</div>\n")
    raise TypeError(f"no HTML for {type(b).__name__}")


def to_html(report: dict, pngs: Dict[str, bytes]) -> str:
    return ("<!DOCTYPE html>\n"
            '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n<head>\n<meta charset="utf-8"/>\n'
            f"<title>{html.escape(report['question'])}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n"
            + "".join(_html_block(b, pngs) for b in document(report)) + "</body>\n</html>\n")


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


def _rich_blocks(b) -> list:
    from rich.text import Text

    if isinstance(b, Title):
        return [Text(b.text, style="bold")]
    if isinstance(b, Meta):
        return [Text(b.text, style="dim")]
    if isinstance(b, Heading):
        return [Text(b.text, style="bold")]
    if isinstance(b, Para):
        return [Text(cell_text(b.cells), style="dim" if b.note else "")]
    if isinstance(b, TableBlock):
        return [rich_table(b.table)]
    if isinstance(b, Figure):  # plots live in the files
        return []
    if isinstance(b, Bullets):
        return [Text(b.title, style="bold")] + [Text(f"- {x}") for x in b.items]
    if isinstance(b, Details):  # a terminal has no collapsed sections: the tables themselves
        return [r for c in b.blocks for r in _rich_blocks(c)]
    if isinstance(b, Columns):
        return [r for c in b.left + b.right for r in _rich_blocks(c)]
    raise TypeError(f"no terminal form for {type(b).__name__}")


def print_headline(report: dict, console) -> None:
    for b in headline_blocks(report):
        for r in _rich_blocks(b):
            print_wide(console, r)


def print_tables(report: dict, console) -> None:
    for b in document(report):
        for r in _rich_blocks(b):
            print_wide(console, r)
