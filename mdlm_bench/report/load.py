"""Read run directories, judge summaries and sweep directories into per-benchmark item scores.

A benchmark is one (task, metric) of generations.jsonl, named "task/metric", or one judged bench,
named "judge:<bench>". Its scores map the pairing key (task, uid, seed) to a float.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mdlm_bench.errors import UserError
from mdlm_bench.io import read_json, read_jsonl
from mdlm_bench.rundir import GENERATIONS, METRICS, read_config, row_key
from mdlm_bench.stats import Key, infer_binary

SUMMARY_KEYS = ("bench", "judge_model", "kind", "baseline", "items")
PAIRWISE_KEYS = ("wins", "ties", "losses")


@dataclass
class Benchmark:
    name: str                 # "task/metric" or "judge:<bench>"
    task: str
    metric: str
    kind: str                 # binary | continuous | pairwise | single
    declared: bool            # kind stated in metrics.json / summary (not inferred from values)
    scores: Dict[Key, float] = field(default_factory=dict)


@dataclass
class Run:
    label: str
    path: Path
    benchmarks: Dict[str, Benchmark]
    info: Dict[str, Any]      # what the report shows under "what was compared"
    judges: List[dict]        # judge summaries (pairwise or single), as read


def _load_json(path: Path, what: str) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError) as e:
        raise UserError(f"{what} '{path}' is not readable JSON ({str(e).splitlines()[0][:80]}); "
                        f"regenerate it") from None


def _unique(values) -> list:
    seen, out = set(), []
    for v in values:
        k = json.dumps(v, sort_keys=True, default=str)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _find_key(obj: Any, name: str) -> list:
    """Every value stored under a key containing `name`, anywhere in a nested config."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if name in str(k).lower() and not isinstance(v, (dict, list)) and v not in (None, ""):
                found.append(v)
            found.extend(_find_key(v, name))
    elif isinstance(obj, list):
        for v in obj:
            found.extend(_find_key(v, name))
    return found


def _declared_types(run_dir: Path) -> Dict[Tuple[str, str], str]:
    p = run_dir / METRICS
    if not p.exists():
        return {}
    tasks = (_load_json(p, "metrics file") or {}).get("tasks", {}) or {}
    out = {}
    for task, metrics in tasks.items():
        for metric, entry in (metrics or {}).items():
            if isinstance(entry, dict) and entry.get("type") in ("binary", "continuous"):
                out[(str(task), str(metric))] = entry["type"]
    return out


def _number(v: Any) -> Optional[float]:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def _generation_benchmarks(run_dir: Path, rows: List[dict]) -> Tuple[Dict[str, Benchmark], int]:
    declared = _declared_types(run_dir)
    values: Dict[Tuple[str, str], Dict[Key, float]] = {}
    duplicates = 0
    for row in rows:
        try:
            key = row_key(row)
        except (KeyError, TypeError, ValueError):
            continue  # a row without task/uid cannot be paired; it is counted in n_rows only
        for metric, v in (row.get("metrics") or {}).items():
            x = _number(v)
            if x is None:
                continue
            bucket = values.setdefault((key[0], str(metric)), {})
            duplicates += key in bucket
            bucket[key] = x  # a resumed run may repeat a row: the later one wins
    out = {}
    for (task, metric), scores in sorted(values.items()):
        kind = declared.get((task, metric))
        name = f"{task}/{metric}"
        out[name] = Benchmark(name, task, metric,
                              kind or ("binary" if infer_binary(list(scores.values())) else "continuous"),
                              kind is not None, scores)
    return out, duplicates


def _judge_benchmarks(run_dir: Path) -> Tuple[Dict[str, Benchmark], List[dict]]:
    out, summaries = {}, []
    for p in sorted((run_dir / "judgments").glob("*.summary.json")):
        s = _load_json(p, "judge summary")
        if not isinstance(s, dict):
            raise UserError(f"judge summary '{p}' is not a JSON object; re-run 'mdlm-bench judge'")
        kind = s.get("kind")
        need = SUMMARY_KEYS + (PAIRWISE_KEYS if kind == "pairwise" else ())
        missing = [k for k in need if k not in s]
        if missing or kind not in ("pairwise", "single"):
            why = f"lacks {', '.join(missing)}" if missing else f"has kind '{kind}' (expected pairwise or single)"
            raise UserError(f"judge summary '{p}' {why}; re-run 'mdlm-bench judge' to rewrite it")
        task = f"judge:{s['bench']}"
        scores: Dict[Key, float] = {}
        for item in s["items"]:
            x = _number(item.get("score"))
            if x is not None and "uid" in item:
                scores[(task, str(item["uid"]), int(item.get("seed", 0)))] = x
        out[task] = Benchmark(task, task, "score", kind, True, scores)
        summaries.append({**{k: v for k, v in s.items() if k != "items"}, "n_items": len(scores),
                          "file": str(p)})
    return out, summaries


