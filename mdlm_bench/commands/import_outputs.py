"""`mdlm-bench import-outputs`: turn published-format model outputs into a run directory."""

from __future__ import annotations

import argparse

NAME = "import-outputs"
HELP = "make a run directory from AlpacaEval model_outputs.json or Arena-Hard model_answer/<model>.jsonl"
ORDER = 45
FORMATS = ("alpaca-eval", "arena-hard")
ARENA_BENCHES = ("arena-hard-v0.1", "arena-hard-v2.0")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="model_outputs.json (AlpacaEval) or <model>.jsonl (Arena-Hard)")
    p.add_argument("--format", required=True, choices=FORMATS, help="the file's published format")
    p.add_argument("--model-name", required=True, metavar="NAME", help="name recorded as the rows' model")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create")
    p.add_argument("--bench", choices=ARENA_BENCHES,
                   help="arena-hard: which version the answers belong to (task name of the rows)")


def main(args) -> int:
    from pathlib import Path

    from mdlm_bench.judge.importer import import_outputs

    n = import_outputs(Path(args.file), args.format, args.model_name, Path(args.out), args.bench)
    print(f"imported {n} outputs into {args.out}")
    return 0
