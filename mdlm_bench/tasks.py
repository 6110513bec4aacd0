"""The task catalogue: lm-eval YAML tasks in tasks/ and the open-ended benchmark prompt sets.

lm-eval tasks are scored (exact match etc.) through `lm_eval.simple_evaluate`; open-ended sets are
only decoded here and scored later by `mdlm-bench judge`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Optional

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
    from mdlm_bench.synth_rows import known

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
