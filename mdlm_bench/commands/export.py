"""`mdlm-bench export`: write a checkpoint in LLaDA's or Dream's published layout (for their own modeling code)."""

from __future__ import annotations

NAME = "export"
HELP = "write a checkpoint in LLaDA's or Dream's published layout"
ORDER = 65
DESCRIPTION = (
    "Export CKPT (any checkpoint mdlm-bench loads, e.g. a fine-tune in mdlm-bench's own layout, which transformers "
    "would wrongly read as a causal LM) to OUT in the family's published layout: LLaDA's weight names and config "
    "(model_type llada) or Dream's (model_type Dream), with the tokenizer including <slack>. LLaDA's and Dream's "
    "modeling code then load it; --code-from copies that code (*.py) from an original checkpoint."
)


def add_arguments(p) -> None:
    p.add_argument("ckpt", help="checkpoint directory or bundled name")
    p.add_argument("--layout", required=True, help="llada | dream")
    p.add_argument("--out", required=True, help="output directory (new or empty)")
    p.add_argument("--dtype", default="bfloat16", help="weights' dtype in the export: bfloat16 (default) | float32")
    p.add_argument("--code-from", default=None,
                   help="original checkpoint whose modeling files (*.py) and config fields to carry over")
    p.add_argument("--allow-pickle", action="store_true", help="allow pickled .bin weights in CKPT (can run code)")


def main(args) -> int:
    from pathlib import Path

    from mdlm_bench.errors import UserError
    from mdlm_bench.models import load_model
    from mdlm_bench.models.export import LAYOUTS, export

    if args.layout not in LAYOUTS:
        from mdlm_bench.errors import unknown

        raise unknown("layout", args.layout, LAYOUTS)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"'{out}' exists and is not an empty directory; choose a new --out")
    code = Path(args.code_from) if args.code_from else None
    if code is not None and not code.is_dir():
        raise UserError(f"--code-from '{code}' is not a directory; pass the original checkpoint's directory")
    m = load_model(args.ckpt, dtype=args.dtype, device="cpu", allow_pickle=args.allow_pickle)
    export(m, args.layout, out, code_from=code)
    print(f"wrote {args.layout} layout of {args.ckpt} to {out}")
    return 0
