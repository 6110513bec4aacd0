"""`python -m mdlm_bench.evaluate.lm_eval`: lm-eval's own command line with the `mdlm` model registered.

When every requested task is found under --include_path, lm-eval's thousands of built-in tasks are
not indexed (loads in ms, not seconds). The model itself lives in `evaluate.lm_eval_model`; its public
names are re-exported here.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Optional, Sequence

from mdlm_bench.errors import UserError
from mdlm_bench.evaluate.lm_eval_model import (NAME, PAD_TO, MDLMEvalLM, cut_at_stops, decoding_from_args,
                                                register)

__all__ = ["NAME", "PAD_TO", "MDLMEvalLM", "cut_at_stops", "decoding_from_args", "register", "main"]


def _tasks_only_from_include_path(args) -> bool:
    """Whether every requested task is a name found under --include_path (then defaults need no index)."""
    if getattr(args, "command", None) != "run" or not getattr(args, "include_path", None) or not args.tasks:
        return False
    from lm_eval.tasks import TaskManager

    names = [t for task in args.tasks for t in str(task).split(",") if t]
    if any(n.endswith(".yaml") or "/" in n for n in names):
        return False
    tm = TaskManager(include_path=args.include_path, include_defaults=False)
    return all(tm.match_tasks([n]) for n in names)


@contextmanager
def _without_default_tasks(enabled: bool):
    """lm-eval's CLI builds TaskManager(include_path=...) itself; swap in one that skips the built-ins."""
    import lm_eval.tasks as tasks_mod

    original = tasks_mod.TaskManager
    if not enabled:
        yield
        return

    class IncludeOnly(original):
        def __init__(self, *a, **kw):
            kw["include_defaults"] = False
            super().__init__(*a, **kw)

    tasks_mod.TaskManager = IncludeOnly
    try:
        yield
    finally:
        tasks_mod.TaskManager = original


def main(argv: Optional[Sequence[str]] = None) -> int:
    """lm-eval's own CLI with `mdlm` registered; arguments pass through unchanged."""
    register()
    argv = list(sys.argv[1:] if argv is None else argv)
    saved = sys.argv
    sys.argv = ["python -m mdlm_bench.evaluate.lm_eval"] + argv  # lm-eval's parsers read sys.argv
    try:
        try:
            from lm_eval._cli import HarnessCLI
        except ImportError:  # lm-eval < 0.4.10: the single-command CLI, built-in tasks always indexed
            from lm_eval.__main__ import cli_evaluate

            cli_evaluate()
            return 0
        from lm_eval.utils import setup_logging

        setup_logging()
        cli = HarnessCLI()
        args = cli.parse_args()
        with _without_default_tasks(_tasks_only_from_include_path(args)):
            cli.execute(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return UserError.exit_code
    except ValueError as e:
        if not str(e).startswith("Tasks not found"):
            raise
        print(f"error: {str(e)[0].lower()}{str(e)[1:]}; check the names ('lm-eval ls tasks') or pass "
              "--include_path <repo>/tasks for the synth_* tasks", file=sys.stderr)
        return UserError.exit_code
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
