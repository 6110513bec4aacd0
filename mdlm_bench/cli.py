"""`mdlm-bench` command line. Thin on purpose: each subcommand lives in mdlm_bench/commands/<name>.py
with NAME, HELP, add_arguments(parser) and main(args); heavy imports happen inside main()."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import List, Optional

from mdlm_bench import __version__
from mdlm_bench.errors import BUG_URL, EXIT_BUG, EXIT_INTERRUPTED, describe_known


def _command_modules():
    import mdlm_bench.commands as pkg

    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"mdlm_bench.commands.{info.name}"))
    return sorted(mods, key=lambda m: getattr(m, "ORDER", 100))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, like every other bad input
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mdlm-bench",
        description="Shift-robustness benchmarks and slack-CTC training for masked diffusion LMs.",
    )
    parser.add_argument("--version", action="version", version=f"mdlm-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    import os

    # Libraries' tqdm bars (lm-eval, datasets) would interleave with our rich progress bars.
    os.environ.setdefault("TQDM_DISABLE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 0
    old_columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = old_columns or str(_columns())
    try:
        rc = args._main(args)
    except KeyboardInterrupt:
        print("\ninterrupted: finished rows are saved; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # the boundary: known classes give one line, anything else is a bug
        known = describe_known(e)
        if known is None:
            import traceback

            traceback.print_exc()
            print(f"error: internal error ({type(e).__name__}); this is a bug, please report it with the command "
                  f"and the traceback above to {BUG_URL}", file=sys.stderr)
            return EXIT_BUG
        code, message = known
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return code
    finally:
        if old_columns is None:
            os.environ.pop("COLUMNS", None)
    return int(rc or 0)


def _columns() -> int:
    """The width rich lays out at: the terminal's where stdout or stderr is one, else 100 (rich would
    take 80 for a file or pipe and wrap mid-sentence there)."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            if stream.isatty():
                return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            continue
    return 100


if __name__ == "__main__":
    sys.exit(main())
