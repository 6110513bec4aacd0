"""Judge a run: build games, resume from RUN_DIR/judgments/<bench>.jsonl, send what is missing, summarise.

Resume is by content key: a game's key digests (bench, task, uid, seed, game, judge model, messages,
sampling), so changing an answer, a prompt or the judge re-judges exactly the games affected. Rows are
appended as games finish (flushed per row, fsynced every second); a killed run loses at most what was
in flight, and those requests are usually already in the response cache. Failed games are written as
status "failed" and sent again on the next run; the file is compacted to one row per game at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mdlm_bench.benchdata import resolve_bench_dir
from mdlm_bench.config import digest, provenance
from mdlm_bench.errors import UserError
from mdlm_bench.io import atomic_write_text, repair_jsonl, write_json
from mdlm_bench.judge.answers import (Item, as_turns, by_uid_seed, check_missing, check_same_prompts, run_label,
                                      run_rows)
from mdlm_bench.judge.cache import ResponseCache, request_key
from mdlm_bench.judge.client import JudgeClient, JudgeRequestError, UsageStats, check_reachable
from mdlm_bench.judge.config import JudgeConfig, JudgeOptions
from mdlm_bench.judge.protocols import PROTOCOLS, Game, Protocol
from mdlm_bench.judge.protocols.pairwise import Pairwise


def judgments_paths(run_dir: Path, bench: str) -> Tuple[Path, Path]:
    d = Path(run_dir) / "judgments"
    return d / f"{bench}.jsonl", d / f"{bench}.summary.json"


def make_protocol(opts: JudgeOptions) -> Protocol:
    cls = PROTOCOLS.get(opts.bench)
    needs_dir = cls is not Pairwise or opts.pairwise_prompt == "arena-hard"
    bench_dir = resolve_bench_dir(opts.bench_dir) if needs_dir else None
    return cls(opts.bench, bench_dir, opts)


# ------------------------------------------------------------------------------------------------ items


def partial_label(n: int, total: int) -> str:
    return f"partial: {n}/{total} prompts, not comparable with the leaderboard"


def build_items(proto: Protocol, opts: JudgeOptions) -> Tuple[List[Item], Optional[str]]:
    """Items to judge and the baseline's label. Raises UserError for missing or mismatched answers.
    With opts.allow_partial, prompts the run lacks are left out and proto.partial records (n, total)."""
    run_dir = Path(opts.run_dir)
    if isinstance(proto, Pairwise):
        return _pairwise_items(proto, opts, run_dir)
    tasks = proto.run_tasks()
    rows = run_rows(run_dir, tasks)
    prompts = proto.prompts()
    uids = [p["uid"] for p in prompts]
    wanted = set(uids)
    per_uid: Dict[str, List[dict]] = {}
    for (uid, seed), row in sorted(by_uid_seed(rows).items(), key=lambda kv: kv[0][1]):
        if uid in wanted:
            per_uid.setdefault(uid, []).append(row)
    if opts.allow_partial and per_uid:
        if len(per_uid) < len(prompts):
            proto.partial = (len(per_uid), len(prompts))
        prompts = [p for p in prompts if p["uid"] in per_uid]
        uids = [p["uid"] for p in prompts]
    check_missing(proto.bench, run_dir, uids, per_uid)
    baseline_label, base_of = None, None
    if proto.needs_baseline:
        if opts.baseline in (None, "published") or (proto.baseline_file and Path(opts.baseline).is_file()):
            baseline_label, answers = proto.published_baseline(prompts)
            lacking = [u for u in uids if u not in answers]
            if lacking:
                raise UserError(f"the published baseline lacks answers for {len(lacking)} of {len(uids)} "
                                f"{proto.bench} prompts (e.g. uid {lacking[0]}); use the matching files")
            base_of = lambda uid, seed: answers[uid]  # noqa: E731
        else:
            bdir = Path(opts.baseline)
            brows = by_uid_seed(run_rows(bdir, tasks))
            if opts.allow_partial:
                check_missing(proto.bench, bdir, uids, {u for (u, _s) in brows}, what="baseline")
            else:
                check_same_prompts(run_dir, bdir, {str(r["uid"]) for r in rows}, {u for (u, _s) in brows})
            first = {}
            for (u, s), r in sorted(brows.items(), key=lambda kv: kv[0][1]):
                first.setdefault(u, r)
            base_of = lambda uid, seed: as_turns((brows.get((uid, seed)) or first[uid])["output"])  # noqa: E731
            baseline_label = run_label(bdir)
    elif opts.baseline not in (None, "published"):
        raise UserError(f"{proto.bench} grades single answers; drop --baseline")
    items = []
    for p in prompts:
        for row in per_uid[p["uid"]]:
            seed = int(row.get("seed", 0))
            items.append(Item(str(row["task"]), p["uid"], seed, p["turns"], as_turns(row["output"]),
                              base_of(p["uid"], seed) if base_of else None, p["category"], p["reference"],
                              p["extra"]))
    return items, baseline_label


def _pairwise_items(proto: Protocol, opts: JudgeOptions, run_dir: Path) -> Tuple[List[Item], str]:
    if opts.baseline in (None, "published"):
        raise UserError("pairwise compares two runs; pass --baseline RUN_DIR (the run to compare against)")
    bdir = Path(opts.baseline)
    tasks = proto.run_tasks()
    rows = run_rows(run_dir, tasks)
    brows = run_rows(bdir, tasks)
    if not rows:
        what = f" for task(s) {', '.join(tasks)}" if tasks else ""
        raise UserError(f"run '{run_dir}' has no generations{what}; run 'mdlm-bench run' first or fix --task")
    a = {(str(r["task"]), str(r["uid"]), int(r.get("seed", 0))): r for r in rows}
    b = {(str(r["task"]), str(r["uid"]), int(r.get("seed", 0))): r for r in brows}
    check_same_prompts(run_dir, bdir, {k[:2] for k in a}, {k[:2] for k in b})
    first: Dict[tuple, dict] = {}
    for k in sorted(b, key=lambda k: k[2]):
        first.setdefault(k[:2], b[k])
    differ = [k for k in a if as_turns(a[k].get("prompt")) != as_turns((b.get(k) or first[k[:2]]).get("prompt"))]
    if differ:
        raise UserError(f"baseline '{bdir}' has different prompt text for {len(differ)} items (e.g. "
                        f"{differ[0][0]}/{differ[0][1]}); compare runs made on the same prompts")
    items = []
    for k in sorted(a):
        r, base = a[k], b.get(k) or first[k[:2]]
        turns = as_turns(r.get("prompt")) or [""]
        items.append(Item(k[0], k[1], k[2], turns, as_turns(r["output"]), as_turns(base["output"])))
    return items, run_label(bdir)


# ------------------------------------------------------------------------------------------------ games


def game_key(bench: str, model: str, g: Game) -> str:
    blob = json.dumps({"bench": bench, "task": g.item.task, "uid": g.item.uid, "seed": g.item.seed, "game": g.index,
                       "judge": model, "messages": g.messages, "params": g.params, "followup": g.followup,
                       "attempts": g.attempts, **({"fixed": g.fixed} if g.fixed is not None else {})},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


class _RowWriter:
    """Append rows one line at a time: flushed per row (survives kill -9), fsynced at most once a second."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", encoding="utf-8")
        self._synced = time.monotonic()

    def write(self, row: dict) -> None:
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._f.flush()
        if time.monotonic() - self._synced > 1.0:
            os.fsync(self._f.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


async def play(client: JudgeClient, proto: Protocol, g: Game, key: str) -> dict:
    """Judge one game; never raises for endpoint failures (they become a 'failed' row)."""
    row: Dict[str, Any] = {"key": key, "bench": proto.bench, "task": g.item.task, "uid": g.item.uid,
                           "seed": g.item.seed, "game": g.index, "judge_model": client.cfg.model, **g.meta}
    msgs, texts, cached = list(g.messages), [], True
    if g.fixed is not None:  # upstream's rule gives the verdict: no request is sent
        parsed = proto.parse(g, g.fixed, None)
        return {**row, "status": "ok", "judgment": g.fixed, "verdict": parsed.verdict, "score": parsed.score,
                "weight": parsed.weight, "attempts": 0, "cached": False, "requested": False,
                **({"info": parsed.info} if parsed.info else {})}
    try:
        for attempt in range(g.attempts):
            comp = await client.complete(msgs, g.params)
            cached = cached and comp.cached
            texts.append(comp.text)
            parsed = proto.parse(g, "\n".join(texts), comp.top_logprobs)
            if parsed.verdict is not None or parsed.final or attempt == g.attempts - 1 or not g.followup:
                break
            msgs = msgs + [{"role": "assistant", "content": comp.text}, {"role": "user", "content": g.followup}]
    except JudgeRequestError as e:
        return {**row, "status": "failed", "error": str(e), "judgment": None, "verdict": None, "score": None}
    out = {**row, "status": "ok", "judgment": "\n".join(texts), "verdict": parsed.verdict, "score": parsed.score,
           "weight": parsed.weight, "attempts": len(texts), "cached": cached}
    if parsed.info:
        out["info"] = parsed.info
    if comp.top_logprobs:
        out["top_logprobs"] = comp.top_logprobs
    return out


async def _send(cfg: JudgeConfig, cache: ResponseCache, proto: Protocol, pending: List[Tuple[Game, str]],
                writer: _RowWriter, api_key: Optional[str], progress) -> Tuple[UsageStats, int]:
    failed = 0
    async with JudgeClient(cfg, cache, api_key=api_key) as client:
        tasks = [asyncio.ensure_future(play(client, proto, g, k)) for g, k in pending]
        bar = progress.add_task(f"judging {proto.bench}", total=len(tasks)) if progress is not None else None
        try:
            for fut in asyncio.as_completed(tasks):
                row = await fut
                failed += row["status"] == "failed"
                writer.write(row)
                if progress is not None:
                    progress.advance(bar)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return client.stats, failed


def _needs_network(cfg: JudgeConfig, cache: ResponseCache, pending: List[Tuple[Game, str]]) -> bool:
    return any(g.fixed is None and cache.get(request_key(cfg.model, g.messages, g.params)) is None for g, _ in pending)


def judge_run(cfg: JudgeConfig, opts: JudgeOptions, console=None, show_progress: bool = True) -> Dict[str, Any]:
    """Judge `opts.run_dir` on `opts.bench`; writes judgments and summary, returns the summary. The judgments
    directory is claimed and locked while it is written (`rundir.judging`)."""
    from mdlm_bench.rundir import judging

    with judging(Path(opts.run_dir)):
        return _judge_locked(cfg, opts, console, show_progress)


def _judge_locked(cfg: JudgeConfig, opts: JudgeOptions, console, show_progress: bool) -> Dict[str, Any]:
    run_dir = Path(opts.run_dir)
    proto = make_protocol(opts)
    items, baseline_label = build_items(proto, opts)
    games = [g for it in items for g in proto.games(it)]
    keyed = [(g, game_key(proto.bench, cfg.model, g)) for g in games]
    rows_path, summary_path = judgments_paths(run_dir, proto.bench)
    done: Dict[str, dict] = {r["key"]: r for r in repair_jsonl(rows_path) if r.get("status") == "ok" and "key" in r}
    pending = [(g, k) for g, k in keyed if k not in done]
    cache = ResponseCache(cfg.cache_dir or (run_dir / "judgments" / "cache"))
    stats, failed = UsageStats(), 0
    if pending:
        network = _needs_network(cfg, cache, pending)
        api_key = cfg.api_key() if network else "unused: every request is cached"
        if network:
            check_reachable(cfg.base_url)
        writer = _RowWriter(rows_path)
        progress = None
        try:
            if show_progress:
                from mdlm_bench.progress import make_progress

                progress = make_progress(console, unit="games")  # rate and ETA from the games judged
                progress.start()
            stats, failed = asyncio.run(_send(cfg, cache, proto, pending, writer, api_key, progress))
        finally:
            if progress is not None:
                progress.stop()
            writer.close()
    final = _compact(rows_path, keyed)
    summary = _summary(cfg, opts, proto, items, final, baseline_label, stats, len(keyed))
    write_json(summary_path, summary)
    return summary


def _compact(path: Path, keyed: List[Tuple[Game, str]]) -> List[dict]:
    """Rewrite the judgments file with one row per current game (ok rows win over failed ones)."""
    latest: Dict[str, dict] = {}
    for r in repair_jsonl(path):
        k = r.get("key")
        if k is None:
            continue
        if r.get("status") == "ok" or latest.get(k, {}).get("status") != "ok":
            latest[k] = r
    final = [latest[k] for _, k in keyed if k in latest]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in final))
    return final


