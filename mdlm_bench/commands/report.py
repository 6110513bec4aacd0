"""`mdlm-bench report RUN_A RUN_B [RUN_C ...] [--sweep SWEEP_DIR ...] [--out DIR]`"""

from __future__ import annotations

import argparse

NAME = "report"
HELP = "paired significance report comparing runs (and sweep sensitivity curves)"
DESCRIPTION = (
    "Compare run directories prompt by prompt (task, uid; seeds averaged within a prompt): each run against the first "
    "(RUN_A) unless --pair is given. Writes report.md, report.json and a self-contained report.html "
    "to --out and prints the tables."
)
ORDER = 60


def _pair(text: str):
    try:
        a, b = text.split(":")
        return int(a), int(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a pair like 0:1 (run indices, A:B)") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mdlm_bench.report.settings import ReportSettings

    d = ReportSettings()
    p.add_argument("runs", nargs="*", metavar="RUN", help="run directories, two or more (one only with --sweep); "
                                                          "the first is the reference A")
    p.add_argument("--sweep", action="append", default=[], metavar="SWEEP_DIR",
                   help="a sweep directory (sweep.json) for the sensitivity curves; repeat the flag for more "
                        "(--sweep S1 --sweep S2), so run directories after it stay runs")
    p.add_argument("--out", default="report", metavar="DIR", help="output directory (default: ./report)")
    p.add_argument("--label", nargs="+", default=None, metavar="NAME",
                   help="one display name per run (default: each run's model and settings)")
    p.add_argument("--pair", nargs="+", type=_pair, default=None, metavar="A:B",
                   help="compare these run indices instead of each run vs run 0, e.g. --pair 0:1 1:2 "
                        "(default: 0:1 0:2 ...)")
    p.add_argument("--ci-level", type=float, default=d.ci_level, help=f"confidence level (default {d.ci_level})")
    p.add_argument("--alpha", type=float, default=d.alpha, help=f"significance level, Holm (default {d.alpha})")
    p.add_argument("--resamples", type=int, default=d.n_resamples,
                   help=f"bootstrap resamples (default {d.n_resamples})")
    p.add_argument("--permutations", type=int, default=d.n_permutations,
                   help=f"permutation-test resamples (default {d.n_permutations})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of every random draw (default {d.seed})")


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mdlm_bench.report import build_report, print_report
    from mdlm_bench.report.settings import ReportSettings

    from mdlm_bench.errors import UserError

    if len(args.runs) == 1 and not args.sweep:
        raise UserError(f"one run directory ('{args.runs[0]}') gives nothing to compare; pass two or more "
                        "(RUN_A RUN_B ...), or add --sweep SWEEP_DIR for a sensitivity curve")
    settings = ReportSettings(ci_level=args.ci_level, n_resamples=args.resamples,
                              n_permutations=args.permutations, alpha=args.alpha, seed=args.seed)
    console = Console()
    report = build_report(args.runs, args.sweep, args.out, labels=args.label, comparisons=args.pair,
                          settings=settings, console=Console(stderr=True))  # progress on stderr
    print_report(report, console)
    console.print(f"wrote {args.out}/report.md, report.json, report.html", soft_wrap=True)
    return 0
