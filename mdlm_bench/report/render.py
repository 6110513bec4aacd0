"""Render the report dict to markdown, self-contained HTML (well-formed XHTML-style markup with
base64 PNGs) and rich. All three loop over the same blocks, `document.document(report)`, so they show
the same things in the same order; each renderer only knows how to draw one block of each kind.
"""

from __future__ import annotations

import base64
import html
from typing import Dict, List, Optional

from mdlm_bench.report.document import (CAPTIONS, Bullets, Columns, Details, Figure, Heading, Meta, Para, Pointer,
                                        TableBlock, Title, Verdicts, document, headline_blocks,
                                        verdict_blocks)
from mdlm_bench.report.tables import Cell, Num, Table, cell_text, drops_table

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
@media (max-width: 1000px) { .top, .verdicts { grid-template-columns: minmax(0, 1fr); } }
.verdicts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0.8em;
            margin: 0.4em 0 0.6em 0; }
.claim { border: 2px solid #999; border-radius: 6px; padding: 0.35em 0.7em; min-width: 0; overflow-x: auto; }
.claim h2 { font-size: 0.95em; margin: 0 0 0.15em 0; }
.claim p.word { font-size: 1.2em; font-weight: 700; margin: 0; }
.claim p.why { font-size: 0.8em; margin: 0.15em 0 0.3em 0; }
.claim table { font-size: 0.75em; margin: 0.2em 0; }
.claim p.note { font-size: 0.7em; margin: 0.1em 0; }
.claim.holds { border-color: #1a7f37; } .claim.holds p.word { color: #1a7f37; }
.claim.part { border-color: #b08800; } .claim.part p.word { color: #8a6a00; }
.claim.fails { border-color: #b42318; } .claim.fails p.word { color: #b42318; }
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


def table_markdown(t: Table, level: str = "###", title: bool = True) -> str:
    lines = [f"{level} {t.title}", ""] if title else []
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
    if isinstance(b, Verdicts):
        return [line for v in b.boxes for line in
                [f"## {v.table.title}: **{v.word}**", "", v.sentence, "", table_markdown(v.table, title=False)]]
    if isinstance(b, Pointer):
        return [b.text, ""]
    raise TypeError(f"no markdown for {type(b).__name__}")


def blocks_markdown(blocks, plot_files: Optional[Dict[str, str]] = None) -> str:
    return "\n".join(line for b in blocks for line in _md_block(b, plot_files or {}))


def to_markdown(report: dict, plot_files: Dict[str, str]) -> str:
    return "\n".join(line for b in document(report) for line in _md_block(b, plot_files))


# ---------------------------------------------------------------------------------------------- html
def _cell_html(cell: Cell) -> str:
    if isinstance(cell, Num):
        scale = f' data-scale="{cell.scale:g}"' if cell.scale != 1.0 else ""
        return f'<span class="num" data-ref="{html.escape(cell.ref)}"{scale}>{html.escape(cell.text)}</span>'
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


_WORD_CLASS = {"holds": "holds", "holds in part": "part", "does not hold": "fails"}


def _verdict_html(v) -> str:
    t = v.table
    inner = table_html(t, "h2").split("\n", 1)[1]  # the table without its heading: the box has its own
    return (f'<section class="claim {_WORD_CLASS.get(v.word, "")}" id="verdict-{v.tag}">\n'
            f"<h2>{html.escape(t.title, quote=False)}</h2>\n<p class=\"word\">{html.escape(v.word)}</p>\n"
            f'<p class="why">{html.escape(v.sentence)}</p>\n{inner}</section>\n')


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
    if isinstance(b, Verdicts):
        return '<div class="verdicts" id="verdicts">\n' + "".join(_verdict_html(v) for v in b.boxes) + "</div>\n"
    if isinstance(b, Pointer):
        return ""  # the HTML holds those tables itself
    raise TypeError(f"no HTML for {type(b).__name__}")


def to_html(report: dict, pngs: Dict[str, bytes]) -> str:
    return ("<!DOCTYPE html>\n"
            '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n<head>\n<meta charset="utf-8"/>\n'
            f"<title>{html.escape(report['question'])}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n"
            + "".join(_html_block(b, pngs) for b in document(report)) + "</body>\n</html>\n")


# ---------------------------------------------------------------------------------------------- rich
WIDTH = 100  # the terminal output's width when stdout is a file or pipe (and its test's limit)


def rich_table(t: Table, title: bool = True):
    """A rich table of WIDTH columns at most where it can be: no padding beyond the one-space rule between
    columns, numbers never wrapped, text wrapped at spaces only when the row does not fit."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    # Text() everywhere: labels and settings may contain [brackets] that rich would read as markup
    rt = RichTable(title=Text(t.title, style="bold") if title else None, caption=Text(t.note) if t.note else None,
                   caption_justify="left", box=box.SIMPLE_HEAD, padding=(0, 0), title_justify="left",
                   show_edge=False, pad_edge=False)
    numeric = [bool(t.rows) and all(not isinstance(row[k], str) for row in t.rows) for k in range(len(t.columns))]
    # identifiers (cells without spaces, e.g. metric names) are never folded either: long text wraps at spaces
    ident = [bool(t.rows) and all(" " not in cell_text(row[k]) for row in t.rows) for k in range(len(t.columns))]
    for c, num, idn in zip(t.columns, numeric, ident):
        rt.add_column(Text(cell_text(c)), justify="right" if num else "left", no_wrap=num or idn, overflow="fold")
    for row in t.rows:
        rt.add_row(*[Text(cell_text(c), style="bold" if cell_text(c) == "significant" else "") for c in row])
    return rt


def print_wide(console, renderable) -> None:
    """Print at the terminal's width; to a file or pipe at WIDTH columns (rich would use 80 there)."""
    if console.is_terminal:
        console.print(renderable)
        return
    old = console.width
    console.width = WIDTH
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
    if isinstance(b, Verdicts):
        style = {"holds": "bold green", "holds in part": "bold yellow", "does not hold": "bold red"}
        out = []
        for v in b.boxes:
            out += [Text.assemble((v.table.title + ": ", "bold"), (v.word, style.get(v.word, "bold"))),
                    Text(v.sentence), rich_table(v.table, title=False)]
        return out
    if isinstance(b, Pointer):
        return [Text(b.text, style="dim")]
    raise TypeError(f"no terminal form for {type(b).__name__}")


def print_headline(report: dict, console) -> None:
    """Verdict boxes, the pooled table and the drop table."""
    blocks = verdict_blocks(report) + headline_blocks(report)
    if report.get("drops"):
        blocks.append(TableBlock(drops_table(report), 3, "drops"))
    for b in blocks:
        for r in _rich_blocks(b):
            print_wide(console, r)


def print_tables(report: dict, console) -> None:
    """The terminal form of the report: the first screen's blocks and the short tables, WIDTH columns."""
    for b in document(report, terminal=True):
        for r in _rich_blocks(b):
            print_wide(console, r)
