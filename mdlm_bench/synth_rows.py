"""Bundled synth tasks decoded before lm-eval is imported, so `run` shows its first row quickly.

lm-eval scores the synth_* tasks, but importing it (with `datasets` and pandas) costs about a second
and decoding does not need it. For a bundled task whose rows and prompt are known without lm-eval
(tasks/data/synth_<family>.jsonl through `synth_utils.load_family`, doc_to_text "{{prompt}}", zero-shot),
`run` decodes the rows first, through the same RowDecoder, with the prompt ids, settings and keys the
lm-eval adapter would use; the lm-eval pass then finds every row in the store and only scores them.
A task of any other shape is left to lm-eval. tests/test_fast_decoding_cli.py checks both routes give
the same rows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional

from mdlm_bench.tasks import tasks_dir

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


def predecode(decoder, names: List[str], base, limit: Optional[int]) -> None:
    """Decode the rows of the synth tasks among `names` (groups expanded) into the decoder's store."""
    from mdlm_bench.decode_config import config_for_max_tokens
    from mdlm_bench.io import read_jsonl
    from mdlm_bench.prompts import encode_prompt

    cat = synth_tasks()
    tasks: List[str] = []
    for n in names:
        for t in cat.get(n, {}).get("tasks", [n] if n in cat else []):
            if t not in tasks:
                tasks.append(t)
    model, chat = decoder.model, decoder.cfg.chat
    room = model.max_positions or 1 << 30
    for t in tasks:
        info = cat[t]
        cfg = config_for_max_tokens(base, info["max_gen_toks"])
        rows = read_jsonl(tasks_dir() / "data" / f"synth_{info['family']}.jsonl")
        rows = rows[:limit] if limit else rows
        items = [dict(task=t, uid=str(r.get("uid", i)), index=i, prompt=r["prompt"],
                      ids=encode_prompt(model, r["prompt"], chat)) for i, r in enumerate(rows)]
        if all(len(it["ids"]) + cfg.gen_length <= room for it in items):  # else lm-eval cuts prompts: its job
            decoder.decode_items(items, cfg)
