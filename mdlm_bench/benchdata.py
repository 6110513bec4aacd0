"""Readers of published benchmark prompt files, in the layouts their authors publish.

Expected layout under the benchmark directory (``--bench-dir`` or ``$MDLM_BENCH_DATA``):

    arena-hard-v0.1/question.jsonl           {uid, category, cluster, prompt}
    arena-hard-v2.0/question.jsonl           {uid, category, subcategory, prompt}
    mt-bench/question.jsonl                  {question_id, category, turns}
    mt-bench/reference_answer_gpt-4.jsonl    {question_id, choices: [{turns}]}
    alpaca-eval/gpt4_1106_preview_outputs.json   [{instruction, output, generator, dataset}]
    wildbench/*.jsonl | *.json               {session_id, conversation_input: [{role, content}], checklist, ...}
    wildbench/eval_template.{score,pairwise}.v2.md   judge templates (allenai/WildBench evaluation/)
    creative-writing-bench/creative_writing_prompts*.json   {id: {title, writing_prompt, seed_modifiers, ...}}
    creative-writing-bench/{creative_writing_criteria,negative_criteria}.txt, creative_writing_judging_prompt.txt

Where a set is published on the Hugging Face hub (``HUB``: dataset id, pinned commit, data files), a
run without a local copy loads it with ``datasets.load_dataset`` into the user's cache (downloaded once,
then read offline); a local copy under the benchmark directory always wins. ``load_bench`` returns the
prompts and a record of where they came from, which the run stores in config.json.

Every loader returns a list of prompts ``{"uid", "turns", "category", "reference", "extra"}``.
AlpacaEval publishes no ids: its uid is ``alpaca_uid(instruction)``, the first 16 hex digits of the
SHA-256 of the UTF-8 instruction text, so it is stable across copies and orderings of the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from mdlm_bench.errors import UserError
from mdlm_bench.registry import Registry

ENV_VAR = "MDLM_BENCH_DATA"
MT_BENCH_REFERENCE_CATEGORIES = ("math", "reasoning", "coding")  # FastChat's NEED_REF_CATS

Prompt = Dict[str, Any]
BENCHES: Registry[Callable[[Path], List[Prompt]]] = Registry("benchmark")


def resolve_bench_dir(flag_value: Optional[str]) -> Path:
    """The benchmark directory: the flag, else $MDLM_BENCH_DATA."""
    value = flag_value or os.environ.get(ENV_VAR)
    if not value:
        raise UserError(
            f"no benchmark directory given; pass --bench-dir DIR or set the environment variable {ENV_VAR}"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UserError(f"benchmark directory '{path}' does not exist; check --bench-dir or {ENV_VAR}")
    return path


def load_prompts(bench: str, bench_dir: Path) -> List[Prompt]:
    return BENCHES.get(bench)(Path(bench_dir))


def alpaca_uid(instruction: str) -> str:
    return hashlib.sha256(instruction.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- file helpers


def expect_file(bench_dir: Path, *parts: str) -> Path:
    path = Path(bench_dir).joinpath(*parts)
    if not path.is_file():
        raise UserError(f"benchmark file '{path}' not found; put the published file there or fix --bench-dir")
    return path


def read_jsonl_strict(path: Path) -> List[tuple]:
    """[(lineno, row)] for every non-empty line; a bad line is an error naming file and line."""
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{lineno}: not UTF-8 text ({e.reason}); re-save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise UserError(f"{path}:{lineno}: not valid JSON ({str(e)[:60]}); fix or re-download the file") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object; fix or re-download the file")
            out.append((lineno, row))
    return out


def read_json_strict(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({str(e)[:60]}); fix or re-download the file") from None


def field(row: dict, name: str, where: str, kind: type | tuple = object) -> Any:
    if name not in row:
        raise UserError(f"{where}: missing field '{name}'; the file does not follow the published format")
    value = row[name]
    if kind is not object and not isinstance(value, kind):
        raise UserError(f"{where}: field '{name}' has type {type(value).__name__}; fix the file")
    return value


def _prompt(uid: Any, turns: List[str], category: Optional[str], reference: Optional[List[str]],
            extra: Dict[str, Any]) -> Prompt:
    return {"uid": str(uid), "turns": list(turns), "category": category, "reference": reference, "extra": extra}


# ------------------------------------------------------------------------------------------ arena-hard


def _arena_hard_rows(rows: Iterable[tuple], category: Optional[str] = None) -> List[Prompt]:
    """Prompts from (where, row) pairs of an Arena-Hard question file {uid, category, prompt, ...}."""
    out = []
    for where, row in rows:
        uid = field(row, "uid", where)
        prompt = field(row, "prompt", where, str)
        cat = field(row, "category", where, str)
        if category is not None and cat != category:
            continue
        extra = {k: v for k, v in row.items() if k not in ("uid", "prompt", "category")}
        out.append(_prompt(uid, [prompt], cat, None, extra))
    return out


def _arena_hard(bench_dir: Path, folder: str, category: Optional[str] = None) -> List[Prompt]:
    path = expect_file(bench_dir, folder, "question.jsonl")
    return _arena_hard_rows(((f"{path}:{n}", row) for n, row in read_jsonl_strict(path)), category)


BENCHES.add("arena-hard-v0.1", lambda d: _arena_hard(d, "arena-hard-v0.1"))
BENCHES.add("arena-hard-v2.0", lambda d: _arena_hard(d, "arena-hard-v2.0"))
BENCHES.add("arena-hard-v2.0-hard-prompt", lambda d: _arena_hard(d, "arena-hard-v2.0", "hard_prompt"))
BENCHES.add("arena-hard-v2.0-creative-writing", lambda d: _arena_hard(d, "arena-hard-v2.0", "creative_writing"))


# -------------------------------------------------------------------------------------------- mt-bench


@BENCHES.register("mt-bench")
def _mt_bench(bench_dir: Path) -> List[Prompt]:
    qpath = expect_file(bench_dir, "mt-bench", "question.jsonl")
    rpath = expect_file(bench_dir, "mt-bench", "reference_answer_gpt-4.jsonl")
    refs: Dict[str, List[str]] = {}
    for lineno, row in read_jsonl_strict(rpath):
        where = f"{rpath}:{lineno}"
        qid = field(row, "question_id", where)
        choices = field(row, "choices", where, list)
        if not choices or not isinstance(choices[0], dict):
            raise UserError(f"{where}: field 'choices' is empty; fix the file")
        refs[str(qid)] = [str(t) for t in field(choices[0], "turns", where, list)]
    out = []
    for lineno, row in read_jsonl_strict(qpath):
        where = f"{qpath}:{lineno}"
        qid = field(row, "question_id", where)
        cat = field(row, "category", where, str)
        turns = field(row, "turns", where, list)
        reference = refs.get(str(qid)) if cat in MT_BENCH_REFERENCE_CATEGORIES else None
        if cat in MT_BENCH_REFERENCE_CATEGORIES and reference is None:
            raise UserError(f"{where}: {cat} question {qid} has no reference in {rpath}; use the published files")
        extra = {k: v for k, v in row.items() if k not in ("question_id", "category", "turns")}
        out.append(_prompt(qid, [str(t) for t in turns], cat, reference, extra))
    return out


# ----------------------------------------------------------------------------------------- alpaca-eval

ALPACA_OUTPUTS = "gpt4_1106_preview_outputs.json"


def alpaca_records(path: Path):
    """(index, record, instruction, where) for each record of an AlpacaEval outputs JSON list."""
    data = read_json_strict(path)
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of {{instruction, output}} records; fix the file")
    for i, row in enumerate(data):
        where = f"{path}: record {i}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected an object; fix the file")
        yield i, row, field(row, "instruction", where, str), where


@BENCHES.register("alpaca-eval")
def _alpaca_eval(bench_dir: Path) -> List[Prompt]:
    path = expect_file(bench_dir, "alpaca-eval", ALPACA_OUTPUTS)
    out = []
    for i, row, instruction, _ in alpaca_records(path):
        extra = {"index": i, "dataset": row.get("dataset"), "baseline_output": row.get("output"),
                 "baseline_generator": row.get("generator")}
        out.append(_prompt(alpaca_uid(instruction), [instruction], row.get("dataset"), None, extra))
    return out


# ------------------------------------------------------------------------------------------- wildbench


def _data_files(folder: Path, patterns: tuple, what: str) -> List[Path]:
    files = sorted({p for pat in patterns for p in folder.glob(pat)}) if folder.is_dir() else []
    if not files:
        raise UserError(f"no {what} file found: expected {folder / patterns[0]}; put the published file there")
    return files


@BENCHES.register("wildbench")
def _wildbench(bench_dir: Path) -> List[Prompt]:
    out = []
    for path in _data_files(Path(bench_dir) / "wildbench", ("*.jsonl", "*.json"), "WildBench"):
        if path.suffix == ".jsonl":
            rows = [(f"{path}:{n}", r) for n, r in read_jsonl_strict(path)]
        else:
            data = read_json_strict(path)
            if not isinstance(data, list):
                raise UserError(f"{path}: expected a JSON list of WildBench rows; fix the file")
            rows = [(f"{path}: record {i}", r) for i, r in enumerate(data)]
        out += _wildbench_rows(rows)
    return out


def _wildbench_rows(rows: Iterable[tuple]) -> List[Prompt]:
    """WildBench prompts from (where, row) pairs: `turns` = [last user turn], extra["history"] = every earlier
    message as given (allenai/WildBench src/eval.py compose_eval_item); the checklist rides in extra."""
    out = []
    for where, row in rows:
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected an object; fix the file")
        sid = field(row, "session_id", where)
        msgs = []
        for msg in field(row, "conversation_input", where, list):
            role = field(msg, "role", where) if isinstance(msg, dict) else None
            if role not in ("user", "assistant"):
                raise UserError(f"{where}: conversation_input holds a message that is not a user or assistant "
                                f"turn; fix the file")
            msgs.append({"role": role, "content": str(field(msg, "content", where))})
        if not msgs or msgs[-1]["role"] != "user":
            raise UserError(f"{where}: conversation_input must end with a user turn; fix the file")
        refs = row.get("references")
        reference = [str(v) for v in refs.values() if v is not None] if isinstance(refs, dict) and refs else None
        extra = {k: v for k, v in row.items() if k not in ("session_id", "references", "conversation_input")}
        extra["history"] = msgs[:-1]
        extra.setdefault("checklist", [])
        out.append(_prompt(sid, [msgs[-1]["content"]], row.get("primary_tag"), reference or None, extra))
    return out


# ------------------------------------------------------------------------------ creative-writing-bench

CW_ITERATIONS = 3  # the iteration count creative-writing-bench's README gives as default (32 prompts -> 96 pieces)


def cw_uid(pid: str, iteration: int) -> str:
    return f"{pid}#it{iteration}"


def creative_writing_rows(data: Dict[str, Any], path: Path, iterations: int = CW_ITERATIONS) -> List[Prompt]:
    """One prompt per (id, iteration i in 1..N), <SEED> replaced by seed_modifiers[(i-1) % len]; a prompt
    without seed modifiers is skipped (EQ-bench/creative-writing-bench core/benchmark.py)."""
    out = []
    for pid, row in data.items():
        where = f"{path}: prompt '{pid}'"
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected an object; fix the file")
        base = field(row, "writing_prompt", where, str)
        field(row, "title", where)
        mods = row.get("seed_modifiers") or []
        if not isinstance(mods, list) or not all(isinstance(m, str) for m in mods):
            raise UserError(f"{where}: field 'seed_modifiers' must be a list of strings; fix the file")
        for i in range(1, iterations + 1) if mods else ():
            mod = mods[(i - 1) % len(mods)]
            extra = {k: v for k, v in row.items() if k not in ("writing_prompt", "category", "seed_modifiers")}
            extra.update(prompt_id=str(pid), iteration=i, seed_modifier=mod, base_prompt=base)
            out.append(_prompt(cw_uid(str(pid), i), [base.replace("<SEED>", mod)], row.get("category"), None, extra))
    return out


@BENCHES.register("creative-writing-bench")
def _creative_writing(bench_dir: Path) -> List[Prompt]:
    out = []
    folder = Path(bench_dir) / "creative-writing-bench"
    for path in _data_files(folder, ("creative_writing_prompts*.json",), "creative-writing-bench prompts"):
        data = read_json_strict(path)
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a JSON object {{id: {{title, writing_prompt}}}}; fix the file")
        out += creative_writing_rows(data, path)
    return out


# ------------------------------------------------------------------------------------ hub sources


@dataclass(frozen=True)
class HubSource:
    """A published copy on the Hugging Face hub: dataset id (or a local dataset repository directory, read
    the same way), the commit it is pinned to, and the data files inside it (a path or glob)."""

    repo: str
    revision: Optional[str]
    data_files: str
    parse: Callable[[Iterable[tuple]], List[Prompt]]

    def record(self) -> Dict[str, Any]:
        return {"kind": "hub", "repo": self.repo, "revision": self.revision, "data_files": self.data_files}


ARENA_HARD = "lmarena-ai/arena-hard-auto"
_V2 = ("15f3746e21432264ce9b453999bde4f3c946d2e6", "data/arena-hard-v2.0/question.jsonl")
HUB: Dict[str, HubSource] = {
    "arena-hard-v0.1": HubSource(ARENA_HARD, "c75cc2581ae7ac4b66ce5c804c002fe5a7c6339e",
                                 "data/arena-hard-v0.1/question.jsonl", _arena_hard_rows),
    "arena-hard-v2.0": HubSource(ARENA_HARD, *_V2, _arena_hard_rows),
    "arena-hard-v2.0-hard-prompt": HubSource(ARENA_HARD, *_V2, lambda rows: _arena_hard_rows(rows, "hard_prompt")),
    "arena-hard-v2.0-creative-writing": HubSource(ARENA_HARD, *_V2,
                                                  lambda rows: _arena_hard_rows(rows, "creative_writing")),
    "wildbench": HubSource("allenai/WildBench", "5d07b92bc18e5d52b90b885cbc1594a360605a1b", "v2/test-*.parquet",
                           _wildbench_rows),
}
# MT-Bench, AlpacaEval's reference outputs and Creative-Writing-Bench are published on GitHub, not as hub
# datasets in the layout read here: they load from the benchmark directory only.


def local_folder(bench: str) -> str:
    return "arena-hard-v2.0" if bench.startswith("arena-hard-v2.0") else bench


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))


def hub_cached(src: HubSource) -> bool:
    """Whether the pinned files are in the local hub cache (or the source is a local repository)."""
    if Path(src.repo).is_dir():
        return any(Path(src.repo).glob(src.data_files))
    from huggingface_hub import constants

    snap = Path(constants.HF_HUB_CACHE) / f"datasets--{src.repo.replace('/', '--')}" / "snapshots"
    return any((snap / (src.revision or "")).glob(src.data_files)) if src.revision else any(
        snap.glob(f"*/{src.data_files}"))


def load_hub(bench: str) -> List[Prompt]:
    """The bench's published copy through `datasets.load_dataset` (downloaded once into the user's cache)."""
    src = HUB[bench]
    import datasets

    kwargs: Dict[str, Any] = {"data_files": src.data_files, "split": "train"}
    if src.revision:
        kwargs["revision"] = src.revision
    try:
        ds = datasets.load_dataset(src.repo, **kwargs)
    except Exception as e:  # datasets raises ConnectionError, FileNotFoundError, ValueError, ... here
        why = " ".join(str(e).split())[:160]
        raise UserError(f"{bench}: could not load {src.repo}@{(src.revision or 'main')[:12]} from the hub or the "
                        f"local cache ({why}); pass --bench-dir DIR (or set {ENV_VAR}) with the published files"
                        ) from None
    where = f"{src.repo}/{src.data_files}"
    return src.parse((f"{where}: row {i}", dict(row)) for i, row in enumerate(ds))


def load_bench(bench: str, bench_dir: Optional[str] = None) -> Tuple[List[Prompt], Dict[str, Any]]:
    """(prompts, source record). The local copy (--bench-dir or $MDLM_BENCH_DATA, the bench's folder
    present) wins; else the hub source; a bench with neither is the usual 'no benchmark directory' error."""
    BENCHES.get(bench)  # unknown names: did-you-mean error
    value = bench_dir or os.environ.get(ENV_VAR)
    if value:
        root = resolve_bench_dir(value)
        if bench not in HUB or (root / local_folder(bench)).exists():
            return load_prompts(bench, root), {"kind": "local", "path": str(root)}
    if bench in HUB:
        return load_hub(bench), HUB[bench].record()
    resolve_bench_dir(None)  # raises: no directory given
    raise AssertionError("unreachable")


def bench_status(bench: str, bench_dir: Optional[str] = None) -> Tuple[str, str]:
    """(status, where) for `ls tasks`: local | cached | will download | missing."""
    value = bench_dir or os.environ.get(ENV_VAR)
    if value and Path(value).expanduser().is_dir():
        root = Path(value).expanduser()
        if (root / local_folder(bench)).exists():
            try:
                load_prompts(bench, root)
                return "local", str(root / local_folder(bench))
            except UserError:
                return "local (unreadable)", str(root / local_folder(bench))
    src = HUB.get(bench)
    if src is None:
        return "missing", f"--bench-dir/{local_folder(bench)} (or ${ENV_VAR})"
    where = f"hub {src.repo}@{(src.revision or 'main')[:7]}"
    if hub_cached(src):
        return "cached", where
    return ("missing (offline)" if _offline() else "will download"), where
