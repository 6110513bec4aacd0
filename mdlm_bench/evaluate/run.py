"""`mdlm-bench run`: evaluate a checkpoint on tasks, optionally under a perturbation, resumably.

Rows are keyed by (task, uid, seed) and stamped with the config digest; a re-run with the same
arguments skips what is there. Under `accelerate launch`, ranks split the rows to decode, write
their own shard files, and rank 0 merges everything in canonical order at the end, so the merged
generations.jsonl equals a single-process run's. `summarize` writes metrics.json and
`print_run_summary` shows it.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List

from mdlm_bench.config import from_dict
from mdlm_bench.decode.config import with_model_defaults
from mdlm_bench.errors import UserError
from mdlm_bench.evaluate.config import Key, RunConfig
from mdlm_bench.evaluate.rows import RowDecoder, RowStore, doc_uid, run_open_ended
from mdlm_bench.io import write_json
from mdlm_bench.rundir import CONFIG, GENERATIONS, METRICS, locked, mark_dir, read_config, row_key, write_config


def check_run_dir(out: Path, digest: str, overwrite: bool) -> bool:
    """Refuse a directory of another kind, and a run with another config unless --overwrite; True if it
    must be cleared. Reads only."""
    from mdlm_bench.rundir import claim_dir

    if not claim_dir(out, "run", overwrite):
        return False
    try:
        prev = read_config(out) if (out / CONFIG).exists() else None
    except UserError:  # a damaged config.json of a run directory: --overwrite (which the message offers) clears it
        if overwrite:
            return True
        raise
    if prev is None or prev.get("digest") == digest:
        return False
    if not overwrite:
        raise UserError(
            f"'{out}' holds a run with another config (digest {prev.get('digest')} != {digest}); "
            "choose another --out, or pass --overwrite to replace its results"
        )
    return True


def clear_run_dir(out: Path) -> None:
    for name in (GENERATIONS, METRICS, CONFIG):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / ".shards", ignore_errors=True)
    shutil.rmtree(out / "judgments", ignore_errors=True)


def summarize(rows: List[dict]) -> dict:
    """metrics.json: per task, each per-row metric's mean, its type, and n; decoding statistics."""
    tasks: Dict[str, dict] = {}
    stats: Dict[str, dict] = {}
    by_task: Dict[str, List[dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    for task, rs in by_task.items():
        names = sorted({m for r in rs for m in (r.get("metrics") or {})})
        tasks[task] = {}
        for m in names:
            vals = [float(r["metrics"][m]) for r in rs if m in (r.get("metrics") or {})]
            kind = "binary" if all(v in (0.0, 1.0) for v in vals) else "continuous"
            tasks[task][m] = {"value": sum(vals) / len(vals), "type": kind, "n": len(vals)}
        stats[task] = {
            "rows": len(rs),
            "seeds": sorted({r["seed"] for r in rs}),
            "nfe_mean": sum(r["nfe"] for r in rs) / len(rs),
            "effective_fraction_mean": sum(r.get("effective_fraction", 0.0) for r in rs) / len(rs),
            "output_chars_mean": sum(len(r["output"]) if isinstance(r["output"], str)
                                     else sum(map(len, r["output"])) for r in rs) / len(rs),
        }
    return {"tasks": tasks, "decoding_stats": stats}


def _lm_eval_pass(lm, names: List[str], cfg: RunConfig) -> Dict[Key, dict]:
    """One simple_evaluate call; returns per-row updates (metrics, target, scored output)."""
    import os
    from unittest import mock

    import lm_eval
    import lm_eval.evaluator

    from mdlm_bench.evaluate.tasks import task_manager

    os.environ.setdefault("TQDM_DISABLE", "1")  # our rich bar replaces lm-eval's per-stage tqdm bars
    # lm-eval shells out to `git describe` (an error message outside a checkout) and to pip for its
    # environment report (about a second per call); config.json already records provenance.
    with mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", lambda: None), \
            mock.patch.object(lm_eval.evaluator, "add_env_info", lambda results: None):
        res = lm_eval.simple_evaluate(model=lm, tasks=names, task_manager=task_manager(), limit=cfg.limit,
                                      log_samples=True, bootstrap_iters=0, verbosity="ERROR")
    if res is None:  # lm-eval returns results on local rank 0 only
        return {}
    seed = lm.row_hook.seed
    updates: Dict[Key, dict] = {}
    for task, samples in (res.get("samples") or {}).items():
        for s in samples:
            uid = doc_uid(s.get("doc", {}), s["doc_id"])
            metrics = {m: float(s[m]) for m in s.get("metrics", []) if m in s}
            resp = s.get("filtered_resps", s.get("resps"))
            while isinstance(resp, list) and resp:
                resp = resp[0]
            upd = {"metrics": metrics, "reference": s.get("target")}
            if isinstance(resp, str):
                upd["scored_output"] = resp
            updates[(task, uid, seed)] = upd
    return updates


def execute(cfg: RunConfig, out: Path, overwrite: bool = False, console=None) -> dict:
    """Run `cfg` into `out`; returns the metrics dict (also written to metrics.json)."""
    from mdlm_bench.dist import current
    from mdlm_bench.models import load_model
    from mdlm_bench.evaluate.tasks import resolve

    dist = current()
    from_dict(RunConfig, asdict(cfg), "run config")  # types of a config built in Python, too
    if not cfg.tasks:
        raise UserError("no tasks given; pass --tasks synth_copy (see 'mdlm-bench ls tasks')")
    tasks = resolve(cfg.tasks)
    dec = cfg.decode_config()
    cfg.spec()
    if not cfg.seeds:
        raise UserError("no seeds given; pass --seeds 0 (or a list like 0,1,2)")
    if cfg.limit is not None and cfg.limit < 1:
        raise UserError(f"--limit must be at least 1, got {cfg.limit}")
    if cfg.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    bench_dir, prompt_sets, bench_sources = None, {}, {}
    if any(t.kind == "open-ended" for t in tasks):
        from mdlm_bench.benchdata import load_bench

        for t in tasks:
            if t.kind == "open-ended":  # read (and check) every prompt file before anything is written
                prompts, bench_sources[t.name] = load_bench(t.name, cfg.bench_dir)
                bench_dir = bench_sources[t.name].get("path", bench_dir)
                for i, p in enumerate(prompts):
                    p["_index"] = i
                prompt_sets[t.name] = prompts[: cfg.limit] if cfg.limit else prompts
    out = Path(out).resolve()
    digest = cfg.digest()
    if dist.main:
        check_run_dir(out, digest, overwrite)
    model = load_model(cfg.model, dtype=cfg.dtype, device=dist.device(cfg.device),
                       trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle, attn=cfg.attn)
    dec = with_model_defaults(dec, model.meta.decode_defaults, cfg.decoding)  # e.g. Dream's own sampler
    dec.validate(1, model.max_positions)  # room for at least one prompt token
    with contextlib.ExitStack() as stack:
        if dist.main:  # checked again under the lock: another writer may have started in between
            stack.enter_context(locked(out, "run directory"))
            must_clear = check_run_dir(out, digest, overwrite)
        return _execute_locked(cfg, out, digest, dist, model, tasks, dec, bench_dir, prompt_sets,
                               must_clear if dist.main else False, console, bench_sources)


def _execute_locked(cfg, out, digest, dist, model, tasks, dec, bench_dir, prompt_sets, must_clear, console,
                    bench_sources=None):
    from mdlm_bench.progress import make_progress

    if dist.main:
        if must_clear:
            clear_run_dir(out)
            if console is not None:
                console.print(f"--overwrite: replacing the run in {out}", soft_wrap=True)
        mark_dir(out, "run")
        resolved = asdict(cfg)
        resolved["resolved_paths"] = {"out": str(out), "model": model.name,
                                      "bench_dir": str(bench_dir) if bench_dir else None}
        resolved["bench_sources"] = bench_sources  # local directory, or hub id and pinned revision
        write_config(out, "run", resolved, digest)
        if console is not None:
            console.print(f"run directory: [bold]{out}[/bold]", soft_wrap=True)
    dist.barrier()
    store = RowStore(out, digest, dist)
    progress = make_progress(console, transient=False) if console is not None and dist.main else None
    decoder = RowDecoder(model, cfg, store, dist, progress)
    updates: Dict[Key, dict] = {}
    lm_names = [t.name for t in tasks if t.kind == "lm-eval"]
    lm = None
    if progress:
        progress.start()
    try:
        for seed in cfg.seeds:
            decoder.seed = int(seed)
            if lm_names:
                from mdlm_bench.evaluate.rows import predecode

                predecode(decoder, lm_names, dec, cfg.limit)  # first rows before lm-eval is imported
                if lm is None:
                    from mdlm_bench.evaluate.lm_eval_model import MDLMEvalLM

                    lm = MDLMEvalLM(model=model, decoding=dec, batch_size=cfg.batch_size, chat=cfg.chat,
                                    row_hook=decoder)
                updates.update(_lm_eval_pass(lm, lm_names, cfg))
            for name, prompts in prompt_sets.items():
                run_open_ended(decoder, name, prompts, dec)
    finally:
        if progress:
            progress.stop()
    rows = store.finalize(updates)
    if console is not None and dist.main:
        reused = sum(row_key(r) in store.existing for r in rows)
        if reused:
            console.print(f"reused {reused} of {len(rows)} rows already in {out} (same config digest); decoded "
                          f"{len(rows) - reused}", soft_wrap=True)
    metrics = summarize(rows)
    if dist.main:
        write_json(out / METRICS, metrics)
    return metrics


def print_run_summary(metrics: dict, console, title: str = "results") -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in ("task", "metric", "value", "rows", "NFE/row", "eff. fraction"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    stats = metrics.get("decoding_stats", {})
    for task, st in stats.items():
        ms = metrics.get("tasks", {}).get(task) or {"-": None}
        for name, m in ms.items():
            value = "-" if m is None else f"{m['value']:.3f}"
            table.add_row(task, name, value, str(st["rows"]), f"{st['nfe_mean']:.1f}",
                          f"{st['effective_fraction_mean']:.4f}")
    console.print(table)
