"""`mdlm-bench generate`: decode prompts with any checkpoint."""

from __future__ import annotations

NAME = "generate"
HELP = "decode one prompt or a JSONL file of prompts"
ORDER = 20


def add_arguments(p):
    from mdlm_bench.commands._common import add_decoding_args, add_model_args

    add_model_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="a single prompt")
    src.add_argument("--input", help="JSONL with a 'prompt' field per line (optional 'uid', 'seed')")
    p.add_argument("--output", help="JSONL to write (required with --input)")
    add_decoding_args(p, tasks=False)
    p.add_argument("--seed", type=int, default=0, help="seed of the first row; row i uses seed + i unless its line sets one (default 0)")
    p.add_argument("--chat", dest="chat", action="store_true", default=True, help="apply the chat template (default)")
    p.add_argument("--no-chat", dest="chat", action="store_false", help="feed the prompt as raw text")
    p.add_argument("--batch-size", type=int, default=16, help="prompts decoded together (default 16)")
    p.add_argument("--json", action="store_true", help="print one JSON object per prompt")


def _read_prompts(path):
    import json
    from pathlib import Path

    from mdlm_bench.errors import UserError

    p = Path(path)
    if not p.is_file():
        raise UserError(f"--input '{path}' does not exist; pass a JSONL file with one {{\"prompt\": ...}} per line")
    rows = []
    with open(p, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{i}: not UTF-8 text ({e.reason}); re-save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise UserError(f"{path}:{i}: not valid JSON; fix or remove that line") from None
            if not isinstance(row, dict) or "prompt" not in row:
                raise UserError(f"{path}:{i}: missing field 'prompt'; each line needs {{\"prompt\": ...}}")
            if not isinstance(row["prompt"], (str, list)):
                raise UserError(f"{path}:{i}: 'prompt' must be a string or a list of chat messages")
            if "seed" in row and (not isinstance(row["seed"], int) or isinstance(row["seed"], bool)):
                raise UserError(f"{path}:{i}: 'seed' must be an integer, got {row['seed']!r}")
            rows.append(row)
    if not rows:
        raise UserError(f"--input '{path}' holds no prompts")
    return rows


def main(args) -> int:
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.progress import Progress

    from mdlm_bench.commands._common import apply_threads, decoding_overrides, load_model_from_args
    from mdlm_bench.config import from_dict
    from mdlm_bench.decode.config import DecodeConfig
    from mdlm_bench.errors import UserError
    from mdlm_bench.io import JsonlAppender
    from mdlm_bench.decode.prompts import encode_prompt, generate_many

    if args.input and not args.output and not args.json:
        raise UserError("--input needs --output FILE (or --json to print the results)")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.output:
        from mdlm_bench.rundir import output_file_check

        output_file_check(Path(args.output))
    cfg = from_dict(DecodeConfig, decoding_overrides(args), "decoding options")
    cfg.validate()
    apply_threads(args.threads)
    rows = _read_prompts(args.input) if args.input else [{"prompt": args.prompt}]
    console = Console(stderr=True)
    model = load_model_from_args(args)
    from mdlm_bench.decode.config import with_model_defaults

    cfg = with_model_defaults(cfg, model.meta.decode_defaults, decoding_overrides(args))  # e.g. Dream's sampler
    ids = [encode_prompt(model, r["prompt"], args.chat) for r in rows]
    for r, i in zip(rows, ids):
        cfg.validate(len(i), model.max_positions)
    seeds = [int(r.get("seed", args.seed + k)) for k, r in enumerate(rows)]
    settings = dict(cfg.to_dict(), chat=args.chat, model=model.name)

    out = JsonlAppender(args.output) if args.output else None
    with Progress(console=console, transient=True, disable=len(rows) < 2) as bar:
        task = bar.add_task("decoding", total=len(rows))

        def done(idx, results):
            bar.advance(task, len(idx))

        results = generate_many(model, ids, cfg, seeds, args.batch_size, on_batch=done)
    for k, (r, res) in enumerate(zip(rows, results)):
        rec = {"uid": r.get("uid", k), "prompt": r["prompt"], "text": res.text, "token_ids": res.token_ids,
               "nfe": res.nfe, "seed": seeds[k], "settings": settings}
        if out:
            out.write(rec)
        if args.json:
            print(json.dumps(rec, ensure_ascii=False))
        elif not out:
            print(res.text)
    if out:
        out.close()
        console.print(f"wrote {len(rows)} rows to {args.output}")
    return 0
