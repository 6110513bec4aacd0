"""The plan of a judged protocol, and its cost before any work: rows per model and benchmark, forwards per
row from the decoding settings, judge requests, and a time estimate from a short measured calibration.

    plan = make_plan(cfg)            # benchmarks resolved, prompts read, run directories named
    calibrate(plan, cfg)             # per model: load it, time a few real decode steps at two shapes
    print_plan(plan, console)        # the table `mdlm-bench run --config P --dry-run` prints

Forwards: a fixed schedule spends `steps` forwards per turn (twice that with classifier-free guidance), so
the count is exact; a parallel rule commits a data-dependent number per step and `steps` is then the most
(the plan says so). Time: `generate_many` sorts prompts by length and decodes batches of `batch_size`, each
padded to its longest prompt; per batch the loop runs its forwards at shape [b, P + gen_length]. The
calibration times real decode steps (forward, sampling and hooks) on this device at the smallest and the
largest shape of the plan and fits t(b, L) = c0 + c1 * b * L; the estimate adds that over every batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from mdlm_bench.evaluate.protocol_config import BenchmarkSpec, ProtocolConfig


@dataclass
class BenchPlan:
    label: str
    spec: BenchmarkSpec
    task: str  # the run task holding its rows
    prompts: List[dict]
    games_per_item: List[int]  # judge requests per prompt, per judged (model, level, seed)
    prompt_tokens: Dict[str, List[List[int]]] = field(default_factory=dict)  # model -> per prompt: tokens per turn


@dataclass
class Plan:
    cfg: ProtocolConfig
    bench_dir: Path
    benches: List[BenchPlan]
    nfe_per_turn: int
    exact_forwards: bool
    calibration: Dict[str, dict] = field(default_factory=dict)  # model label -> {c0, c1, load_s, points}

    def run_dir(self, model: str, level: float) -> Path:
        return self.cfg.out_dir() / model / f"level-{level:g}"

    def judged(self, bench: BenchPlan) -> List[Tuple[str, float]]:
        """(model, level) pairs judged on `bench`: all, except the original's level 0 when it is the baseline
        (its outputs are the baseline's: a tie by definition)."""
        return [(m, f) for m in self.cfg.models for f in self.cfg.levels
                if not (bench.spec.baseline == "original" and m == self.cfg.original and f == 0.0)]

    def rows(self, bench: BenchPlan) -> int:
        """Rows per model: prompts x seeds x levels."""
        return len(bench.prompts) * len(self.cfg.seeds) * len(self.cfg.levels)

    def forwards_per_row(self, bench: BenchPlan) -> List[int]:
        return [self.nfe_per_turn * len(p["turns"]) for p in bench.prompts]

    def forwards(self) -> int:
        per_model = sum(sum(self.forwards_per_row(b)) * len(self.cfg.seeds) * len(self.cfg.levels)
                        for b in self.benches)
        return per_model * len(self.cfg.models)

    def judge_requests(self, bench: BenchPlan) -> int:
        return sum(bench.games_per_item) * len(self.cfg.seeds) * len(self.judged(bench))

    def decode_seconds(self, model: str, bench: BenchPlan) -> Optional[float]:
        """Estimated decode time of one model on one benchmark (all levels and seeds)."""
        cal = self.calibration.get(model)
        if not cal or model not in bench.prompt_tokens:
            return None
        cfg, G = self.cfg, int(self.cfg.decoding.get("gen_length", 64))
        per_seed = 0.0
        n_turns = max(len(p["turns"]) for p in bench.prompts)
        for t in range(n_turns):
            # turn t sees the earlier turns and answers (at most gen_length tokens each)
            lens = sorted(min(sum(toks[: t + 1]) + t * G, cal["room"])  # over-long prompts keep their end
                          for toks in bench.prompt_tokens[model] if len(toks) > t)
            for start in range(0, len(lens), cfg.batch_size):
                chunk = lens[start:start + cfg.batch_size]
                # loop iterations (a guided step's two forwards are timed as one step)
                iters = int(cfg.decoding.get("steps", 64))
                per_seed += iters * step_seconds(cal, len(chunk), chunk[-1] + G) + cal.get("call_s", 0.0)
        return per_seed * len(cfg.seeds) * len(cfg.levels)

    def total_seconds(self) -> Optional[float]:
        if not self.calibration:
            return None
        decode = sum(self.decode_seconds(m, b) or 0.0 for m in self.cfg.models for b in self.benches)
        loads = sum(c["load_s"] for c in self.calibration.values()) * len(self.cfg.levels)
        return decode + loads


def step_seconds(cal: dict, b: int, length: int) -> float:
    return max(0.0, cal["c0"] + cal["c1"] * b * length)


def nfe_per_turn(decoding: dict) -> Tuple[int, bool]:
    from mdlm_bench.config import from_dict
    from mdlm_bench.decode.config import DecodeConfig

    dec = from_dict(DecodeConfig, decoding, "decoding").validate()
    cost = 2 if dec.cfg_scale > 0 else 1
    return dec.steps * cost, dec.parallel_rule is None


def _count_games(proto, task: str, prompts: List[dict]) -> List[int]:
    """Requests per prompt, from the protocol's own games() on placeholder answers (distinct from the
    baseline's, so no game is skipped as identical: an upper bound where a protocol skips those)."""
    from mdlm_bench.judge.answers import Item

    out = []
    for p in prompts:
        n = len(p["turns"])
        item = Item(task, p["uid"], 0, p["turns"], ["answer"] * n, ["baseline answer"] * n, p.get("category"),
                    p.get("reference"), p.get("extra") or {})
        out.append(len(proto.games(item)))
    return out


def judge_options(plan_or_cfg, spec: BenchmarkSpec, task: str, run_dir: str, baseline: Optional[str],
                  bench_dir: Path):
    from mdlm_bench.judge.config import JudgeOptions

    opts = dict(spec.options)
    if spec.judge == "pairwise":
        opts.setdefault("tasks", [task])
    return JudgeOptions(bench=spec.judge, run_dir=run_dir, baseline=baseline, bench_dir=str(bench_dir),
                        allow_partial=plan_or_cfg.limit is not None, **opts)


def make_plan(cfg: ProtocolConfig) -> Plan:
    from mdlm_bench.benchdata import load_bench, resolve_bench_dir
    from mdlm_bench.errors import UserError
    from mdlm_bench.judge.runner import make_protocol

    bench_dir = resolve_bench_dir(cfg.bench_dir)
    benches = []
    for label in cfg.benchmarks:
        spec = cfg.benchmark(label)
        try:
            proto = make_protocol(judge_options(cfg, spec, spec.task or spec.judge, "", None, bench_dir))
        except TypeError as e:
            raise UserError(f"benchmark '{label}': bad judge option ({e}); see JudgeOptions") from None
        task = spec.task or ((proto.run_tasks() or [spec.judge])[0])
        prompts, _ = load_bench(task, str(bench_dir))
        prompts = prompts[: cfg.limit] if cfg.limit else prompts
        if not prompts:
            raise UserError(f"benchmark '{label}' has no prompts in {bench_dir}; check bench_dir")
        benches.append(BenchPlan(label, spec, task, prompts, _count_games(proto, task, prompts)))
    nfe, exact = nfe_per_turn(cfg.decoding)
    return Plan(cfg, bench_dir, benches, nfe, exact)


class _Stop(Exception):
    pass


def _time_steps(model, ids: List[List[int]], dec, n: int) -> float:
    """Seconds per decode step of `generate` on these prompts: the median of n step intervals after one
    warm-up step (the median, as other jobs on a shared machine stretch single steps)."""
    from mdlm_bench.decode.sampler import Hook, generate

    marks: List[float] = []

    class Timer(Hook):
        def on_step_start(self, state) -> None:
            marks.append(time.perf_counter())
            if len(marks) > n + 1:
                raise _Stop

    try:
        generate(model, ids, dec, list(range(len(ids))), (Timer(),))
    except _Stop:
        pass
    gaps = sorted(b - a for a, b in zip(marks[1:], marks[2:]))
    return gaps[len(gaps) // 2] if gaps else float("nan")


def _overhead(model, ids: List[List[int]], dec, per_step: float) -> float:
    """Seconds a whole `generate` call spends outside its steps (canvas set-up, detokenizing): one complete
    decode with the fewest steps the blocks allow, minus those steps."""
    import dataclasses

    from mdlm_bench.decode.sampler import generate

    fast = dataclasses.replace(dec, steps=dec.gen_length // dec.block_length)
    t0 = time.perf_counter()
    generate(model, ids, fast, list(range(len(ids))))
    return max(0.0, time.perf_counter() - t0 - fast.steps * per_step)


def calibrate(plan: Plan, steps: int = 8, console=None) -> None:
    """Per model: load it (timed), tokenize every prompt as the run will, time `steps` real decode steps at
    the plan's smallest shape [1, shortest prompt + G] and largest [batch, longest prompt + G] (three times
    each, alternating), and the fixed cost of one generate call."""
    from mdlm_bench.config import from_dict
    from mdlm_bench.decode.config import DecodeConfig
    from mdlm_bench.decode.prompts import encode_prompt
    from mdlm_bench.evaluate.rows import given_history
    from mdlm_bench.models import load_model

    cfg = plan.cfg
    dec = from_dict(DecodeConfig, cfg.decoding, "decoding").validate()
    G = dec.gen_length
    for label, ckpt in cfg.models.items():
        t0 = time.perf_counter()
        model = load_model(ckpt, dtype=cfg.dtype, device=cfg.device, trust_remote_code=cfg.trust_remote_code)
        load_s = time.perf_counter() - t0
        lens = []
        for b in plan.benches:
            b.prompt_tokens[label] = [[len(encode_prompt(model, given_history(p) + [{"role": "user", "content":
                                                                                    p["turns"][0]}], cfg.chat))]
                                      for p in b.prompts]  # as evaluate.rows.run_open_ended encodes them
            for toks, p in zip(b.prompt_tokens[label], b.prompts):  # later turns: their own text's tokens
                toks += [len(model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in p["turns"][1:]]
            lens += [toks[0] for toks in b.prompt_tokens[label]]
        room = (model.max_positions or 1 << 30) - G
        small, big = max(1, min(min(lens), room)), max(1, min(max(lens), room))
        pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
        b_big = cfg.batch_size
        few, many = [[pad] * small], [[pad] * big] * b_big
        ts, tb = [], []
        for _ in range(3):
            ts.append(_time_steps(model, few, dec, steps))
            tb.append(_time_steps(model, many, dec, steps))
        t_small, t_big = sum(ts) / len(ts), sum(tb) / len(tb)
        x0, x1 = 1 * (small + G), b_big * (big + G)
        c1 = (t_big - t_small) / (x1 - x0) if x1 != x0 else 0.0
        c0 = t_small - c1 * x0
        over = _overhead(model, few, dec, t_small)
        plan.calibration[label] = {"c0": c0, "c1": c1, "call_s": over, "load_s": load_s, "steps_timed": steps,
                                   "room": room, "points": [[1, small + G, t_small], [b_big, big + G, t_big]],
                                   "device": str(model.device)}
        if console is not None:
            console.print(f"calibrated {label} on {model.device}: {t_small * 1e3:.2f} ms/step at [1, {small + G}], "
                          f"{t_big * 1e3:.2f} ms/step at [{b_big}, {big + G}], {over * 1e3:.1f} ms per call",
                          soft_wrap=True)
        del model


def _fmt_s(s: Optional[float]) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def plan_dict(plan: Plan) -> dict:
    cfg = plan.cfg
    benches = []
    for b in plan.benches:
        fpr = plan.forwards_per_row(b)
        benches.append({"benchmark": b.label, "judge": b.spec.judge, "task": b.task, "baseline": b.spec.baseline,
                        "prompts": len(b.prompts), "rows_per_model": plan.rows(b),
                        "forwards_per_row": sorted(set(fpr)), "forwards_per_model": sum(fpr) * len(cfg.seeds)
                        * len(cfg.levels), "judge_requests": plan.judge_requests(b),
                        "seconds_per_model": {m: plan.decode_seconds(m, b) for m in cfg.models}})
    return {"models": dict(cfg.models), "levels": cfg.levels, "seeds": cfg.seeds, "decoding": cfg.decoding,
            "nfe_per_turn": plan.nfe_per_turn, "forwards_exact": plan.exact_forwards, "forwards": plan.forwards(),
            "rows": sum(plan.rows(b) for b in plan.benches) * len(cfg.models),
            "judge_requests": sum(plan.judge_requests(b) for b in plan.benches), "benchmarks": benches,
            "calibration": plan.calibration, "estimated_seconds": plan.total_seconds()}


def print_plan(plan: Plan, console) -> dict:
    from rich.table import Table

    from mdlm_bench.report.render import print_wide

    d = plan_dict(plan)
    cfg = plan.cfg
    t = Table(title=f"plan: {len(cfg.models)} models x {len(plan.benches)} benchmarks x levels "
                    f"{', '.join(f'{f * 100:g}%' for f in cfg.levels)} x seeds {cfg.seeds}")
    for col in ("benchmark", "judge", "prompts", "rows/model", "forwards/row", "judge requests",
                *[f"time {m}" for m in cfg.models]):
        t.add_column(col, justify="left" if col in ("benchmark", "judge") else "right")
    for b in d["benchmarks"]:
        t.add_row(b["benchmark"], f"{b['judge']} (baseline {b['baseline']})", str(b["prompts"]),
                  str(b["rows_per_model"]), "/".join(map(str, b["forwards_per_row"])), str(b["judge_requests"]),
                  *[_fmt_s(b["seconds_per_model"][m]) for m in cfg.models])
    print_wide(console, t)
    how = "exact (fixed schedule)" if d["forwards_exact"] else "at most (a parallel rule may stop earlier)"
    console.print(f"rows: {d['rows']}   forwards: {d['forwards']:,} {how}   judge requests: "
                  f"{d['judge_requests']:,} at most (games a protocol settles without asking, such as empty "
                  f"answers, send none)", soft_wrap=True)
    if d["estimated_seconds"] is not None:
        console.print(f"estimated time on this device: {_fmt_s(d['estimated_seconds'])} for generation and model "
                      f"loads (judging not included: it depends on the endpoint)", soft_wrap=True)
    return d
