"""Published-format model outputs -> an mdlm-bench run directory (kind "imported", task = bench name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

from mdlm_bench.benchdata import alpaca_records, alpaca_uid, field, read_jsonl_strict
from mdlm_bench.config import digest
from mdlm_bench.errors import UserError
from mdlm_bench.io import atomic_write_text
from mdlm_bench.judge.answers import read_answer_file
from mdlm_bench.rundir import GENERATIONS, claim_dir, locked, mark_dir, write_config


def _alpaca_rows(path: Path) -> List[dict]:
    rows, seen = [], {}
    for _, rec, instruction, where in alpaca_records(path):
        output = field(rec, "output", where)
        if not isinstance(output, str):
            raise UserError(f"{where}: 'output' is {type(output).__name__ if output is not None else 'null'}, "
                            f"not text; fix or remove that record")
        if instruction in seen:
            raise UserError(f"{where}: the same instruction as {seen[instruction]}; keep one output per "
                            f"instruction")
        seen[instruction] = where.rsplit(": ", 1)[-1]
        rows.append({"task": "alpaca-eval", "uid": alpaca_uid(instruction), "prompt": instruction, "output": output})
    return rows


def _arena_rows(path: Path, bench: str) -> List[dict]:
    answers = read_answer_file(path)
    prompts = {}
    for _lineno, row in read_jsonl_strict(path):
        msgs = row.get("messages") or []
        users = [m.get("content") for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
        if users and isinstance(users[0], str):
            prompts[str(row.get("uid"))] = users[0]
    return [{"task": bench, "uid": uid, "prompt": prompts.get(uid),
             "output": turns[0] if len(turns) == 1 else turns} for uid, turns in answers.items()]


def import_outputs(path: Path, fmt: str, model_name: str, out: Path, bench: Optional[str] = None) -> int:
    if not path.is_file():
        raise UserError(f"outputs file '{path}' does not exist; check the path")
    if claim_dir(out, "imported") or (out / GENERATIONS).exists():
        raise UserError(f"'{out}' already holds {GENERATIONS}; choose a new --out directory")
    if fmt == "alpaca-eval":
        rows = _alpaca_rows(path)
        bench = "alpaca-eval"
    else:
        if bench is None:
            raise UserError("arena-hard answers do not say their version; pass --bench arena-hard-v0.1 or "
                            "--bench arena-hard-v2.0")
        rows = _arena_rows(path, bench)
    if not rows:
        raise UserError(f"'{path}' holds no outputs; check the file")
    config = {"source": str(path.resolve()), "format": fmt, "model": model_name, "bench": bench}
    dg = digest(config)
    with locked(out, "run directory"):
        mark_dir(out, "imported")
        write_config(out, "imported", config, dg)
        _write_rows(out, rows, dg, model_name)
    return len(rows)


def _write_rows(out: Path, rows: List[dict], dg: str, model_name: str) -> None:
    lines = [json.dumps({**r, "seed": 0, "digest": dg, "model": model_name, "metrics": {}, "decoding": None,
                         "perturbation": None}, ensure_ascii=False) + "\n" for r in rows]
    atomic_write_text(out / GENERATIONS, "".join(lines))
