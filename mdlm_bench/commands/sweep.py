"""`mdlm-bench sweep`: decode the same prompts at several perturbation levels and compare."""

from __future__ import annotations

NAME = "sweep"
HELP = "shift-sensitivity sweep: the same prompts and seeds at several perturbation fractions"
ORDER = 15


def add_arguments(p):
    from mdlm_bench.commands import run as run_cmd

    run_cmd.add_arguments(p, sweep=True)
    p.add_argument("--task", dest="task", help="alias of --tasks")
    p.add_argument("--fractions", help="comma-separated fractions (default: the spec's sweep block, else "
                                       "0,0.005,0.01,0.02,0.05)")
    p.add_argument("--judge-bench", action="append", metavar="BENCH",
                   help="with a judge endpoint: judge every level on this bench (repeatable; default pairwise vs "
                        "level 0; e.g. wildbench-score, creative-writing-v3, wildbench-reward; see 'ls judges')")


def main(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from mdlm_bench.commands.run import build_config
    from mdlm_bench.errors import UserError
    from mdlm_bench.perturb.spec import sweep_defaults
    from mdlm_bench.evaluate.sweep import SweepConfig, execute_sweep, print_sweep

    console = Console(stderr=True)
    if args.task and not args.tasks:
        args.tasks = args.task
    if not args.perturbation:
        raise UserError("sweep needs --perturbation SPEC (e.g. --perturbation perturbations/shift.yaml)")
    if not args.model and not args.config:
        raise UserError("sweep needs --model (a checkpoint directory or bundled name)")
    defaults = sweep_defaults(args.perturbation)
    if args.seeds is None and defaults.get("seeds"):
        args.seeds = ",".join(str(s) for s in defaults["seeds"])
    cfg = build_config(args)
    from mdlm_bench.evaluate.tasks import resolve

    resolve(cfg.tasks)
    if args.fractions:
        try:
            fractions = [float(x) for x in args.fractions.split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--fractions must be comma-separated numbers, got '{args.fractions}'") from None
    else:
        fractions = [float(x) for x in defaults.get("fractions", [0.0, 0.005, 0.01, 0.02, 0.05])]
    sweep = SweepConfig(run=cfg, fractions=fractions, judge_benches=args.judge_bench or ["pairwise"]).validate()
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{Path(cfg.model).name}-{cfg.digest()}"
    from mdlm_bench.rundir import claim_dir

    claim_dir(out, "sweep", args.overwrite)
    console.print(f"sweep directory: [bold]{out.resolve()}[/bold]", soft_wrap=True)
    from mdlm_bench.evaluate.reference import JUDGE_HINT, judge_config_from

    judge = judge_config_from(args)
    summary = execute_sweep(sweep, out, overwrite=args.overwrite, console=console, judge=judge)
    if judge is None:
        console.print(JUDGE_HINT.replace("each model's level 0", "level 0"))
    print_sweep(summary, Console())
    console.print(f"wrote {out / 'sweep.json'} and {out / 'sweep.png'}")
    return 0
