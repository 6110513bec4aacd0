"""`mdlm-bench judge`: score a run's outputs with an LLM judge the way the public benchmarks do."""

from __future__ import annotations

import argparse
import os

NAME = "judge"
HELP = ("score a run with an LLM judge (Arena-Hard, AlpacaEval 2, MT-Bench, WildBench, Creative-Writing-Bench v3, "
        "or pairwise vs another run)")
ORDER = 40
BENCHES = ("arena-hard-v0.1", "arena-hard-v2.0", "arena-hard-v2.0-hard-prompt", "arena-hard-v2.0-creative-writing",
           "alpaca-eval", "mt-bench", "wildbench-score", "wildbench-reward", "creative-writing-v3", "pairwise")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bench", required=True, metavar="BENCH", help="one of: " + ", ".join(BENCHES))
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory whose outputs are judged")
    p.add_argument("--baseline", metavar="RUN_DIR|published",
                   help="what the run is compared with: another run directory, or 'published' (the benchmark's "
                        "own baseline answers; default), or for wildbench-reward a file of reference outputs "
                        "[{session_id, output}]. Required for --bench pairwise and wildbench-reward")
    p.add_argument("--bench-dir", metavar="DIR", help="benchmark files (default: $MDLM_BENCH_DATA)")
    g = p.add_argument_group("judge endpoint (any OpenAI-compatible server)")
    g.add_argument("--judge-config", metavar="YAML", help="JudgeConfig settings file; flags override it")
    g.add_argument("--judge-base-url", metavar="URL", help="e.g. http://localhost:8000/v1 "
                   "(default: $MDLM_JUDGE_BASE_URL)")
    g.add_argument("--judge-model", metavar="NAME", help="served model name (default: $MDLM_JUDGE_MODEL)")
    g.add_argument("--judge-api-key-env", metavar="VAR",
                   help="NAME of the environment variable holding the API key (default OPENAI_API_KEY; "
                        "'none' for keyless servers)")
    g.add_argument("--concurrency", type=int, metavar="N", help="requests in flight (default 8)")
    g.add_argument("--timeout", type=float, metavar="S", help="seconds per request (default 300)")
    g.add_argument("--max-retries", type=int, metavar="N", help="retries per request (default 8)")
    g.add_argument("--price-in", type=float, metavar="USD", help="price per 1M prompt tokens, for the cost estimate")
    g.add_argument("--price-out", type=float, metavar="USD", help="price per 1M completion tokens")
    g.add_argument("--cache-dir", metavar="DIR", help="response cache (default RUN_DIR/judgments/cache)")
    s = p.add_argument_group("scoring")
    s.add_argument("--ci-level", type=float, metavar="L",
                   help="confidence level (default: 0.90 for Arena-Hard v2.0 and 0.95 for v0.1, as each reports; "
                        "0.95 otherwise)")
    s.add_argument("--bootstrap-rounds", type=int, default=1000, metavar="N",
                   help="bootstrap resamples of the score intervals (default 1000)")
    s.add_argument("--bt-rounds", type=int, default=100, metavar="N", help="Bradley-Terry bootstrap refits (default 100)")
    s.add_argument("--style-control", default="none", choices=("none", "length", "markdown", "both"),
                   help="Bradley-Terry style features as arena-hard computes them (token lengths with tiktoken "
                        "when installed: pip install 'mdlm-bench[judge]'; else a regex word count; default none)")
    s.add_argument("--difficulty", metavar="PATH",
                   help="AlpacaEval's public length-control data (df_gamed.csv, instruction_difficulty.csv from the "
                        "hub dataset tatsu-lab/alpaca_eval): a file or the directory holding them. Default: "
                        "BENCH_DIR/alpaca-eval/, else the Hugging Face cache (downloaded when online). With "
                        "df_gamed.csv the LC win rate is the leaderboard's (length_controlled_v1); without it a "
                        "labelled variant")
    s.add_argument("--pairwise-prompt", default="generic", choices=("generic", "arena-hard"),
                   help="pairwise judge prompt: the packaged generic one, or arena-hard-v0.1's from --bench-dir "
                        "(default generic)")
    s.add_argument("--task", action="append", metavar="TASK", help="pairwise: judge only this task (repeatable)")
    s.add_argument("--length-margin", type=int, default=500, metavar="K",
                   help="wildbench-reward: a plain win by an answer more than K characters longer than the other "
                        "counts as a tie (WildBench's rule; default 500, -1 for none)")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    s.add_argument("--allow-partial", action="store_true",
                   help="judge a run that covers only some of the benchmark's prompts (e.g. one limited to N documents per task); "
                        "the summary and report say 'partial: N/TOTAL prompts, not comparable with the leaderboard'")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _judge_config(args):
    from mdlm_bench.config import from_dict, load_yaml
    from mdlm_bench.errors import UserError
    from mdlm_bench.judge.config import JudgeConfig

    data = load_yaml(args.judge_config, "judge config") if args.judge_config else {}
    if not isinstance(data or {}, dict):
        raise UserError(f"judge config '{args.judge_config}' must be a YAML mapping (base_url: ..., model: ...), "
                        f"not a {type(data).__name__}")
    data = dict(data or {})
    flags = {"base_url": args.judge_base_url, "model": args.judge_model, "api_key_env": args.judge_api_key_env,
             "concurrency": args.concurrency, "timeout_s": args.timeout, "max_retries": args.max_retries,
             "price_in_per_m": args.price_in, "price_out_per_m": args.price_out, "cache_dir": args.cache_dir}
    data.update({k: v for k, v in flags.items() if v is not None})
    data.setdefault("base_url", os.environ.get("MDLM_JUDGE_BASE_URL"))
    data.setdefault("model", os.environ.get("MDLM_JUDGE_MODEL"))
    if not data.get("base_url"):
        raise UserError("no judge endpoint; pass --judge-base-url URL or set MDLM_JUDGE_BASE_URL")
    if not data.get("model"):
        raise UserError("no judge model; pass --judge-model NAME or set MDLM_JUDGE_MODEL")
    from urllib.parse import urlparse

    try:
        url = urlparse(str(data["base_url"]))
    except ValueError:
        url = urlparse("")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UserError(f"judge URL '{data['base_url']}' is not an http(s) URL; pass e.g. "
                        "--judge-base-url http://localhost:8000/v1")
    try:
        url.port
    except ValueError:
        raise UserError(f"judge URL '{data['base_url']}' has a bad port; pass e.g. http://localhost:8000/v1") from None
    return from_dict(JudgeConfig, data, f"judge config '{args.judge_config}'" if args.judge_config else "judge config")


