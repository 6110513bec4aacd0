"""Answers to judge: a run's generations, another run as baseline, or published baseline answer files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from mdlm_bench.benchdata import expect_file, field as need, read_jsonl_strict
from mdlm_bench.errors import UserError
from mdlm_bench.rundir import load_generations, read_config


@dataclass
class Item:
    """One judged unit: a prompt with the run's answer and (pairwise) the baseline's answer."""

    task: str
    uid: str
    seed: int
    turns: List[str]  # user turns
    answer: List[str]  # run's answer, one per turn
    baseline: Optional[List[str]] = None
    category: Optional[str] = None
    reference: Optional[List[str]] = None
    extra: Dict[str, Any] = field(default_factory=dict)


def as_turns(value: Any) -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def run_rows(run_dir: Path, tasks: Optional[Iterable[str]] = None) -> List[dict]:
    """Generation rows of `run_dir` (restricted to `tasks`) that carry an output."""
    rows = load_generations(Path(run_dir))
    wanted = set(tasks) if tasks is not None else None
    return [r for r in rows if (wanted is None or r.get("task") in wanted) and as_turns(r.get("output")) is not None
            and "uid" in r]


def by_uid_seed(rows: List[dict]) -> Dict[Tuple[str, int], dict]:
    """(uid, seed) -> row; a later row for the same key (a resumed run) wins."""
    out: Dict[Tuple[str, int], dict] = {}
    for r in rows:
        out[(str(r["uid"]), int(r.get("seed", 0)))] = r
    return out


def run_label(run_dir: Path) -> str:
    cfg = read_config(Path(run_dir)) or {}
    model = (cfg.get("config") or {}).get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("path")
    return f"{Path(run_dir).name}" + (f" ({model})" if isinstance(model, str) else "")


def check_missing(bench: str, run_dir: Path, prompt_uids: List[str], have: Iterable[str], what: str = "run") -> None:
    missing = [u for u in prompt_uids if u not in set(have)]
    if missing:
        raise UserError(
            f"{what} '{run_dir}' has no generations for {len(missing)} of {len(prompt_uids)} {bench} prompts "
            f"(e.g. uid {missing[0]}); generate them with 'mdlm-bench run' on task {bench} first, or pass "
            f"--allow-partial to judge only those present")


def check_same_prompts(run_dir: Path, baseline_dir: Path, run_keys: Iterable, base_keys: Iterable) -> None:
    a, b = set(run_keys), set(base_keys)
    if a != b:
        raise UserError(
            f"baseline '{baseline_dir}' was made on a different prompt set than '{run_dir}' "
            f"({len(a - b)} only in the run, {len(b - a)} only in the baseline, {len(a & b)} shared); "
            f"judge two runs of the same tasks and prompts")


# ------------------------------------------------------------------------------ published answer files


def read_answer_file(path: Path) -> Dict[str, List[str]]:
    """uid -> answer turns from an Arena-Hard model_answer file (v2 'messages' or v0.1 'choices' rows)."""
    out: Dict[str, List[str]] = {}
    for lineno, row in read_jsonl_strict(path):
        where = f"{path}:{lineno}"
        if "messages" in row:
            uid = need(row, "uid", where)
            msgs = need(row, "messages", where, list)
            turns = []
            for m in msgs:
                if isinstance(m, dict) and m.get("role") == "assistant":
                    content = m.get("content")
                    turns.append(content.get("answer") if isinstance(content, dict) else content)
            if not turns or not all(isinstance(t, str) for t in turns):
                raise UserError(f"{where}: no assistant answer in 'messages'; fix the file")
        else:
            uid = row.get("uid", row.get("question_id"))
            if uid is None:
                raise UserError(f"{where}: missing field 'uid'; the file does not follow the published format")
            choices = need(row, "choices", where, list)
            if not choices or not isinstance(choices[0], dict):
                raise UserError(f"{where}: 'choices' is empty or not a list of objects; each row needs "
                                f"choices: [{{\"turns\": [...]}}]; fix or remove that row")
            turns = [t.get("content") if isinstance(t, dict) else t for t in need(choices[0], "turns", where, list)]
            if not turns or not all(isinstance(t, str) for t in turns):
                raise UserError(f"{where}: the answer has no turns, or a turn without text content; fix or "
                                f"remove that row")
        if str(uid) in out:
            raise UserError(f"{where}: uid {uid} answered twice; keep one answer per uid")
        out[str(uid)] = [str(t) for t in turns]
    return out


def arena_hard_baseline_file(bench_dir: Path, folder: str, model: str) -> Path:
    """Published baseline answers: <folder>/<model>.jsonl (as in the shared data) or model_answer/<model>.jsonl."""
    for cand in (Path(bench_dir) / folder / f"{model}.jsonl", Path(bench_dir) / folder / "model_answer" / f"{model}.jsonl"):
        if cand.is_file():
            return cand
    return expect_file(bench_dir, folder, "model_answer", f"{model}.jsonl")
