"""Import time of the run path: seconds from `mdlm-bench run` starting to its first decoded row (goal < 2 s).

    python benchmarks/first_row.py [--task synth_copy] [--repeats 5] [--compare /path/to/other/checkout]

Starts `python -m mdlm_bench run --model tiny-ce --tasks TASK --limit 1` (one thread) in a fresh run
directory and polls generations.jsonl (rows are written as they finish) every 5 ms; also reports the
whole run's wall time. With --compare, the same command runs from another checkout (e.g. the commit
before a change), interleaved, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 2.0


def first_row(checkout: Path, task: str) -> tuple:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        gen = out / "generations.jsonl"
        env = dict(os.environ, PYTHONPATH=str(checkout), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                   TQDM_DISABLE="1", OMP_NUM_THREADS="1")  # one thread, also for checkouts without --threads
        cmd = [sys.executable, "-m", "mdlm_bench", "run", "--model", "tiny-ce", "--tasks", task, "--limit", "1",
               "--out", str(out)]
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        first = None
        while p.poll() is None:
            if first is None and gen.is_file() and gen.stat().st_size > 0:
                first = time.perf_counter() - t0
            time.sleep(0.005)
        total = time.perf_counter() - t0
        if p.returncode:
            raise SystemExit(f"run failed ({checkout}): {p.stderr.read().decode()[-500:]}")
        return first if first is not None else total, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="synth_copy")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compare", type=Path, help="another checkout to time beside this one")
    args = ap.parse_args()
    sides = {"this checkout": ROOT}
    if args.compare:
        sides[f"{args.compare}"] = args.compare
    res = {k: [] for k in sides}
    first_row(ROOT, args.task)  # warm the file cache
    for r in range(args.repeats):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            res[name].append(first_row(sides[name], args.task))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"first decoded row of `mdlm-bench run --model tiny-ce --tasks {args.task} --limit 1` (OMP_NUM_THREADS=1) "
          f"({args.repeats} runs each, median [min-max]; {os.cpu_count()} cores, load average {load})")
    for name, vals in res.items():
        f = [v[0] for v in vals]
        t = [v[1] for v in vals]
        ok = "met" if statistics.median(f) < GOAL else "missed"
        print(f"  {name}: first row {statistics.median(f):.2f} s [{min(f):.2f}-{max(f):.2f}] (goal < {GOAL:g} s: "
              f"{ok}); whole run {statistics.median(t):.2f} s [{min(t):.2f}-{max(t):.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