def main(args) -> int:
    import sys

    from rich.console import Console

    from mdlm_bench.config import from_dict
    from mdlm_bench.errors import unknown
    from mdlm_bench.judge.config import JudgeOptions
    from mdlm_bench.judge.runner import judge_run, print_summary

    if args.bench not in BENCHES:
        raise unknown("judge benchmark", args.bench, BENCHES)
    cfg = _judge_config(args)
    opts = from_dict(JudgeOptions, {
        "bench": args.bench, "run_dir": args.run, "baseline": args.baseline, "bench_dir": args.bench_dir,
        "ci_level": args.ci_level, "bootstrap_rounds": args.bootstrap_rounds, "bt_rounds": args.bt_rounds,
        "style_control": args.style_control, "difficulty_file": args.difficulty,
        "pairwise_prompt": args.pairwise_prompt, "tasks": args.task, "seed": args.seed,
        "allow_partial": args.allow_partial, "length_margin": args.length_margin}, "judge options")
    err = Console(stderr=True)
    summary = judge_run(cfg, opts, console=err, show_progress=not args.no_progress)
    print_summary(summary, Console())
    if summary.get("partial"):
        print(f"note: {summary['partial']['label']}", file=sys.stderr)
    usage = summary["usage_this_run"]
    from mdlm_bench.judge.client import UsageStats

    stats = UsageStats(**{k: usage[k] for k in ("requests", "retries", "cache_hits", "failures", "prompt_tokens",
                                                  "completion_tokens")})
    print(stats.describe(cfg))
    if not summary["complete"]:
        cause = _failure_cause(opts.run_dir, summary.get("bench") or args.bench)
        print(f"warning: {summary['failed_games']} of {summary['n_games']} games failed{cause}; run the same command "
              f"again to retry them (finished games are kept)", file=sys.stderr)
        return 1
    return 0


def _failure_cause(run_dir: str, bench: str) -> str:
    """' (most often: <error>)' from the failed rows of the judgments file, so the cause is named."""
    from collections import Counter
    from pathlib import Path

    from mdlm_bench.io import read_jsonl
    from mdlm_bench.judge.runner import judgments_paths

    rows = read_jsonl(judgments_paths(Path(run_dir), bench)[0], warn=False)
    errors = Counter(" ".join(str(r.get("error") or "unknown error").split())[:160] for r in rows
                     if r.get("status") == "failed")
    if not errors:
        return ""
    what, n = errors.most_common(1)[0]
    hint = ""
    if "Malformed" in what or "JSON" in what or "choices" in what:
        hint = " - the endpoint answers without a usable chat completion; check that --judge-base-url is an " \
               "OpenAI-compatible /v1 endpoint"
    return f" ({'every one' if n == sum(errors.values()) else f'{n} of them'}: {what}{hint})"
