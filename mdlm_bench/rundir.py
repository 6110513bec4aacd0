"""The run directory: the one on-disk contract every command reads and writes.

    RUN_DIR/config.json        {"kind": "run"|"sweep-level"|"imported", "config": {...resolved...},
                                "digest": str, "provenance": {"versions", "machine"}, "created": iso}
    RUN_DIR/generations.jsonl  one row per (task, uid, seed):
        task, uid, seed, digest     content key (digest = config digest of the producing run)
        model                       model name / path
        prompt                      str, or list[str] of user turns for multi-turn tasks
        output                      str, or list[str] (one answer per turn)
        reference                   optional gold answer (str) for tasks with one
        metrics                     {name: float} per-row scores, e.g. {"exact_match": 1.0}
        decoding                    decoding settings dict
        perturbation                spec dict or None
        events                      list of [step, from_pos, to_pos, token_id] (perturbation log)
        requested_fraction, effective_fraction
        nfe                         forward passes used for this row
        token_ids                   generated ids (optional)
    RUN_DIR/metrics.json       {"tasks": {task: {metric: {"value", "type": "binary"|"continuous", "n"}}}}
    RUN_DIR/judgments/<bench>.jsonl and <bench>.summary.json   (judge)

Ownership: every directory the project writes (run, sweep, judgments, report, training output, imported
run, model) carries MARKER = {"mdlm_bench_dir": kind, "version": 1}; a command writes only into a new or
empty directory or one with its own kind's marker (`claim_dir`), and holds an OS lock while it writes
(`locked`), which the kernel drops when the process dies, even on kill -9.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from mdlm_bench.config import provenance
from mdlm_bench.errors import UserError
from mdlm_bench.io import read_json, read_jsonl, write_json

CONFIG = "config.json"
GENERATIONS = "generations.jsonl"
METRICS = "metrics.json"
MARKER = ".mdlm-bench-dir.json"  # not mdlm_bench.json: that name holds a checkpoint's model metadata
LOCK = ".mdlm-bench.lock"
MARKER_VERSION = 1
KINDS = ("run", "imported", "sweep", "judgments", "report", "train", "model")
_OWN_FILES = {MARKER, LOCK}
_REPORT_FILES = {"report.json", "report.md", "report.html", "plots", "headline.json", "headline.md", *_OWN_FILES}
# What each kind looked like before markers existed, so directories made by earlier versions stay usable.
LEGACY: Dict[str, Callable[[Path], bool]] = {
    "run": lambda d: (d / GENERATIONS).exists() and not (d / "mdlm_bench.json").exists()
    and _json_kind(d / CONFIG) in ("run", "sweep-level", "?"),
    "imported": lambda d: _json_kind(d / CONFIG) == "imported",
    "sweep": lambda d: (d / "sweep.json").exists() or any(d.glob("level-*/" + CONFIG)),
    "judgments": lambda d: d.name == "judgments" and (d.parent / GENERATIONS).exists(),
    "report": lambda d: any((d / n).exists() for n in ("report.json", "report.html", "headline.json"))
    and all(x.name in _REPORT_FILES for x in d.iterdir()),
    "train": lambda d: (d / "train_config.json").exists(),
    "model": lambda d: (d / "mdlm_bench.json").exists(),
}
VERB = {"run": "mdlm-bench run", "imported": "mdlm-bench import-outputs", "sweep": "mdlm-bench sweep",
        "judgments": "mdlm-bench judge", "report": "mdlm-bench report", "train": "mdlm-bench train",
        "model": "mdlm-bench init-model"}


def _json_kind(p: Path) -> Optional[str]:
    """config.json's "kind"; '?' when it exists but cannot be read (a damaged run config)."""
    if not p.exists():
        return None
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "?"
    return d.get("kind") if isinstance(d, dict) else "?"