def load_run(path: Path, label: str) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"run directory '{path}' does not exist; pass a directory made by 'mdlm-bench run'")
    rows = read_jsonl(path / GENERATIONS) if (path / GENERATIONS).exists() else []
    gen, duplicates = _generation_benchmarks(path, rows)
    judged, summaries = _judge_benchmarks(path)
    if not gen and not judged:
        raise UserError(f"'{path}' has no scored rows in {GENERATIONS} and no judgments/*.summary.json; "
                        f"run 'mdlm-bench run --out {path}' (and 'mdlm-bench judge') first")
    cfg = read_config(path) or {}
    resolved = cfg.get("config") or {}
    info = {
        "label": label,
        "path": str(path),
        "kind": cfg.get("kind"),
        "digest": cfg.get("digest"),
        "models": sorted({str(r["model"]) for r in rows if r.get("model")}) or
                  [str(v) for v in _unique(_find_key(resolved, "model"))[:3]],
        "checkpoints": [str(v) for v in _unique(_find_key(resolved, "checkpoint"))],
        "decoding": _unique(r["decoding"] for r in rows if r.get("decoding")),
        "perturbations": _unique(r.get("perturbation") for r in rows),
        "seeds": sorted({int(r.get("seed", 0)) for r in rows}),
        "tasks": sorted({str(r["task"]) for r in rows if "task" in r}),
        "n_rows": len(rows),
        "duplicate_rows": duplicates,
        "judges": summaries,
        "versions": (cfg.get("provenance") or {}).get("versions"),
    }
    return Run(label, path, {**gen, **judged}, info, summaries)


def default_labels(paths: List[Path]) -> List[str]:
    """Directory names, made unique with the parent name (or an index) where they clash."""
    names = [Path(p).name or str(p) for p in paths]
    out = []
    for i, (p, n) in enumerate(zip(paths, names)):
        if names.count(n) > 1:
            n = f"{Path(p).parent.name}/{n}" if Path(p).parent.name else f"{n}#{i}"
        if n in out:
            n = f"{n}#{i}"
        out.append(n)
    return out


def load_sweep(path: Path) -> dict:
    """sweep.json with each level's values checked; the label is the model name."""
    path = Path(path)
    p = path / "sweep.json"
    if not p.is_file():
        raise UserError(f"sweep directory '{path}' has no sweep.json; pass a directory made by 'mdlm-bench sweep'")
    s = _load_json(p, "sweep file")
    levels = s.get("levels") if isinstance(s, dict) else None
    if not isinstance(levels, list) or not levels:
        raise UserError(f"'{p}' lists no levels; re-run 'mdlm-bench sweep --out {path}'")
    for lv in levels:
        if not isinstance(lv, dict) or "fraction" not in lv or not isinstance(lv.get("metrics"), dict):
            raise UserError(f"'{p}' has a level without 'fraction' or 'metrics'; re-run 'mdlm-bench sweep'")
    levels = sorted(levels, key=lambda lv: float(lv["fraction"]))
    return {
        "label": str(s.get("model") or path.name),
        "path": str(path),
        "model": s.get("model"),
        "tasks": s.get("tasks") or [],
        "operator": s.get("operator"),
        "perturbation": s.get("perturbation"),
        "seeds": s.get("seeds") or [],
        "levels": [
            {
                "fraction": float(lv["fraction"]),
                "effective_fraction": _number(lv.get("effective_fraction")),
                "content_moves": _number(lv.get("content_moves")),
                "content_fraction": _number(lv.get("content_fraction")),
                "rows": _number(lv.get("rows")),
                "prompts": _number(lv.get("prompts")),
                "seeds": lv.get("seeds"),
                "dir": lv.get("dir"),
                "metrics": {str(m): {k: _number(v.get(k)) for k in ("mean", "ci_low", "ci_high", "n", "prompts")}
                            for m, v in lv["metrics"].items() if isinstance(v, dict)},
                "edit_distance": {k: _number((lv.get("edit_distance") or {}).get(k))
                                  for k in ("mean", "ci_low", "ci_high")},
                "unchanged_rate": _number(lv.get("unchanged_rate")),
                "length_change": {k: _number((lv.get("length_change") or {}).get(k))
                                  for k in ("mean", "ci_low", "ci_high")},
            }
            for lv in levels
        ],
    }
