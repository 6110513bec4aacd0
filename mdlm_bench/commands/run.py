"""`mdlm-bench run`: evaluate a checkpoint on tasks (the main job). No arguments: the reference experiment."""

from __future__ import annotations

NAME = "run"
HELP = "evaluate a model on tasks, optionally perturbed (no arguments: the bundled reference experiment)"
ORDER = 10


def add_arguments(p, sweep: bool = False):
    """run's flags; `sweep`: the sweep command's share of them (no --fraction, no reference experiment)."""
    from mdlm_bench.commands._common import add_decoding_args, add_model_args

    p.add_argument("--config", help="RunConfig YAML (flags given here override it), or a protocol config "
                                    "(models + benchmarks, e.g. reports/paper.yaml): every run, judged, one report")
    p.add_argument("--dry-run", action="store_true",
                   help="protocol config: print the plan (rows, forwards, judge requests, calibrated time) and stop")
    add_model_args(p, required=False)
    p.add_argument("--tasks", help="comma-separated task names (see 'mdlm-bench ls tasks')")
    p.add_argument("--perturbation", help="perturbation spec YAML or bundled name (see 'mdlm-bench ls perturbations')")
    if sweep:
        p.set_defaults(fraction=None)
        p.add_argument("--seeds", help="comma-separated seeds (default: the spec's sweep block, else 0)")
    else:
        p.add_argument("--fraction", type=float, help="override the spec's fraction (default: the spec's)")
        p.add_argument("--seeds", help="comma-separated seeds (default 0, or the config's)")
    p.add_argument("--limit", type=int, help="at most N documents per task (default: all)")
    p.add_argument("--batch-size", type=int, help="documents decoded together (default 16)")
    p.add_argument("--bench-dir", help="benchmark directory for open-ended sets (default $MDLM_BENCH_DATA)")
    p.add_argument("--chat", dest="chat", action="store_true", default=None,
                   help="apply the model's chat template to each prompt (default: on)")
    p.add_argument("--no-chat", dest="chat", action="store_false", help="feed each prompt as raw text")
    add_decoding_args(p)
    p.add_argument("--out", help="run directory (default runs/<model>-<digest>)" if not sweep else
                   "sweep directory (default runs/sweep-<model>-<digest>)")
    p.add_argument("--overwrite", action="store_true", help="replace a run directory made with another config")
    what = "each perturbed level against level 0" if sweep else "the reference experiment"
    p.add_argument("--judge-base-url", help=f"judge endpoint to judge {what} (default $MDLM_JUDGE_BASE_URL)")
    p.add_argument("--judge-model", help="judge model name (default $MDLM_JUDGE_MODEL)")
    p.add_argument("--judge-api-key-env", default="OPENAI_API_KEY",
                   help="name of the variable holding the judge's key (default OPENAI_API_KEY)")
    if not sweep:
        p.add_argument("--report-out", help="reference experiment: report directory (default from reports/reference.yaml)")
        p.add_argument("--reference-config", help="reference experiment settings (default reports/reference.yaml)")


