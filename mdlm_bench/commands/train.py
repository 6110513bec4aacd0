"""`mdlm-bench train`: fine-tune a masked diffusion LM with the CE or slack-CTC loss (accelerate-ready)."""

from __future__ import annotations

NAME = "train"
HELP = "train a model with a recipe (CE or slack-CTC); works under 'accelerate launch'"
ORDER = 60
DESCRIPTION = (
    "Train with a recipe from training/ (e.g. training/tiny-slack-ctc.yaml). Writes OUT/ (final model), "
    "OUT/train_log.jsonl, OUT/loss.png and OUT/state/ for --resume. For several GPUs or machines run "
    "'accelerate launch --config_file training/accelerate/ddp.yaml -m mdlm_bench train ...'."
)


def add_arguments(p) -> None:
    p.add_argument("--recipe", required=True, help="recipe YAML (see training/*.yaml)")
    p.add_argument("--model", default=None, help="initial checkpoint, bundled name or preset:<name> "
                                                  "(overrides the recipe's model)")
    p.add_argument("--data", default=None, help="JSONL/JSON/parquet/arrow file, dataset directory, hub dataset id or "
                                                 "'synthetic' (overrides the recipe)")
    p.add_argument("--data-subset", default=None, help="the dataset's config name (overrides the recipe)")
    p.add_argument("--data-split", default=None, help="the dataset's split (overrides the recipe)")
    p.add_argument("--output", "-o", required=True, help="output directory")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this global step (the schedule still follows the recipe's steps)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --output")
    p.add_argument("--allow-pickle", action="store_true",
                   help="--resume: also load pickled (accelerate) state, which can run code; only for trusted dirs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--eval-per-family", type=int, default=None,
                   help="after training on data: synthetic, decode this many held-out rows per task family and "
                        "write OUT/eval.json (default 50 for synthetic data, 0 = skip)")


def main(args) -> int:
    from pathlib import Path

    from mdlm_bench.train.recipe import load_recipe
    from mdlm_bench.train.trainer import train

    recipe = load_recipe(args.recipe, {"model": args.model, "data": args.data, "data_subset": args.data_subset,
                                       "data_split": args.data_split})
    summary = train(recipe, Path(args.output), max_steps=args.max_steps, resume=args.resume, quiet=args.quiet,
                    allow_pickle=args.allow_pickle)
    _show(summary)
    n_eval = args.eval_per_family if args.eval_per_family is not None else (50 if recipe.data == "synthetic" else 0)
    if n_eval > 0 and recipe.data == "synthetic" and _under_deepspeed():
        n_eval = 0  # ZeRO-3 would partition the reloaded model too; evaluate in a separate, plain process
        if _is_main():
            import sys

            print(f"note: no eval.json under DeepSpeed; evaluate {args.output} in a plain process "
                  "(mdlm-bench run --model ...)", file=sys.stderr)
    if n_eval > 0 and recipe.data == "synthetic" and _is_main():
        from mdlm_bench.train.evaluate import write_eval

        write_eval(Path(args.output), n_eval, gen_length=recipe.canvas, quiet=args.quiet)
    return 0


def _under_deepspeed() -> bool:
    import os

    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def _is_main() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


def _show(summary) -> None:
    if not _is_main():
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="training finished")
    t.add_column("setting")
    t.add_column("value")
    for k in ("out", "start_step", "steps", "final_loss", "seconds", "processes", "truncated", "skipped",
              "bad_rows_skipped"):
        v = summary.get(k)
        t.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    Console(stderr=True).print(t)
