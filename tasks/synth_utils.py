"""lm-eval `!function` helpers of the synth_* tasks: load the bundled rows, score exact match.

The bundled rows (tasks/data/synth_<family>.jsonl) are the 'eval' split of mdlm_bench.train.synthetic
(heldout_rows): 200 rows per family, disjoint by prompt from the bundled models' training data
(3000 rows per family, seed 0) and from the 'dev' split used to choose training recipes (the first 32 are
the rows bundled before the powered reference; the rest were drawn after dev and avoid it). Families with few
distinct prompts therefore hold only unseen ones (e.g. spell: three-digit numbers). Regenerate them with
`python tasks/synth_utils.py`; tests check the files still equal what the generator makes.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
ROWS_PER_FAMILY = 200
FAMILIES = ("copy", "reverse", "sort", "count", "arithmetic", "spell", "lookup")


class _QuietCustomDatasetNotice(logging.Filter):
    """lm-eval logs a two-line hint about --metadata for every task with custom_dataset; these tasks take
    no such arguments, so the hint is dropped for them (other tasks keep it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("synth_") and "Custom kwargs can be passed" in msg)


_task_log = logging.getLogger("lm_eval.api.task")
if not any(type(f).__name__ == "_QuietCustomDatasetNotice" for f in _task_log.filters):  # module may reload
    _task_log.addFilter(_QuietCustomDatasetNotice())


def data_file(family: str) -> Path:
    return DATA_DIR / f"synth_{family}.jsonl"


def load_family(synth_family: str, **_ignored):
    """custom_dataset hook: the family's bundled rows as DatasetDict {"test": ...}, wherever lm-eval runs.

    lm-eval also passes its metadata (model args, version) as keyword arguments; they are not needed here.
    """
    import datasets

    path = data_file(synth_family)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; regenerate it with 'python tasks/synth_utils.py'")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def strip_match(output: str, reference: str) -> float:
    """1.0 when the answer equals the reference once surrounding whitespace is stripped on both sides."""
    return float(output.strip() == reference.strip())


def process_results(doc: dict, results: list) -> dict:
    return {"exact_match": strip_match(results[0], doc["response"])}


def expected_rows(family: str):
    """The rows the bundled file must hold (pure function of family, seed, index)."""
    from mdlm_bench.train.synthetic import heldout_rows

    return heldout_rows("eval", ROWS_PER_FAMILY, families=[family])


def write_data() -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in expected_rows(family))
        data_file(family).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
    write_data()
    print(f"wrote {len(FAMILIES)} files of {ROWS_PER_FAMILY} rows (the 'eval' split) to {DATA_DIR}")