def dir_kind(path: Path) -> Optional[str]:
    """The kind named by `path`'s marker, else the legacy kind it looks like, else None."""
    path = Path(path)
    m = path / MARKER
    if m.is_file():
        try:
            d = json.loads(m.read_text(encoding="utf-8"))
            return str(d["mdlm_bench_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            return "damaged"
    for kind, looks in LEGACY.items():
        if kind != "report" and looks(path):
            return kind
    return None


def check_out_path(path: Path, flag: str = "--out", is_file: bool = False) -> None:
    """Refuse a directory path that is a file, or any path under a file, before anything is written."""
    path = Path(path)
    if not is_file and path.exists() and not path.is_dir():
        raise UserError(f"{flag} '{path}' is a file, not a directory; pass a new or empty directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} '{path}' lies under '{parent}', which is a file; pass a directory path")
            if not os.access(parent, os.W_OK | os.X_OK) and not path.exists():
                raise UserError(f"cannot create {flag} '{path}': '{parent}' is not writable; pick another place")
            break


def claim_dir(path: Path, kind: str, overwrite: bool = False, flag: str = "--out") -> bool:
    """Check that `kind` may write into `path` (nothing is written). True when it already holds a `kind`
    directory (resume, or replace with --overwrite); False when it is new or empty. A directory of another
    kind, or one the project did not make, is refused; --overwrite never changes that."""
    path = Path(path)
    check_out_path(path, flag)
    if not path.exists() or not [x for x in path.iterdir() if x.name not in _OWN_FILES]:
        return False
    found = None
    if (path / MARKER).exists():
        found = dir_kind(path)
    elif LEGACY[kind](path):
        found = kind
    else:
        found = dir_kind(path)
    if found == kind:
        return True
    what = f"a {found} directory (made by '{VERB[found]}')" if found in VERB else \
        "files that mdlm-bench did not write" if found is None else f"a directory with a damaged {MARKER}"
    raise UserError(f"{flag} '{path}' holds {what}; '{VERB[kind]}' writes only into a new or empty directory "
                    f"or a {kind} directory (--overwrite never replaces another kind); choose another {flag}")


def mark_dir(path: Path, kind: str) -> None:
    """Create `path` if needed and write its kind marker (idempotent)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    m = path / MARKER
    if m.is_file() and dir_kind(path) == kind:
        return
    from mdlm_bench import __version__

    write_json(m, {"mdlm_bench_dir": kind, "version": MARKER_VERSION, "mdlm_bench": __version__})


def output_file_check(path: Path, flag: str = "--output") -> None:
    """An output FILE may not be a directory, lie under a file, or sit inside a directory the project owns
    (a run's generations.jsonl, a checkpoint): those are written only by their own commands."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} '{path}' is a directory; pass a file path")
    check_out_path(path, flag, is_file=True)
    parent = path.parent
    if parent.is_dir():
        kind = dir_kind(parent)
        if kind is not None or any(parent.glob("*.safetensors")) or any(parent.glob("*.bin")):
            what = f"a {kind} directory" if kind else "a checkpoint or run directory"
            raise UserError(f"{flag} '{path}' lies inside {what}, which only its own command writes; "
                            "write the file somewhere else")


@contextlib.contextmanager
def judging(run_dir: Path) -> Iterator[None]:
    """Write access to RUN_DIR/judgments: the run directory must be a run (or imported run), the judgments
    directory new or the judge's own; it is locked while judged."""
    run_dir = Path(run_dir)
    if run_dir.is_dir() and dir_kind(run_dir) not in ("run", "imported", None):
        raise UserError(f"--run '{run_dir}' is a {dir_kind(run_dir)} directory, not a run; pass a directory made "
                        "by 'mdlm-bench run' or 'mdlm-bench import-outputs'")
    jdir = run_dir / "judgments"
    claim_dir(jdir, "judgments", flag="--run judgments")
    with locked(jdir, "judgments directory"):
        mark_dir(jdir, "judgments")
        yield


@contextlib.contextmanager
def locked(path: Path, what: str = "directory") -> Iterator[None]:
    """Hold an exclusive OS lock on `path` (created if needed) while writing it. The kernel releases it
    when the process ends, also on kill -9. A second writer gets a UserError naming the holder's PID.
    The lock file is removed when the block ends (only a killed process leaves one behind, unlocked)."""
    import fcntl

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lock = path / LOCK
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise UserError(f"{what} '{path}' is being written by another mdlm-bench process (PID {holder}); wait "
                            "for it to finish, or choose another --out") from None
        try:  # the holder before us may have removed the file between our open and our lock: lock the new one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still holding the lock, so no other process holds this inode's
        os.close(fd)  # closing the only descriptor drops the lock


def row_key(row: dict) -> Tuple[str, str, int]:
    """Pairing key across runs: (task, uid, seed)."""
    return (str(row["task"]), str(row["uid"]), int(row.get("seed", 0)))


def write_config(run_dir: Path, kind: str, config: Dict[str, Any], digest: str) -> None:
    write_json(
        Path(run_dir) / CONFIG,
        {
            "kind": kind,
            "config": config,
            "digest": digest,
            "provenance": provenance(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    )


def read_config(run_dir: Path) -> Optional[dict]:
    p = Path(run_dir) / CONFIG
    if not p.exists():
        return None
    try:
        return read_json(p)
    except ValueError:
        raise UserError(f"'{p}' is not valid JSON; restore it, or pass --overwrite to start the run afresh") from None


def load_generations(run_dir: Path, required: bool = True) -> List[dict]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory '{run_dir}' does not exist; pass a directory made by 'mdlm-bench run'")
    p = run_dir / GENERATIONS
    if required and not p.exists():
        raise UserError(f"'{run_dir}' has no {GENERATIONS}; run 'mdlm-bench run --out {run_dir}' first")
    return read_jsonl(p)
