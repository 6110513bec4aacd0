"""`mdlm-bench make-data`: write the synthetic, exactly checkable instruction data as JSONL."""

from __future__ import annotations

NAME = "make-data"
HELP = "write the synthetic task data (copy, reverse, sort, count, arithmetic, spell, lookup) as JSONL"
ORDER = 59


def add_arguments(p) -> None:
    p.add_argument("--output", "-o", required=True, help="JSONL file to write")
    p.add_argument("--per-family", type=int, default=1000, help="rows per task family (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0, as training uses; evaluation uses 1)")
    p.add_argument("--families", default=None, help="comma-separated subset of families (default all)")


def main(args) -> int:
    import json

    from mdlm_bench.errors import UserError
    from mdlm_bench.io import atomic_write_text
    from mdlm_bench.train.synthetic import generate

    if args.per_family < 1:
        raise UserError(f"--per-family must be >= 1 (got {args.per_family})")
    from pathlib import Path

    from mdlm_bench.rundir import output_file_check

    output_file_check(Path(args.output))
    fams = None
    if args.families is not None:
        fams = [f.strip() for f in args.families.split(",") if f.strip()]
        if not fams:
            from mdlm_bench.train.synthetic import FAMILIES

            raise UserError(f"--families '{args.families}' names no family; pass some of {', '.join(FAMILIES)}, "
                            "or leave the flag out for all")
    rows = generate(args.per_family, seed=args.seed, families=fams)
    atomic_write_text(args.output, "".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} rows to {args.output}")
    return 0