def _summary(cfg: JudgeConfig, opts: JudgeOptions, proto: Protocol, items: List[Item], rows: List[dict],
             baseline_label: Optional[str], stats: UsageStats, n_games: int) -> Dict[str, Any]:
    scored = proto.summarize(items, rows)
    failed = [r for r in rows if r.get("status") == "failed"]
    head = {"bench": proto.bench, "judge_model": cfg.model, "kind": proto.kind, "baseline": baseline_label,
            "score": scored.pop("score"), "ci": scored.pop("ci"), "ci_level": proto.ci_level,
            "items": scored.pop("items"), "upstream": scored.pop("upstream", None) or proto.upstream}
    if proto.kind == "pairwise":
        for k in ("wins", "ties", "losses", "position_consistency", "parse_failure_rate"):
            head[k] = scored.pop(k)
    judged = {"n_games": n_games, "failed_games": len(failed), "missing_games": n_games - len(rows),
              "complete": not failed and len(rows) == n_games}
    partial = getattr(proto, "partial", None)
    if partial:
        judged["partial"] = {"prompts": partial[0], "total": partial[1], "label": partial_label(*partial)}
    settings = {"judge": cfg.public(), "options": dataclasses.asdict(opts), "judge_settings": proto.settings()}
    return {**head, **scored, **judged, "run_dir": str(opts.run_dir), **settings, "digest": digest(settings),
            "usage_this_run": stats.as_dict(cfg), "provenance": provenance(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


# --------------------------------------------------------------------------------------------- display


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{100 * x:.1f}%" if pct else f"{x:.3f}"
    return str(x)


def print_summary(summary: Dict[str, Any], console) -> None:
    from rich.table import Table

    pct = summary["kind"] == "pairwise"
    level = int(round(100 * summary["ci_level"]))
    against = f", baseline {summary['baseline']}" if summary.get("baseline") else ""
    t = Table(title=f"judge: {summary['bench']}  (judge {summary['judge_model']}{against})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    lo, hi = summary["ci"]
    if summary.get("partial"):
        t.add_row("coverage", summary["partial"]["label"])
    if summary.get("headline"):
        t.add_row("headline", summary["headline"])
    t.add_row(summary.get("score_name") or ("win rate" if pct else "mean rating"), _fmt(summary["score"], pct))
    t.add_row(f"{level}% CI", f"{_fmt(lo, pct)} .. {_fmt(hi, pct)}")
    if pct:
        t.add_row("wins / ties / losses", f"{summary['wins']} / {summary['ties']} / {summary['losses']}")
        t.add_row("position consistency", _fmt(summary.get("position_consistency"), True))
    t.add_row("parse failures", _fmt(summary.get("parse_failure_rate"), True))
    bt = summary.get("bt")
    if bt and bt.get("win_rate") is not None:
        t.add_row(f"Bradley-Terry (style: {bt['style_control']})",
                  f"{_fmt(bt['win_rate'], True)} [{_fmt(bt['ci'][0], True)} .. {_fmt(bt['ci'][1], True)}]")
    if "lc_win_rate" in summary:
        t.add_row("length-controlled win rate", _fmt(summary["lc_win_rate"], True))
        t.add_row("LC variant", summary["lc_variant"])
        t.add_row("standard error", _fmt(summary.get("standard_error"), True))
        t.add_row("preference mode", summary["preference_mode"])
    for name, v in (summary.get("turns") or {}).items():
        t.add_row(f"turn {name}", _fmt(v))
    for name, v in (summary.get("categories") or {}).items():
        if not isinstance(v, dict):
            t.add_row(f"category {name}", _fmt(v, pct))
            continue
        t.add_row(f"category {name}", f"{_fmt(v['score'], pct)} [{_fmt(v['ci'][0], pct)} .. {_fmt(v['ci'][1], pct)}]")
        cbt = v.get("bt") or {}
        if cbt.get("win_rate") is not None and cbt.get("style_control") != "none":
            t.add_row(f"category {name}, Bradley-Terry (style: {cbt['style_control']})",
                      f"{_fmt(cbt['win_rate'], True)} [{_fmt(cbt['ci'][0], True)} .. {_fmt(cbt['ci'][1], True)}]")
    extra = summary.get("pooled_extra")
    if extra:
        t.add_row("pooled (extra; not an arena-hard figure)", _fmt(extra["score"], pct))
    t.add_row("items scored", f"{summary.get('n_items')} of {summary.get('n_items_total')}")
    t.add_row("games failed", str(summary["failed_games"]))
    console.print(t)
