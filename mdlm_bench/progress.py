"""The rich progress bars: `make_progress` for long commands (a docs/s rate and an ETA from it), `live_progress` for
lm-eval's request loops (silent when a caller already shows a live display)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text


def _rate(task):
    """Items per second: rich's recent speed, else the average since the start (a task that finishes in one
    step, e.g. one batch, has no recent speed)."""
    speed = task.finished_speed or task.speed
    if speed:
        return speed
    elapsed = task.finished_time if task.finished else task.elapsed
    return task.completed / elapsed if elapsed and task.completed else None


class RateColumn(ProgressColumn):
    def __init__(self, unit: str = "docs"):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = _rate(task)
        if not speed:
            return Text(f"… {self.unit}/s", style="progress.data.speed")
        return Text(f"{speed:.2f} {self.unit}/s" if speed < 100 else f"{speed:.0f} {self.unit}/s",
                    style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """'eta 0:01:05' while running (from the rate), 'took 0:00:03' once finished; '…' before any rate."""

    def render(self, task) -> Text:
        import datetime as _dt

        if task.finished:
            took = task.finished_time or task.elapsed or 0.0
            return Text(f"took {_dt.timedelta(seconds=int(round(took)))}", style="progress.elapsed")
        speed = _rate(task)
        if not speed or task.total is None:
            return Text("eta …", style="progress.remaining")
        left = max(0.0, (task.total - task.completed) / speed)
        return Text(f"eta {_dt.timedelta(seconds=int(round(left)))}", style="progress.remaining")


def make_progress(console, unit: str = "docs", transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(), RateColumn(unit),
        EtaColumn(), console=console, transient=transient,
    )


@contextmanager
def live_progress(desc: str, total: int):
    """A rich progress bar; yields advance(n). Silent when a caller already shows a live display."""
    from rich.console import Console
    from rich.errors import LiveError

    # stderr: a bar on stdout leaves a blank line there on every stop when stdout is not a terminal
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn("requests"),
                   EtaColumn(), transient=True, console=Console(stderr=True))
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
