"""`pip install .` (not editable) into a directory of its own, then the installed package alone works from
elsewhere: console script and `python -m mdlm_bench`, bundled tasks / perturbation specs / recipes / report
configs found under mdlm_bench/_bundled, and a real tiny evaluation with a bundled task and spec.

The wheel goes in with `pip install --target DIR` (an isolated build, so the build tools come from pip's
index and not from whatever setuptools this interpreter has) and runs with PYTHONPATH=DIR and this same
interpreter, which supplies torch & co. That works the same under a system Python, pyenv or a venv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
BUNDLED = {"tasks": "**/*", "perturbations": "**/*", "training": "**/*", "reports": "*.yaml"}


def _files(root: Path, pattern: str):
    return {str(p.relative_to(root)) for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site dir holding only our package, a directory outside the checkout). Built from a copy of the tree
    so the build leaves no build/ or egg-info in the checkout."""
    root = tmp_path_factory.mktemp("pkg")
    src = root / "src"
    src.mkdir()
    for f in ("pyproject.toml", "setup.py", "README.md"):
        if (REPO / f).exists():
            shutil.copy2(REPO / f, src / f)
    for d in ("mdlm_bench", *BUNDLED):
        shutil.copytree(REPO / d, src / d, ignore=IGNORE)
    site = root / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), "--quiet",
                        str(src)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return site, elsewhere


def _run(site: Path, cwd: Path, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MDLM_BENCH_DATA")}
    env.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "250", "PYTHONPATH": str(site),
                "PATH": f"{site / 'bin'}{os.pathsep}{env.get('PATH', '')}"})
    p = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (cmd, p.stderr[-3000:])
    return p


def test_installed_package_is_used_and_carries_the_bundled_folders(installed):
    site_dir, elsewhere = installed
    code = ("import json, mdlm_bench, mdlm_bench.resources as r; "
            "print(json.dumps([mdlm_bench.__file__] + [str(r.bundled_dir(n)) for n in "
            f"{sorted(BUNDLED)!r}]))")
    paths = json.loads(_run(site_dir, elsewhere, sys.executable, "-c", code).stdout)
    site = site_dir.resolve()
    assert Path(paths[0]).resolve().is_relative_to(site), f"not the installed copy: {paths[0]}"
    for name, where in zip(sorted(BUNDLED), paths[1:]):
        where = Path(where)
        assert where.resolve().is_relative_to(site) and where.parent.name == "_bundled", where
        assert _files(where, BUNDLED[name]) >= _files(REPO / name, BUNDLED[name]), name


def test_console_script_and_python_m_from_another_directory(installed, tiny_path):
    site, elsewhere = installed
    script, py = str(site / "bin" / "mdlm-bench"), sys.executable
    assert _run(site, elsewhere, script, "--help").stdout == _run(site, elsewhere, py, "-m", "mdlm_bench",
                                                                   "--help").stdout
    assert "--perturbation" in _run(site, elsewhere, script, "run", "--help").stdout
    listing = _run(site, elsewhere, script, "ls").stdout  # models, tasks, perturbations, judges, recipes
    assert "tiny" in listing and "preset" in listing
    for name in (p.parent.name for p in (REPO / "mdlm_bench" / "assets" / "models").glob("*/config.json")):
        assert name in listing  # bundled checkpoints ship in the wheel
    for path in [*(REPO / "perturbations").glob("*.yaml"), *(REPO / "training").glob("*.yaml"),
                 *(REPO / "tasks").glob("synth_*.yaml")]:
        assert path.stem in listing, path
    # a real evaluation: bundled lm-eval task (with its python helper) and a bundled spec by name
    _run(site, elsewhere, script, "run", "--model", str(tiny_path), "--tasks", "synth_copy", "--limit", "2",
         "--perturbation", "shift", "--fraction", "0.2", "--gen-length", "16", "--steps", "16", "--block-length", "16",
         "--out", "r")
    rows = [json.loads(line) for line in (elsewhere / "r" / "generations.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all("exact_match" in r["metrics"] for r in rows)
    assert rows[0]["perturbation"]["name"] == "shift" and rows[0]["perturbation"]["fraction"] == 0.2