def parse_seeds(text):
    from mdlm_bench.errors import UserError

    try:
        return [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got '{text}'") from None


def build_config(args):
    """RunConfig from --config YAML and flags (flags win)."""
    from mdlm_bench.commands._common import decoding_overrides
    from mdlm_bench.config import from_dict, load_yaml
    from mdlm_bench.evaluate.config import RunConfig

    base = {}
    if args.config:
        base = load_yaml(args.config, "run config") or {}
        if not isinstance(base, dict):
            from mdlm_bench.errors import UserError

            raise UserError(f"run config '{args.config}' must be a YAML mapping of RunConfig fields")
    cfg = from_dict(RunConfig, base, f"run config '{args.config}'" if args.config else "run config")
    if args.model:
        cfg.model = args.model
    if args.tasks is not None:
        cfg.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        if not cfg.tasks:
            from mdlm_bench.errors import UserError

            raise UserError(f"--tasks '{args.tasks}' names no task; pass e.g. --tasks synth_copy "
                            "(see 'mdlm-bench ls tasks')")
    if args.seeds is not None:
        cfg.seeds = parse_seeds(args.seeds)
    for flag, attr in (("limit", "limit"), ("batch_size", "batch_size"), ("bench_dir", "bench_dir"),
                       ("chat", "chat")):
        if getattr(args, flag) is not None:
            setattr(cfg, attr, getattr(args, flag))
    if args.dtype != "auto":
        cfg.dtype = args.dtype
    if args.device != "auto":
        cfg.device = args.device
    cfg.trust_remote_code = cfg.trust_remote_code or args.trust_remote_code
    cfg.allow_pickle = cfg.allow_pickle or args.allow_pickle
    if getattr(args, "attn", None):
        cfg.attn = args.attn
    cfg.decoding = {**cfg.decoding, **decoding_overrides(args)}
    if args.perturbation:
        from mdlm_bench.perturb import load_spec

        spec = load_spec(args.perturbation)
        if args.fraction is not None:
            spec = spec.with_fraction(args.fraction)
        cfg.perturbation = spec.to_dict()
    elif args.fraction is not None:
        from mdlm_bench.errors import UserError

        raise UserError("--fraction needs --perturbation SPEC (e.g. --perturbation shift)")
    where = f"run config '{args.config}'" if args.config else "run config"
    cfg.decode_config(f"{where} decoding" if args.config else "decoding options")
    cfg.spec(f"{where} perturbation")
    return cfg


def protocol_config(args):
    """The ProtocolConfig when --config names one (keys `models` and `benchmarks`), else None."""
    if not args.config:
        return None
    from mdlm_bench.config import load_yaml
    from mdlm_bench.evaluate.protocol_config import is_protocol_config, load_protocol

    if not is_protocol_config(load_yaml(args.config, "run config")):
        return None
    flags = [k for k in ("model", "tasks", "perturbation", "fraction", "seeds", "limit", "batch_size")
             if getattr(args, k) is not None]
    if flags:
        from mdlm_bench.errors import UserError

        raise UserError(f"--{flags[0].replace('_', '-')} does not apply to a protocol config ('{args.config}'); "
                        "edit the config instead")
    cfg = load_protocol(args.config)
    if args.out:
        cfg.out = args.out
    if args.report_out:
        cfg.report_out = args.report_out
    return cfg


def is_reference_call(args) -> bool:
    given = [k for k, v in vars(args).items()
             if not k.startswith("_") and k not in ("command", "dtype", "device", "threads", "judge_api_key_env", "out", "report_out",
                                                    "reference_config", "judge_base_url", "judge_model")
             and v not in (None, False)]
    return not given


def main(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from mdlm_bench.commands._common import apply_threads

    console = Console(stderr=True)
    apply_threads(args.threads)
    proto = protocol_config(args)
    if proto is not None:
        from mdlm_bench.evaluate.protocol import run_protocol

        return run_protocol(proto, console, dry_run=args.dry_run)
    if args.dry_run:
        from mdlm_bench.errors import UserError

        raise UserError("--dry-run plans a protocol config; pass --config reports/paper.yaml (or your own)")
    if is_reference_call(args):
        from mdlm_bench.evaluate.reference import run_reference

        return run_reference(args, console)
    from mdlm_bench.evaluate.run import execute
    from mdlm_bench.evaluate.run import print_run_summary

    cfg = build_config(args)
    out = Path(args.out) if args.out else Path("runs") / f"{Path(cfg.model).name}-{cfg.digest()}"
    metrics = execute(cfg, out, overwrite=args.overwrite, console=console)
    stdout = Console()
    print_examples(out, stdout)
    print_run_summary(metrics, stdout, title=f"{cfg.model} ({out})")
    return 0


def print_examples(out, console, n: int = 3, width: int = 90) -> None:
    """A few decoded rows (the first of each of the first n tasks), so the text itself is seen; each
    shortened to `width` characters, the rest in generations.jsonl."""
    from rich.text import Text

    from mdlm_bench.rundir import load_generations

    def short(x) -> str:
        text = " / ".join(x) if isinstance(x, list) else str(x)
        text = " ".join(text.split())
        return text if len(text) <= width else text[:width - 1] + "…"

    first = {}
    for r in load_generations(out, required=False):
        first.setdefault(r["task"], r)
    if not first:
        return
    console.print(Text(f"decoded examples (all rows: {out}/generations.jsonl)", style="bold"), soft_wrap=True)
    for r in list(first.values())[:n]:
        score = ", ".join(f"{k} {v:g}" for k, v in (r.get("metrics") or {}).items() if isinstance(v, (int, float)))
        console.print(Text(f"{r['task']} #{r['uid']} (seed {r.get('seed', 0)})" + (f": {score}" if score else ""),
                           style="bold"))
        console.print(Text("  prompt: " + short(r.get("prompt", ""))))
        console.print(Text("  output: " + short(r.get("output", ""))))
        if r.get("reference") is not None:
            console.print(Text("  wanted: " + short(r["reference"])))
