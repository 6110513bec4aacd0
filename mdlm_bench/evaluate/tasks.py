"""The task catalogue: lm-eval YAML tasks in tasks/ and the open-ended benchmark prompt sets.

lm-eval tasks are scored (exact match etc.) through `lm_eval.simple_evaluate`; open-ended sets are
only decoded here and scored later by `mdlm-bench judge`.

Bundled synth tasks of a known shape (tasks/data/synth_<family>.jsonl through `synth_utils.load_family`,
doc_to_text "{{prompt}}", zero-shot) are also catalogued without lm-eval (`synth_tasks`): importing
lm-eval (with `datasets` and pandas) costs about a second, so `run` resolves their names and decodes
their rows first (`evaluate.rows.predecode`); the lm-eval pass then finds every row and only scores it.
tests/test_fast_decoding_cli.py checks both routes give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional

from mdlm_bench.errors import UserError, did_you_mean
from mdlm_bench.resources import bundled_dir


@dataclass
class TaskInfo:
    name: str
    kind: str  # "lm-eval" | "open-ended"
    source: str  # where its data comes from
    present: bool  # data available here
    group: bool = False


def tasks_dir() -> Path:
    return bundled_dir("tasks")


TEMPLATE = "_synth_template.yaml"
LOADER = "synth_utils.load_family"


def _read_yaml(path: Path) -> dict:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader) or {}


@lru_cache(maxsize=1)
def synth_tasks() -> Dict[str, dict]:
    """task name -> {family, max_gen_toks} for bundled tasks of the known shape; group name -> {tasks}."""
    root = tasks_dir()
    if not (root / TEMPLATE).is_file():
        return {}
    tpl = _read_yaml(root / TEMPLATE)
    known = (tpl.get("doc_to_text") == "{{prompt}}" and tpl.get("custom_dataset") == f"!function {LOADER}"
             and tpl.get("output_type") == "generate_until" and not tpl.get("num_fewshot")
             and not tpl.get("description"))
    if not known:
        return {}
    out: Dict[str, dict] = {}
    groups = []
    for p in sorted(root.glob("*.yaml")):
        if p.name == TEMPLATE:
            continue
        y = _read_yaml(p)
        if "group" in y:
            groups.append(y)
            continue
        family = (y.get("dataset_kwargs") or {}).get("synth_family")
        if y.get("include") == TEMPLATE and family and set(y) <= {"include", "task", "dataset_kwargs"}:
            out[y["task"]] = {"family": family, "max_gen_toks": int(tpl["generation_kwargs"]["max_gen_toks"])}
    for g in groups:
        members = g.get("task") or []
        if members and all(isinstance(m, str) and m in out for m in members):
            out[g["group"]] = {"tasks": list(members)}
    return out


def known(names: List[str]) -> bool:
    """All `names` are bundled synth tasks or groups of them (so they resolve without lm-eval)."""
    cat = synth_tasks()
    return bool(names) and all(n in cat for n in names)


@lru_cache(maxsize=4)
def task_manager(include_path: Optional[str] = None):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path or str(tasks_dir()), include_defaults=False)


def lm_eval_tasks() -> List[TaskInfo]:
    tm = task_manager()
    out = []
    groups = set(getattr(tm, "all_groups", []) or [])
    for name in sorted(tm.all_tasks):
        entry = tm.task_index.get(name)
        yaml_path = getattr(entry, "yaml_path", None)
        src = f"tasks/{Path(yaml_path).name}" if yaml_path else "tasks/"
        out.append(TaskInfo(name, "lm-eval", src, True, group=name in groups))
    return out


def all_task_names() -> List[str]:
    from mdlm_bench.benchdata import BENCHES

    return [t.name for t in lm_eval_tasks()] + list(BENCHES)


def resolve(names: List[str]) -> List[TaskInfo]:
    """Check task names (did-you-mean on typos) and say which kind each is."""
    from mdlm_bench.benchdata import BENCHES, local_folder

    if known(names):  # bundled synth tasks: no need to import lm-eval just to check the names
        return [TaskInfo(n, "lm-eval", f"tasks/{n}.yaml", True) for n in names]
    lm = {t.name: t for t in lm_eval_tasks()}
    out = []
    for n in names:
        if n in lm:
            out.append(lm[n])
        elif n in BENCHES:
            out.append(TaskInfo(n, "open-ended", local_folder(n), True))
        else:
            raise UserError(f"unknown task '{n}'{did_you_mean(n, list(lm) + list(BENCHES))}; "
                            "see 'mdlm-bench ls tasks'")
    return out
