"""Shift-sensitivity sweeps: the same prompts and seeds decoded at several perturbation levels.

    SWEEP/level-<f>/        a run directory per level (level 0 = the spec at fraction 0, which is
                            byte-identical to unperturbed decoding; when decoding is deterministic it
                            runs the first seed only, the others being identical by construction)
    SWEEP/sweep.json        per level: task metrics with CIs over prompts (seeds averaged), content
                            moves, and against the level-0 output of the same (task, uid, seed), or of
                            the prompt's one level-0 seed: token edit distance, share of unchanged
                            outputs, change in output length
    SWEEP/sweep.png         metric and edit distance against fraction, with CI bands
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from mdlm_bench.errors import UserError
from mdlm_bench.io import write_json
from mdlm_bench.evaluate.config import RunConfig
from mdlm_bench.evaluate.run import execute

SWEEP_FILE = "sweep.json"


@dataclass
class SweepConfig:
    run: RunConfig
    fractions: List[float] = field(default_factory=lambda: [0.0, 0.005, 0.01, 0.02, 0.05])
    # judge benches run on every level when a judge is given: "pairwise" (each level vs level 0), or any
    # `mdlm-bench ls judges` name (a bench with a baseline is judged against level 0)
    judge_benches: List[str] = field(default_factory=lambda: ["pairwise"])

    def validate(self) -> "SweepConfig":
        if not self.run.perturbation:
            raise UserError("a sweep needs --perturbation SPEC (e.g. perturbations/shift.yaml)")
        for f in self.fractions:
            if not 0.0 <= f <= 1.0:
                raise UserError(f"fraction {f} is outside [0, 1]; pass fractions like 0,0.01,0.05")
        if 0.0 not in self.fractions:
            self.fractions = [0.0] + list(self.fractions)  # every level is compared with level 0
        self.fractions = sorted(set(float(f) for f in self.fractions))
        from mdlm_bench.judge.protocols import PROTOCOLS

        for b in self.judge_benches:
            PROTOCOLS.get(b)  # unknown names: did-you-mean error
        return self


def level_dir(out: Path, f: float) -> Path:
    return Path(out) / f"level-{f:g}"


def deterministic(run: RunConfig) -> bool:
    """Greedy decoding with a remasking rule that draws nothing: every seed gives the same rows."""
    dc = run.decode_config()
    return float(dc.temperature) == 0.0 and dc.remasking != "random"


def level_seeds(cfg: SweepConfig, f: float) -> List[int]:
    """Seeds decoded at level f: only the first at an unperturbed deterministic level."""
    seeds = list(cfg.run.seeds)
    return seeds[:1] if f == 0.0 and deterministic(cfg.run) else seeds


def _level_config(cfg: SweepConfig, f: float) -> RunConfig:
    d = asdict(cfg.run)
    d["perturbation"] = {**cfg.run.perturbation, "fraction": f}
    d["seeds"] = level_seeds(cfg, f)
    return RunConfig(**d)


def _outputs(rows: List[dict]) -> Dict[Tuple[str, str, int], dict]:
    return {(r["task"], str(r["uid"]), int(r["seed"])): r for r in rows}


def _tokens(row: dict) -> List[int]:
    ids = row.get("token_ids", [])
    if ids and isinstance(ids[0], list):  # multi-turn: one list per turn
        return [t for turn in ids for t in turn]
    return list(ids)


def compare_levels(base_rows: List[dict], rows: List[dict]) -> Dict[str, list]:
    """Per row, against the level-0 row of the same key: edit distance, unchanged, length change."""
    from mdlm_bench.edit_distance import edit_distance

    base = _outputs(base_rows)
    by_prompt = {k[:2]: r for k, r in base.items()}  # a one-seed level 0 stands for every seed
    one_seed = len(by_prompt) == len(base)
    out = {"edit_distance": [], "unchanged": [], "length_change": [], "keys": []}
    for key, r in _outputs(rows).items():
        b = base.get(key) or (by_prompt.get(key[:2]) if one_seed else None)
        if b is None:
            continue
        out["keys"].append(key)
        x, y = _tokens(b), _tokens(r)
        out["edit_distance"].append(float(edit_distance(x, y)))
        out["unchanged"].append(float(r["output"] == b["output"]))
        out["length_change"].append(float(len(y) - len(x)))
    return out


def summarize_sweep(cfg: SweepConfig, out: Path, level_rows: Dict[float, List[dict]]) -> dict:
    import numpy as np

    from mdlm_bench.stats import mean_ci_many
    from mdlm_bench.stats.clustered import prompt_means

    base = level_rows[0.0]
    levels = []
    for f in cfg.fractions:
        rows = level_rows[f]
        metrics_vals: Dict[str, Dict[tuple, float]] = {}
        for r in rows:
            for m, v in (r.get("metrics") or {}).items():
                metrics_vals.setdefault(m, {})[(r["task"], str(r["uid"]), int(r["seed"]))] = float(v)
        cmp_ = compare_levels(base, rows)
        names = sorted(metrics_vals)
        # CIs resample prompts: each prompt contributes the mean over its seeds (stats.clustered)
        per_prompt = [metrics_vals[m] for m in names] + [dict(zip(cmp_["keys"], cmp_[k])) for k in
                                                          ("edit_distance", "length_change")]
        groups = [np.asarray(list(prompt_means(g)[0].values())) for g in per_prompt]
        cis = mean_ci_many(groups, level=0.95, n_resamples=2000, seed=0)
        level = {
            "fraction": f,
            "dir": level_dir(out, f).name,
            "effective_fraction": float(np.mean([r.get("effective_fraction", 0.0) for r in rows])) if rows else 0.0,
            "content_moves": int(sum(r.get("content_moves", 0) for r in rows)),
            "content_fraction": float(np.mean([r.get("content_fraction", 0.0) for r in rows])) if rows else 0.0,
            "rows": len(rows),
            "prompts": len({(r["task"], str(r["uid"])) for r in rows}),
            "seeds": level_seeds(cfg, f),
            "seeds_identical_by_construction": [s for s in cfg.run.seeds if s not in level_seeds(cfg, f)],
            "metrics": {m: {"mean": c[0], "ci_low": c[1], "ci_high": c[2], "n": len(metrics_vals[m]),
                            "prompts": len(groups[k])}
                        for k, (m, c) in enumerate(zip(names, cis[:len(names)]))},
            "edit_distance": dict(zip(("mean", "ci_low", "ci_high"), cis[len(names)])),
            "length_change": dict(zip(("mean", "ci_low", "ci_high"), cis[len(names) + 1])),
            "unchanged_rate": float(np.mean(cmp_["unchanged"])) if cmp_["unchanged"] else float("nan"),
        }
        levels.append(level)
    spec = dict(cfg.run.perturbation)
    spec.pop("fraction", None)
    return {"kind": "sweep", "model": cfg.run.model, "tasks": cfg.run.tasks, "operator": spec.get("operator"),
            "perturbation": spec, "seeds": cfg.run.seeds, "fractions": cfg.fractions, "limit": cfg.run.limit,
            "deterministic": deterministic(cfg.run),
            "ci_method": "95% percentile bootstrap over prompts (per-prompt means over seeds)", "levels": levels}


def plot_sweep(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdlm_bench.io import atomic_write_bytes

    levels = summary["levels"]
    xs = [lv["fraction"] * 100 for lv in levels]
    metric_names = sorted({m for lv in levels for m in lv["metrics"]})
    panels = metric_names + ["edit_distance"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, name in zip(axes[0], panels):
        stats = [lv["metrics"].get(name) if name in metric_names else lv["edit_distance"] for lv in levels]
        ys = [s["mean"] if s else float("nan") for s in stats]
        lo = [s["ci_low"] if s else float("nan") for s in stats]
        hi = [s["ci_high"] if s else float("nan") for s in stats]
        ax.plot(xs, ys, marker="o", label=summary["model"])
        ax.fill_between(xs, lo, hi, alpha=0.25)
        ax.set_xlabel(f"{summary['operator']}: displaced tokens (%)")
        ax.set_ylabel(name.replace("_", " ") + (" vs level 0 (tokens)" if name == "edit_distance" else ""))
        ax.grid(alpha=0.3)
    axes[0][0].set_title(f"{Path(str(summary['model'])).name} on {', '.join(summary['tasks'])}", fontsize=9)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def print_sweep(summary: dict, console) -> None:
    from rich.table import Table

    names = sorted({m for lv in summary["levels"] for m in lv["metrics"]})
    t = Table(title=f"sweep: {summary['operator']} on {Path(str(summary['model'])).name}")
    for col in ["fraction", "effective", "content moves", "content frac.", *names, "edit dist.", "unchanged",
                "Δ length"]:
        t.add_column(col, justify="right")
    for lv in summary["levels"]:
        cells = [f"{lv['fraction']:g}", f"{lv['effective_fraction']:.4f}", str(lv.get("content_moves", "-")),
                 f"{lv.get('content_fraction', 0.0):.4f}"]
        for m in names:
            s = lv["metrics"].get(m)
            cells.append(f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]" if s else "-")
        e = lv["edit_distance"]
        cells += [f"{e['mean']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]", f"{lv['unchanged_rate']:.2f}",
                  f"{lv['length_change']['mean']:+.2f}"]
        t.add_row(*cells)
    console.print(t)


def judge_levels(judge, out: Path, fractions: List[float], console=None) -> Dict[float, dict]:
    """Judge each perturbed level pairwise against level 0 (the win rate against the unperturbed model)."""
    from mdlm_bench.judge.config import JudgeOptions
    from mdlm_bench.judge.runner import judge_run

    results = {}
    for f in fractions:
        if f == 0.0:
            continue
        opts = JudgeOptions(bench="pairwise", run_dir=str(level_dir(out, f)), baseline=str(level_dir(out, 0.0)))
        s = judge_run(judge, opts, console=console, show_progress=console is not None)
        results[f] = {k: s.get(k) for k in ("score", "ci", "ci_level", "wins", "ties", "losses",
                                            "position_consistency", "parse_failure_rate", "judge_model",
                                            "complete")}
    return results


def judge_levels_on(judge, out: Path, cfg: SweepConfig, benches: List[str], console=None) -> Dict[float, dict]:
    """Judge each level on benchmark protocols (WB-Score, Creative-Writing v3, ...): single grading on every
    level, pairwise protocols against level 0. Per-prompt scores stay in each level's judgments/, where
    `mdlm-bench report` pairs them by prompt."""
    from mdlm_bench.judge.config import JudgeOptions
    from mdlm_bench.judge.protocols import PROTOCOLS
    from mdlm_bench.judge.runner import judge_run

    results: Dict[float, dict] = {}
    for f in cfg.fractions:
        for b in benches:
            paired = PROTOCOLS.get(b).needs_baseline
            if paired and f == 0.0:
                continue
            opts = JudgeOptions(bench=b, run_dir=str(level_dir(out, f)), bench_dir=cfg.run.bench_dir,
                                baseline=str(level_dir(out, 0.0)) if paired else None)
            s = judge_run(judge, opts, console=console, show_progress=console is not None)
            results.setdefault(f, {})[b] = {k: s.get(k) for k in ("score", "ci", "ci_level", "baseline", "n_items",
                                                                 "parse_failure_rate", "judge_model", "complete")}
    return results


def execute_sweep(cfg: SweepConfig, out: Path, overwrite: bool = False, console=None, judge=None) -> dict:
    """Decode every level (resuming rows already done), judge levels against level 0 when a judge
    endpoint is given, then write sweep.json and sweep.png."""
    import contextlib

    from mdlm_bench.dist import current
    from mdlm_bench.rundir import claim_dir, locked, mark_dir

    cfg.validate()
    out = Path(out).resolve()
    with contextlib.ExitStack() as stack:
        if current().main:
            claim_dir(out, "sweep", overwrite)
            stack.enter_context(locked(out, "sweep directory"))
            mark_dir(out, "sweep")
        return _execute_sweep_locked(cfg, out, overwrite, console, judge)


def _execute_sweep_locked(cfg: SweepConfig, out: Path, overwrite: bool, console, judge) -> dict:
    from mdlm_bench.rundir import load_generations

    level_rows: Dict[float, List[dict]] = {}
    for f in cfg.fractions:
        if console is not None:
            console.print(f"[bold]level {f:g}[/bold]")
        execute(_level_config(cfg, f), level_dir(out, f), overwrite=overwrite, console=console)
        level_rows[f] = load_generations(level_dir(out, f))
    summary = summarize_sweep(cfg, out, level_rows)
    from mdlm_bench.dist import current

    if judge is not None and current().main:
        judged = judge_levels(judge, out, cfg.fractions, console) if "pairwise" in cfg.judge_benches else {}
        others = judge_levels_on(judge, out, cfg, [b for b in cfg.judge_benches if b != "pairwise"], console)
        for lv in summary["levels"]:
            if lv["fraction"] in judged:
                lv["judge_vs_level0"] = judged[lv["fraction"]]
            if others.get(lv["fraction"]):
                lv["judged"] = others[lv["fraction"]]
    if current().main:
        write_json(out / SWEEP_FILE, summary)
        plot_sweep(summary, out / "sweep.png")
    return summary


def load_sweep(path: Path) -> Optional[dict]:
    from mdlm_bench.io import read_json

    p = Path(path) / SWEEP_FILE
    return read_json(p) if p.exists() else None
