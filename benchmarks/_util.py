"""Shared helpers of the speed benchmarks: threads, models, prompts, interleaved timing, result tables.

Timing protocol: every variant runs `warmup` times untimed, then `repeats` rounds; each round times every
variant once, back to back, alternating the order (A B, B A, ...) so slow drift (other jobs, thermal
state, allocator growth) hits both sides alike. A ratio is the median over rounds of the ratio measured
within the round, which is robust to a round that caught a burst of load. Wall time (perf_counter) is
the measure; process CPU time is recorded beside it because on a shared machine it does not count the
time the process waits for a core (it also misses child processes, so it is a diagnostic only).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def set_threads(n: int) -> int:
    """Fix torch's intra-op threads (and inter-op to 1); returns the count in effect."""
    import torch

    torch.set_num_threads(max(1, n))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return torch.get_num_threads()


def build_model(preset: str, device: str = "cpu", seed: int = 0):
    """A random-init MDLM of `preset`, written to a temporary directory and loaded back (float32)."""
    from mdlm_bench.models import init_model, load_model

    with tempfile.TemporaryDirectory() as tmp:
        path = init_model(Path(tmp) / preset, preset=preset, seed=seed)
        return load_model(path, dtype="float32", device=device)


def synth_prompts(model, n: int, family: str = "copy") -> List[List[int]]:
    """The first n prompts of a bundled synthetic task, chat-templated and tokenized (realistic lengths)."""
    from mdlm_bench.io import read_jsonl
    from mdlm_bench.decode.prompts import encode_prompt

    rows = read_jsonl(ROOT / "tasks" / "data" / f"synth_{family}.jsonl")[:n]
    if len(rows) < n:
        raise SystemExit(f"tasks/data/synth_{family}.jsonl holds {len(rows)} rows, {n} needed")
    return [encode_prompt(model, r["prompt"]) for r in rows]


@dataclass
class Timing:
    times: Dict[str, List[float]]  # variant -> wall seconds per round
    cpu: Dict[str, List[float]]  # variant -> process CPU seconds per round

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, num: str, den: str) -> float:
        """Median over rounds of times[num] / times[den] (each pair measured back to back)."""
        return statistics.median(a / b for a, b in zip(self.times[num], self.times[den]))

    def cpu_ratio(self, num: str, den: str) -> float:
        return statistics.median(a / b for a, b in zip(self.cpu[num], self.cpu[den]))

    def spread(self, num: str, den: str) -> str:
        r = sorted(a / b for a, b in zip(self.times[num], self.times[den]))
        return f"{r[0]:.3f}-{r[-1]:.3f}"


def interleaved(variants: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                sync: Optional[Callable[[], None]] = None) -> Timing:
    """Time each variant `repeats` times, interleaved with alternating order; see the module docstring."""
    names = list(variants)
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times: Dict[str, List[float]] = {n: [] for n in names}
    cpu: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            sync()
            c0, t0 = time.process_time(), time.perf_counter()
            variants[name]()
            sync()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return Timing(times, cpu)


def cuda_sync(device: str) -> Optional[Callable[[], None]]:
    if not str(device).startswith("cuda"):
        return None
    import torch

    return torch.cuda.synchronize


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "[green]met[/green]" if ok else "[red]missed[/red]"


def target_text(target: float, higher_is_better: bool) -> str:
    return f"{'>=' if higher_is_better else '<='} {target:g}"


def make_console():
    """A rich console; wide when piped (logs), so tables keep one line per row."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def print_header(console, title: str, threads: int, device: str) -> None:
    import torch

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    console.print(f"[bold]{title}[/bold]  torch {torch.__version__}, device {device}, torch threads {threads}, "
                  f"{os.cpu_count()} cores ({platform.machine()}), load average {load}")


def start(args, title: str):
    """Device, torch threads, console (header printed) and CUDA sync for a benchmark from `common_args`."""
    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    console = make_console()
    print_header(console, title, threads, device)
    return device, threads, console, cuda_sync(device)


def common_args(ap, repeats: int) -> None:
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: steady timings on a shared 2-core machine)")
    ap.add_argument("--repeats", type=int, default=repeats, help="timed rounds per comparison")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each variant first")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


__all__: Sequence[str] = ["ROOT", "set_threads", "build_model", "synth_prompts", "interleaved", "Timing",
                          "verdict", "target_text", "make_console", "print_header", "common_args", "ms", "cuda_sync",
                          "resolve_device", "start"]
