"""`mdlm-bench init-model`: write a random-init checkpoint with its own offline tokenizer."""

from __future__ import annotations

NAME = "init-model"
HELP = "write a random-init tiny checkpoint (for tests and examples)"
ORDER = 80


def add_arguments(p):
    p.add_argument("out_dir", help="directory to create")
    p.add_argument("--preset", default="tiny", help="tiny | small | base-50m (default tiny)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty directory")


def main(args) -> int:
    from pathlib import Path

    from mdlm_bench.errors import UserError
    from mdlm_bench.models.presets import PRESETS, init_model

    PRESETS.get(args.preset)
    from mdlm_bench.rundir import claim_dir, mark_dir

    out = Path(args.out_dir)
    if claim_dir(out, "model", flag="OUT_DIR") and not args.force:
        raise UserError(f"'{out}' exists and is not empty; choose a new directory or pass --force")
    path = init_model(out, args.preset, args.seed)
    mark_dir(out, "model")
    print(f"wrote {args.preset} checkpoint (seed {args.seed}) to {path}")
    return 0
