"""CPU threads for `mdlm-bench run`: wall time of a 32-row run at each thread count, side by side.

    python benchmarks/threads.py [--threads 1 2] [--repeats 3] [--task synth_copy] [--model tiny-ce]

Each measurement is a whole `mdlm-bench run --threads N` (fresh run directory, 32 rows of a bundled
synth task, default decoding) in a subprocess; thread counts alternate order across rounds. The load
average before and after is printed, because on a shared machine the answer depends on it: torch's
worker threads spin while they wait for a core that another process holds.
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


def one_run(n: int, task: str, model: str, limit: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TQDM_DISABLE="1")
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(k, None)  # --threads alone decides
        cmd = [sys.executable, "-m", "mdlm_bench", "run", "--model", model, "--tasks", task, "--limit", str(limit),
               "--threads", str(n), "--out", str(Path(tmp) / "run")]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=tmp, env=env, check=True, capture_output=True)
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--task", default="synth_copy")
    ap.add_argument("--model", default="tiny-ce")
    ap.add_argument("--limit", type=int, default=32)
    args = ap.parse_args()
    load0 = os.getloadavg()
    times = {n: [] for n in args.threads}
    for r in range(args.repeats):
        for n in (args.threads if r % 2 == 0 else args.threads[::-1]):
            times[n].append(one_run(n, args.task, args.model, args.limit))
    load1 = os.getloadavg()
    print(f"{args.limit}-row `mdlm-bench run --model {args.model} --tasks {args.task}`, {os.cpu_count()} cores, "
          f"load average before {load0[0]:.2f} after {load1[0]:.2f} (1 min)")
    base = statistics.median(times[args.threads[0]])
    for n, ts in times.items():
        m = statistics.median(ts)
        print(f"  --threads {n}: {m:.2f} s median [{min(ts):.2f}-{max(ts):.2f}], "
              f"{m / base:.2f}x the time of --threads {args.threads[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
