"""The public data behind AlpacaEval 2's length-controlled win rate, found locally or fetched from the hub.

alpaca_eval downloads two CSV files anonymously from its public Hugging Face dataset `tatsu-lab/alpaca_eval`:
df_gamed.csv (the annotations of the verbose/concise "gamed" baselines, already featurised, with each
instruction's difficulty) and instruction_difficulty.csv (index -> difficulty). Where they are looked for,
first hit wins:

1. --difficulty PATH: a directory holding the files, or one of the files (the other is looked for beside it);
2. BENCH_DIR/alpaca-eval/;
3. the Hugging Face hub, into the user's cache (~/.cache/huggingface), unless HF_HUB_OFFLINE is set.

With df_gamed.csv the leaderboard's GLM (length_controlled_v1) is fitted; with only the difficulties,
length_controlled_noreg; with neither, length_controlled_minimal. The summary names which one it was.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from mdlm_bench.errors import UserError

HUB_REPO = "tatsu-lab/alpaca_eval"
GAMED, DIFFICULTY = "df_gamed.csv", "instruction_difficulty.csv"
GAMED_COLUMNS = ("index", "preference", "std_delta_len", "instruction_difficulty", "not_gamed_baseline")


@dataclass
class LcData:
    difficulty: Optional[Dict[int, float]] = None  # instruction index -> difficulty
    gamed: Optional[Dict[str, np.ndarray]] = None  # df_gamed.csv columns (GAMED_COLUMNS)
    sources: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def glm(self) -> str:
        if self.gamed is not None:
            return "length_controlled_v1"
        return "length_controlled_noreg" if self.difficulty is not None else "length_controlled_minimal"


def _float(x: str, where: str) -> float:
    try:
        return float(x) if x.strip() != "" else math.nan
    except ValueError:
        raise UserError(f"{where}: '{x}' is not a number; use alpaca_eval's published file") from None


def read_gamed(path: Path) -> Dict[str, np.ndarray]:
    """df_gamed.csv: one row per (gamed baseline, instruction); preference in [0, 1]."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in GAMED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path} lacks column '{missing[0]}'; use alpaca_eval's df_gamed.csv")
        rows = list(reader)
    out = {c: np.array([_float(r[c], f"{path}:{i + 2}") for i, r in enumerate(rows)])
           for c in GAMED_COLUMNS if c != "not_gamed_baseline"}
    out["not_gamed_baseline"] = np.array([r["not_gamed_baseline"].strip().lower() in ("true", "1") for r in rows])
    pref = out["preference"][~np.isnan(out["preference"])]
    if pref.size and (pref.min() < 0 or pref.max() > 1):
        raise UserError(f"{path}: preferences must lie in [0, 1]; use alpaca_eval's df_gamed.csv")
    return out


def difficulty_from_gamed(gamed: Dict[str, np.ndarray]) -> Dict[int, float]:
    """index -> difficulty of the first row with that index (alpaca_eval takes drop_duplicates('index'))."""
    out: Dict[int, float] = {}
    for i, d in zip(gamed["index"], gamed["instruction_difficulty"]):
        out.setdefault(int(i), float(d))
    return out


def read_difficulty(path: Path) -> Dict[int, float]:
    """instruction_difficulty.csv: the instruction index, then its difficulty."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or len(header) < 2:
            raise UserError(f"{path}: expected columns 'index,instruction_difficulty'; use alpaca_eval's file")
        out: Dict[int, float] = {}
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                out[int(float(row[0]))] = float(row[1])
            except (ValueError, IndexError):
                raise UserError(f"{path}:{lineno}: unreadable row; expected an index and a number") from None
    return out


def _hub_file(name: str, notes: List[str]) -> Optional[Path]:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=HUB_REPO, filename=name, repo_type="dataset"))
    except Exception as e:  # offline, blocked, hub down: fall back to the next variant, and say why
        notes.append(f"could not fetch {name} from the hub dataset {HUB_REPO}: {type(e).__name__}")
        return None


def find_lc_data(bench_dir: Optional[Path], difficulty: Optional[str]) -> LcData:
    data = LcData()
    found: Dict[str, Path] = {}
    if difficulty:
        p = Path(difficulty)
        if not p.exists():
            raise UserError(f"--difficulty '{p}' does not exist; pass alpaca_eval's {DIFFICULTY} or {GAMED}, "
                            f"or the directory holding them")
        folder = p if p.is_dir() else p.parent
        if p.is_file():
            found[GAMED if p.name == GAMED or _has_gamed_columns(p) else DIFFICULTY] = p
        for name in (GAMED, DIFFICULTY):
            if name not in found and (folder / name).is_file():
                found[name] = folder / name
        if not found:
            raise UserError(f"--difficulty '{p}' holds neither {GAMED} nor {DIFFICULTY}; download them from the "
                            f"hub dataset {HUB_REPO}")
    if not found and bench_dir is not None:
        for name in (GAMED, DIFFICULTY):
            if (Path(bench_dir) / "alpaca-eval" / name).is_file():
                found[name] = Path(bench_dir) / "alpaca-eval" / name
    if not found:
        for name in (GAMED, DIFFICULTY):
            got = _hub_file(name, data.notes)
            if got is not None:
                found[name] = got
    if GAMED in found:
        data.gamed = read_gamed(found[GAMED])
        data.difficulty = difficulty_from_gamed(data.gamed)
    elif DIFFICULTY in found:
        data.difficulty = read_difficulty(found[DIFFICULTY])
    data.sources = [str(found[n]) for n in (GAMED, DIFFICULTY) if n in found]
    return data


def _has_gamed_columns(path: Path) -> bool:
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    return "not_gamed_baseline" in header
