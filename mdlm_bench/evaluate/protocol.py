"""`mdlm-bench run --config reports/paper.yaml`: the judged protocol in one command.

    OUT/<model>/level-<f>/       one run directory per model and shift level: every benchmark's rows,
                                 all seeds (`evaluate.run.execute`: sharded over ranks, resumed by key)
    OUT/<model>/level-<f>/judgments/<judge>.jsonl   the judge's games (resumed by content key, cached)
    REPORT/report.json, report.md, plan.json        one report over every benchmark

Generation runs on every rank; the judge phase and the report run once, on rank 0, after the shards
have merged. A kill -9 anywhere leaves finished rows and finished judgments; the same command again
redoes nothing that is done (rows by (task, uid, seed) and config digest, games by content key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

from mdlm_bench.evaluate.plan import Plan, judge_options, make_plan
from mdlm_bench.evaluate.protocol_config import ProtocolConfig


def level_config(cfg: ProtocolConfig, plan: Plan, model: str, level: float):
    from mdlm_bench.evaluate.config import RunConfig
    from mdlm_bench.perturb import load_spec

    tasks = list(dict.fromkeys(b.task for b in plan.benches))
    spec = load_spec(cfg.perturbation).with_fraction(level)
    return RunConfig(model=cfg.models[model], tasks=tasks, decoding=dict(cfg.decoding), perturbation=spec.to_dict(),
                     seeds=list(cfg.seeds), limit=cfg.limit, chat=cfg.chat, dtype=cfg.dtype, device=cfg.device,
                     bench_dir=str(plan.bench_dir), batch_size=cfg.batch_size,
                     trust_remote_code=cfg.trust_remote_code)


def generate_all(cfg: ProtocolConfig, plan: Plan, console=None) -> None:
    from mdlm_bench.evaluate.run import execute

    for model in cfg.models:
        for f in cfg.levels:
            if console is not None:
                console.print(f"[bold]{model}[/bold] @ {f * 100:g}%")
            execute(level_config(cfg, plan, model, f), plan.run_dir(model, f), console=console)


def per_prompt(items) -> Dict[str, float]:
    """uid -> mean item score over seeds (items: a judge summary's scored items)."""
    acc: Dict[str, list] = {}
    for it in items:
        if it.get("score") is not None:
            acc.setdefault(str(it["uid"]), []).append(float(it["score"]))
    return {u: sum(v) / len(v) for u, v in acc.items()}


SUMMARY_KEYS = ("score", "ci", "ci_level", "wins", "ties", "losses", "position_consistency", "parse_failure_rate",
                "complete", "n_items", "failed_games")


def judge_all(cfg: ProtocolConfig, plan: Plan, judge, console=None) -> Tuple[Dict[str, dict], Dict[str, dict]]:
    """Judge every benchmark for every judged (model, level); returns per benchmark the per-prompt scores
    and the summaries. The original's level 0 against itself (its own baseline) is a tie by definition."""
    from mdlm_bench.judge.runner import judge_run

    scores: Dict[str, dict] = {}
    infos: Dict[str, dict] = {}
    for b in plan.benches:
        base = {"original": str(plan.run_dir(cfg.original, 0.0)), "published": "published", "none": None}[
            b.spec.baseline]
        cells, summaries = {}, {}
        for m, f in plan.judged(b):
            opts = judge_options(cfg, b.spec, b.task, str(plan.run_dir(m, f)), base, plan.bench_dir)
            s = judge_run(judge, opts, console=console, show_progress=console is not None)
            cells[(m, f)] = per_prompt(s.get("items") or [])
            summaries[(m, f)] = {k: s.get(k) for k in SUMMARY_KEYS}
        if b.spec.baseline == "original":
            cells[(cfg.original, 0.0)] = {str(p["uid"]): 0.5 for p in b.prompts}
            summaries[(cfg.original, 0.0)] = {"score": 0.5, "note": "the baseline itself: a tie by definition"}
        scores[b.label] = cells
        infos[b.label] = {"judge": b.spec.judge, "task": b.task, "baseline": b.spec.baseline,
                          "kind": "pairwise" if b.spec.baseline != "none" else "single", "summaries": summaries}
    return scores, infos


def timing(cfg: ProtocolConfig, plan: Plan) -> Tuple[dict, int]:
    """Decode wall time totalled from the rows' wall_s, per model and benchmark; and the rows' forwards."""
    from mdlm_bench.evaluate.rows import WALL
    from mdlm_bench.rundir import load_generations

    per, total, nfe = [], 0.0, 0
    for m in cfg.models:
        rows = [r for f in cfg.levels for r in load_generations(plan.run_dir(m, f))]
        for b in plan.benches:
            rs = [r for r in rows if r["task"] == b.task]
            sec = sum(float(r.get(WALL, 0.0)) for r in rs)
            per.append({"model": m, "benchmark": b.label, "rows": len(rs), "seconds": sec})
            total += sec
            nfe += sum(int(r["nfe"]) for r in rs)
    return {"decode_seconds": total, "per_model_benchmark": per}, nfe


def build_protocol_report(cfg: ProtocolConfig, plan: Plan, scores: Dict[str, dict], infos: Dict[str, dict]) -> dict:
    from mdlm_bench.report.protocol import benchmark_block, claims_lines, decide_claims

    blocks = [benchmark_block(b.label, scores[b.label], list(cfg.models), cfg.levels, cfg.focus, infos[b.label])
              for b in plan.benches]
    claims = decide_claims(blocks, cfg.focus, cfg.others(), cfg.levels)
    shifted = ", ".join(f"{f * 100:g}%" for f in cfg.levels if f > 0)
    t, nfe = timing(cfg, plan)
    return {
        "kind": "protocol", "title": f"{cfg.focus} against {' and '.join(cfg.others())}, judged",
        "question": (f"Does {cfg.focus} score higher than {' and '.join(cfg.others())} on "
                     f"{', '.join(b.label for b in plan.benches)}, and lose less when {shifted} of generated tokens "
                     f"are displaced? Paired by prompt; seeds averaged within a prompt."),
        "claims": claims, "claims_text": claims_lines(claims), "benchmarks": blocks,
        "models": dict(cfg.models), "focus": cfg.focus, "original": cfg.original, "levels": cfg.levels,
        "seeds": cfg.seeds, "decoding": cfg.decoding, "limit": cfg.limit,
        "forwards": {"measured": nfe, "planned": plan.forwards(), "exact": plan.exact_forwards},
        "judge_requests": sum(plan.judge_requests(b) for b in plan.benches),
        "timing": t,
    }


def run_protocol(cfg: ProtocolConfig, console, dry_run: bool = False) -> int:
    from rich.console import Console

    from mdlm_bench.dist import current
    from mdlm_bench.evaluate.plan import calibrate, plan_dict, print_plan
    from mdlm_bench.io import atomic_write_text, write_json
    from mdlm_bench.report import _clean

    plan = make_plan(cfg)
    dist = current()
    if dry_run:
        if dist.main:
            calibrate(plan, console=console)
            print_plan(plan, Console())
        return 0
    judge = cfg.endpoint().resolve()  # before hours of decoding: a missing endpoint fails now
    generate_all(cfg, plan, console)
    dist.barrier()
    if not dist.main:
        return 0
    scores, infos = judge_all(cfg, plan, judge, console)
    report = _clean(build_protocol_report(cfg, plan, scores, infos))
    out = cfg.report_dir()
    out.mkdir(parents=True, exist_ok=True)
    from mdlm_bench.report.protocol import print_first_screen, to_markdown

    write_json(out / "report.json", {**report, "config": cfg.to_dict(), "plan": _clean(plan_dict(plan))})
    atomic_write_text(out / "report.md", to_markdown(report))
    print_first_screen(report, Console())
    console.print(f"\nreport: [bold]{Path(out) / 'report.md'}[/bold]", soft_wrap=True)
    return 0
