"""`mdlm-bench run` throughput: docs/s with batch 16 / docs/s with batch 1 on synth_copy (target >= 3).

    python benchmarks/run.py [--preset tiny] [--limit 32] [--batch 16] [--threads 1] [--repeats 5]

Each measurement is a whole `execute()` into a fresh run directory (execute resumes, so a reused
directory would decode nothing): model load, lm-eval pass, decoding, row writes and metrics. The decode
column is the time spent inside `generate_many` alone (timed by wrapping it), so the table also shows
how much of a run is fixed cost that batching cannot shrink.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# lm-eval's tqdm bars read these when tqdm is imported; the benchmark prints its own table.
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import common_args, interleaved, make_console, print_header, set_threads, target_text, verdict  # noqa: E402

TARGET = 3.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", help="random-init preset of the model under test")
    ap.add_argument("--task", default="synth_copy")
    ap.add_argument("--limit", type=int, default=32, help="documents per run")
    ap.add_argument("--batch", type=int, default=16, help="the batched variant's batch size")
    ap.add_argument("--gen-length", type=int, default=32)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--block-length", type=int, default=32)
    common_args(ap, repeats=5)
    args = ap.parse_args()

    from rich.table import Table

    import mdlm_bench.decode.prompts as prompts_mod
    from mdlm_bench.models import init_model
    from mdlm_bench.evaluate.run import RunConfig, execute

    threads = set_threads(args.threads)
    console = make_console()
    print_header(console, "run benchmark", threads, args.device)

    decode_time = {"s": 0.0}
    inner = prompts_mod.generate_many

    def timed_generate_many(*a, **k):
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            decode_time["s"] += time.perf_counter() - t0

    prompts_mod.generate_many = timed_generate_many  # run.py imports it from the module at call time
    decoding = dict(gen_length=args.gen_length, steps=args.steps, block_length=args.block_length)
    decode_s = {"batched": [], "single": []}
    docs = {}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = str(init_model(tmp / "model", preset=args.preset, seed=0))
        counter = {"n": 0}

        def run(name: str, batch_size: int):
            counter["n"] += 1
            decode_time["s"] = 0.0
            cfg = RunConfig(model=model, tasks=[args.task], limit=args.limit, batch_size=batch_size,
                            decoding=decoding, device=args.device)
            metrics = execute(cfg, out=tmp / f"run-{counter['n']}")
            docs[name] = metrics["decoding_stats"][args.task]["rows"]
            decode_s[name].append(decode_time["s"])

        t = interleaved({"batched": lambda: run("batched", args.batch), "single": lambda: run("single", 1)},
                        args.repeats, args.warmup)
    for name in decode_s:
        decode_s[name] = decode_s[name][args.warmup:]  # drop the warm-up runs

    import statistics

    r = t.ratio("single", "batched")  # same documents, so the time ratio is the docs/s ratio
    r_dec = statistics.median(a / b for a, b in zip(decode_s["single"], decode_s["batched"]))
    table = Table(title=f"mdlm-bench run, {args.task} limit {args.limit}, preset {args.preset}, "
                        f"G={args.gen_length} steps={args.steps} (median of {args.repeats} interleaved rounds)")
    for col in ("batch", "docs", "run s", "docs/s", "decode s", "other s (load, lm-eval, writes)"):
        table.add_column(col, justify="right")
    for name, bs in (("single", 1), ("batched", args.batch)):
        run_s, dec = t.median(name), statistics.median(decode_s[name])
        table.add_row(str(bs), str(docs[name]), f"{run_s:.2f}", f"{docs[name] / run_s:.1f}", f"{dec:.2f}",
                      f"{run_s - dec:.2f}")
    console.print(table)
    ratios = Table(title="throughput ratios (min-max over rounds)")
    for col in ("measure", f"batch {args.batch} / batch 1", "target", ""):
        ratios.add_column(col, justify="right")
    ratios.add_row("docs/s, whole run", f"{r:.2f}x ({t.spread('single', 'batched')})", target_text(TARGET, True),
                   verdict(r, TARGET, True))
    ratios.add_row("docs/s, decoding only", f"{r_dec:.2f}x", "(diagnostic)", "")
    console.print(ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
