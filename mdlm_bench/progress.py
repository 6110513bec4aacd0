"""The rich progress bars: `make_progress` for long commands (with a docs/s rate), `live_progress` for
lm-eval's request loops (silent when a caller already shows a live display)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class RateColumn(ProgressColumn):
    def __init__(self, unit: str = "docs"):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} {self.unit}/s" if speed else f"- {self.unit}/s", style="progress.data.speed")


def make_progress(console, unit: str = "docs", transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=transient,
    )


@contextmanager
def live_progress(desc: str, total: int):
    """A rich progress bar; yields advance(n). Silent when a caller already shows a live display."""
    from rich.console import Console
    from rich.errors import LiveError

    # stderr: a bar on stdout leaves a blank line there on every stop when stdout is not a terminal
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   transient=True, console=Console(stderr=True))
    try:
        if total <= 0:
            raise LiveError("nothing to show")
        bar.start()
    except LiveError:  # rich allows one live display at a time (e.g. the caller's own bar)
        yield lambda n: None
        return
    try:
        task = bar.add_task(desc, total=total)
        yield lambda n: bar.advance(task, n)
    finally:
        bar.stop()
