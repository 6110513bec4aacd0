"""User-facing errors: one line, never a traceback. Exit codes of `mdlm-bench` (also in the README):

    0   success
    1   finished, but incomplete (judge: some games failed; run the same command again)
    2   bad input: arguments, config files, data files, checkpoints (UserError, and unreadable JSON, YAML,
        UTF-8 or safetensors files)
    3   the operating system refused a read or write (permissions, missing path, I/O error)
    4   no space left on the device (finished rows are kept; free space and run the same command again)
    70  internal error: a bug; the traceback is printed with a request to report it
    130 interrupted (Ctrl-C); finished rows are kept
"""

from __future__ import annotations

import difflib
from typing import Iterable


EXIT_BAD_INPUT, EXIT_OS, EXIT_NO_SPACE, EXIT_BUG, EXIT_INTERRUPTED = 2, 3, 4, 70, 130
BUG_URL = "the mdlm-bench issue tracker"


class UserError(Exception):
    """Bad input. The message names the problem and the fix; the CLI prints it and exits 2."""

    exit_code = EXIT_BAD_INPUT


def describe_known(e: BaseException):
    """(exit code, one-line message) for the error classes the CLI boundary knows, else None."""
    import errno
    import json

    if isinstance(e, UserError):
        return e.exit_code, str(e)
    if isinstance(e, UnicodeDecodeError):
        return EXIT_BAD_INPUT, (f"a file is not UTF-8 text ({e.reason} at byte {e.start}); re-save it as UTF-8")
    if isinstance(e, json.JSONDecodeError):
        return EXIT_BAD_INPUT, f"a JSON file is not valid ({e.msg} at line {e.lineno}); fix or restore it"
    name = type(e).__name__
    mod = type(e).__module__ or ""
    if mod.startswith("yaml") and name.endswith("Error"):
        return EXIT_BAD_INPUT, f"a YAML file is not valid ({str(e).splitlines()[0][:100]}); fix its syntax"
    if name == "SafetensorError" or "safetensors" in mod:
        return EXIT_BAD_INPUT, (f"a .safetensors weights file is damaged or truncated ({str(e)[:100]}); "
                                "restore the checkpoint or download it again")
    if isinstance(e, OSError):
        where = f" '{e.filename}'" if e.filename else ""
        if e.errno == errno.ENOSPC:
            return EXIT_NO_SPACE, (f"no space left on the device{' writing' + where if where else ''}; free some "
                                   "space and run the same command again (finished rows are kept)")
        return EXIT_OS, f"{e.strerror or e}{where}; check the path and its permissions"
    return None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' or a list of the valid choices when nothing is close."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (choose from: {', '.join(choices)})"


def unknown(kind: str, name: str, choices: Iterable[str]) -> UserError:
    return UserError(f"unknown {kind} '{name}'{did_you_mean(name, choices)}")
