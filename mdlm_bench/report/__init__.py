"""Paired significance reports over run directories and sweeps (`mdlm-bench report`).

    build_report(run_dirs, sweep_dirs, out_dir, labels=None, comparisons=None,
                 names=None, question=None)                  -> report.json content
    print_report(report, console)                            -> rich tables (headline first)

out_dir receives report.json (every number shown anywhere), report.md, report.html (self-contained,
plots embedded as base64 PNG) and plots/*.png. Both documents lead with the answer: the question,
the headline pooled over tasks, the sensitivity and forest plots and at most five findings; the
per-comparison tables, settings and runs follow in collapsed sections. Paths are relative to out_dir.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from mdlm_bench.errors import UserError
from mdlm_bench.report.settings import ReportSettings

__all__ = ["build_report", "print_report", "print_headline", "write_headline", "ReportSettings"]


def _clean(x: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None (shown as 'n/a')."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _pairs(n_runs: int, comparisons: Optional[Sequence[Tuple[int, int]]]) -> List[Tuple[int, int]]:
    if comparisons is None:
        return [(0, i) for i in range(1, n_runs)]
    out = []
    for pair in comparisons:
        a, b = (int(v) for v in pair)
        if not (0 <= a < n_runs and 0 <= b < n_runs) or a == b:
            raise UserError(f"comparison {a}:{b} is not a pair of two different run indices in 0..{n_runs - 1}; "
                            f"fix the pair")
        out.append((a, b))
    return out


def _sweep_labels(sweeps: List[dict]) -> None:
    names = [s["label"] for s in sweeps]
    for s in sweeps:
        if names.count(s["label"]) > 1:
            s["label"] = f"{s['label']} ({Path(s['path']).name})"


def _rel(path, out_dir: Path) -> str:
    """A path as the report refers to it: relative to the report directory, never absolute."""
    return Path(os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())).as_posix()


def _question(report: dict) -> str:
    labels = [r["label"] for r in report["runs"]] or [sw["label"] for sw in report["sweeps"]]
    metrics = report["headline"]["metrics"] or sorted(
        {m for sw in report["sweeps"] for lv in sw["levels"] for m in lv["metrics"]})
    what = " and ".join(m.replace("_", " ") for m in metrics[:2]) or "their scores"
    if len(report["comparisons"]) == 1:
        c = report["comparisons"][0]
        return f"Does {c['label_b']} differ from {c['label_a']} on {what}, pooled over tasks?"
    if report["comparisons"]:
        return (f"Which of {len(report['comparisons'])} paired comparisons between "
                f"{len(labels)} runs differ on {what}, pooled over tasks?")
    return f"How does {what} change with the share of tokens displaced for {', '.join(labels)}?"


def _run_entry(run, out_dir: Path) -> dict:
    from mdlm_bench.report.tables import display

    info = dict(run.info)
    info["path"] = _rel(info["path"], out_dir)
    info["judges"] = [{**j, "file": _rel(j["file"], out_dir)} if j.get("file") else j for j in info["judges"]]
    judges = [f"{j['bench']}: {j.get('judge_model')} ({j['kind']}"
              + (f" vs {j.get('baseline')})" if j["kind"] == "pairwise" else ")")
              + (f" [{j['partial']['label']}]" if j.get("partial") else "") for j in info["judges"]]
    info["display"] = {
        "models": display(info["models"]), "checkpoints": display(info["checkpoints"]),
        "decoding": display(info["decoding"]), "perturbations": display(info["perturbations"]),
        "seeds": display(info["seeds"]), "judges": "; ".join(judges) if judges else "n/a",
    }
    return info


def build_report(run_dirs: List[Path], sweep_dirs: List[Path], out_dir: Path, labels: Optional[List[str]] = None,
                 comparisons: Optional[List[Tuple[int, int]]] = None, *, names: Optional[List[str]] = None,
                 question: Optional[str] = None, settings: Optional[ReportSettings] = None,
                 console=None, extend=None) -> dict:
    """Compare runs pairwise (default: each run against run 0), add sweeps, write the report files and
    return the content of report.json. `names`: one display name per comparison (default "A → B");
    `question`: the one line the report answers (default: made from the runs and metrics).
    `console` (rich) turns on a progress bar."""
    from mdlm_bench import __version__
    from mdlm_bench.config import digest, provenance
    from mdlm_bench.io import atomic_write_bytes, atomic_write_text, write_json
    from mdlm_bench.report import compare, headline, load, plots, render, summary

    from mdlm_bench.rundir import claim_dir, locked, mark_dir

    s = settings or ReportSettings()
    claim_dir(Path(out_dir), "report")
    run_dirs = [Path(p) for p in run_dirs]
    sweep_dirs = [Path(p) for p in sweep_dirs or []]
    if not run_dirs and not sweep_dirs:
        raise UserError("nothing to report; pass run directories (RUN_A RUN_B ...) and/or --sweep SWEEP_DIR")
    if labels is not None and len(labels) != len(run_dirs):
        raise UserError(f"{len(labels)} labels for {len(run_dirs)} runs; give one label per run directory")
    labels = list(labels) if labels is not None else load.default_labels(run_dirs)
    pairs = _pairs(len(run_dirs), comparisons)
    if names is not None and len(names) != len(pairs):
        raise UserError(f"{len(names)} names for {len(pairs)} comparisons; give one name per comparison")

    # Read and check everything before writing anything, so bad input leaves out_dir as it was.
    runs = [load.load_run(p, lb) for p, lb in zip(run_dirs, labels)]
    sweeps = [load.load_sweep(p) for p in sweep_dirs]
    _sweep_labels(sweeps)
    comps = []
    if console is not None and pairs:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("comparing runs", total=len(pairs))
            for a, b in pairs:
                comps.append(compare.compare_runs(runs[a], runs[b], a, b, s))
                progress.advance(task)
    else:
        comps = [compare.compare_runs(runs[a], runs[b], a, b, s) for a, b in pairs]
    for k, c in enumerate(comps):
        c["name"] = names[k] if names else f"{c['label_a']} → {c['label_b']}"
    corrections = compare.fill_scores_and_corrections(comps, s)
    for c in comps:
        tested = [r for r in c["benchmarks"] if r["p_holm"] is not None]
        c["n_tested"], c["n_significant"] = len(tested), sum(bool(r["significant"]) for r in tested)
    judge = compare.judge_section(runs, s)
    head = headline.pooled(runs, pairs, names, s)
    out_dir = Path(out_dir)
    for sw in sweeps:
        sw["path"] = _rel(sw["path"], out_dir)

    settings_out = {**s.__dict__, "ci_percent": s.ci_level * 100}
    inputs = {"runs": [{"path": _rel(r["path"], out_dir), "digest": r["digest"]} for r in (run.info for run in runs)],
              "sweeps": [_rel(p, out_dir) for p in sweep_dirs], "comparisons": pairs}
    report = _clean({
        "kind": "report",
        "producer": f"mdlm-bench {__version__} report",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "digest": digest({"inputs": inputs, "settings": settings_out}),
        "inputs": inputs,
        "settings": settings_out,
        "provenance": provenance(),
        "question": question,
        "headline": head,
        "runs": [_run_entry(r, out_dir) for r in runs],
        "sweeps": sweeps,
        "comparisons": comps,
        "corrections": corrections,
        "judge": judge,
    })
    for c in report["comparisons"]:
        for row in c["benchmarks"]:
            row["summary"] = summary.benchmark_sentence(row, c["label_a"], c["label_b"],
                                                        report["settings"]["ci_percent"])
    report["question"] = report["question"] or _question(report)
    report["findings"] = summary.findings(report)
    if extend is not None:  # e.g. the reference experiment's drop comparisons and claims, rendered after the top
        extend(report)

    pngs = plots.render_all(report)
    report["plots"] = {name: f"plots/{name}.png" for name in pngs}
    claim_dir(out_dir, "report")
    with locked(out_dir, "report directory"):
        mark_dir(out_dir, "report")
        for name, png in pngs.items():
            atomic_write_bytes(out_dir / report["plots"][name], png)
        write_json(out_dir / "report.json", report)
        atomic_write_text(out_dir / "report.md", render.to_markdown(report, report["plots"]))
        atomic_write_text(out_dir / "report.html", render.to_html(report, pngs))
    return report


def print_report(report: dict, console) -> None:
    """The report as rich output: headline and findings first, then every table."""
    from mdlm_bench.report.render import print_tables

    print_tables(report, console)


def print_headline(report: dict, console, headline: Optional[dict] = None) -> None:
    """The first screen in the terminal: the verdict boxes (reference runs), the pooled table and the drop
    table, from the same tables and number formats as the files (`headline` is kept for callers)."""
    from mdlm_bench.report import render

    render.print_headline(report, console)


def write_headline(out_dir: Path, report: dict, headline: dict) -> None:
    """headline.json (the reference's headline, drops and claims) and headline.md beside the report: the
    verdict boxes, the pooled table and the drop table, written by the report's own renderer."""
    from mdlm_bench.io import atomic_write_text, write_json
    from mdlm_bench.report.document import TableBlock, verdict_blocks
    from mdlm_bench.report.render import blocks_markdown
    from mdlm_bench.report.tables import drops_table, headline_table

    write_json(Path(out_dir) / "headline.json", headline)
    blocks = [TableBlock(headline_table(report), 2)] + verdict_blocks(report)
    if report.get("drops"):
        blocks.append(TableBlock(drops_table(report), 2))
    atomic_write_text(Path(out_dir) / "headline.md", blocks_markdown(blocks))
