"""A recipe grid on the dev split: short fine-tunes, each scored by per-family exact match at 0% and a shift.

    python -m mdlm_bench.train.grid training/grids/slack-ctc.yaml --out runs/slack-ctc-grid --jobs 2

The grid file names a base recipe, settings common to every point, and the points (name + recipe overrides).
Each point trains into OUT/<name>/ (skipped when OUT/<name>/dev.json exists, so an interrupted grid resumes)
and is scored on heldout_rows("dev"), never on the evaluation rows. The markdown table goes to --report.
Jobs run as separate single-threaded processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

from mdlm_bench.config import load_yaml
from mdlm_bench.errors import UserError
from mdlm_bench.io import atomic_write_text
from mdlm_bench.train.synthetic import DEV_PER_FAMILY

FAMILIES = ("copy", "reverse", "sort", "count", "arithmetic", "spell", "lookup")


def load_grid(path: str) -> dict:
    g = load_yaml(path, "grid") or {}
    if not isinstance(g, dict) or "recipe" not in g or not isinstance(g.get("points"), list):
        raise UserError(f"grid '{path}' needs 'recipe' (base recipe YAML) and 'points' (a list of name + overrides)")
    names = [p.get("name") for p in g["points"]]
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise UserError(f"grid '{path}': every point needs a unique 'name'")
    g.setdefault("common", {})
    g.setdefault("shift", 0.05)
    g.setdefault("dev_per_family", DEV_PER_FAMILY)
    return g


def point_recipe(grid: dict, point: dict):
    from mdlm_bench.train.recipe import load_recipe

    over = {**grid["common"], **{k: v for k, v in point.items() if k not in ("name", "train")}}
    return load_recipe(grid["recipe"], over)


def run_point(grid: dict, name: str, out: Path) -> dict:
    """Train (unless train: false) and score one point; writes OUT/<name>/dev.json."""
    import torch

    from mdlm_bench.models import load_model
    from mdlm_bench.train.evaluate import decode_rows, summarise
    from mdlm_bench.train.synthetic import heldout_rows

    torch.set_num_threads(1)
    point = next(p for p in grid["points"] if p["name"] == name)
    d = out / name
    recipe = point_recipe(grid, point)
    t0 = time.perf_counter()
    if point.get("train", True):
        from mdlm_bench.train.trainer import train

        train(recipe, d, quiet=True)
        model_path = d
    else:
        model_path = recipe.model
    t_train = time.perf_counter() - t0
    m = load_model(str(model_path), dtype="float32", device="cpu")
    rows = heldout_rows("dev", int(grid["dev_per_family"]))
    res = {}
    for shift in (0.0, float(grid["shift"])):
        res[f"{shift:g}"] = summarise(rows, decode_rows(m, rows, gen_length=recipe.canvas, shift=shift))
    rec = {"name": name, "overrides": {k: v for k, v in point.items() if k != "name"}, "recipe": recipe.to_dict(),
           "train_seconds": t_train, "results": res}
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_text(d / "dev.json", json.dumps(rec, indent=1) + "\n")  # its presence marks the point done
    return rec


def _run_sub(grid_path: str, name: str, out: Path) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = out / f"{name}.log"
    out.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        return subprocess.call([sys.executable, "-m", "mdlm_bench.train.grid", grid_path, "--out", str(out),
                                "--point", name], stdout=f, stderr=subprocess.STDOUT, env=env)


def table(grid: dict, out: Path) -> str:
    """Markdown: one row per finished point, per-family exact match at 0% / shift."""
    sh = f"{float(grid['shift']):g}"
    head = "| point | settings | " + " | ".join(FAMILIES) + " | all |"
    lines = [head, "|" + "---|" * (len(FAMILIES) + 3)]
    for p in grid["points"]:
        f = out / p["name"] / "dev.json"
        if not f.is_file():
            continue
        rec = json.loads(f.read_text())
        r0, r5 = rec["results"]["0"], rec["results"][sh]
        settings = ", ".join(f"{k}={v}" for k, v in rec["overrides"].items()) or "-"
        cells = [f"{r0[fam]['exact_match']:.2f} / {r5[fam]['exact_match']:.2f}" for fam in FAMILIES]
        cells.append(f"**{r0['all']['exact_match']:.3f}** / {r5['all']['exact_match']:.3f}")
        lines.append(f"| {p['name']} | {settings} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mdlm_bench.train.grid", description=__doc__.split("\n")[0])
    ap.add_argument("grid", help="grid YAML (e.g. training/grids/slack-ctc.yaml)")
    ap.add_argument("--out", default="runs/slack-ctc-grid", help="directory of the points' runs")
    ap.add_argument("--jobs", type=int, default=1, help="points trained at once (one thread each)")
    ap.add_argument("--only", default=None, help="comma-separated point names (default: all)")
    ap.add_argument("--point", default=None, help=argparse.SUPPRESS)  # worker mode
    ap.add_argument("--table", action="store_true", help="only print the table of finished points")
    ap.add_argument("--report", default=None, help="markdown file to hold the table (between grid markers, "
                                                   "so the text around it is kept)")
    args = ap.parse_args(argv)
    grid = load_grid(args.grid)
    out = Path(args.out)
    if args.point:
        run_point(grid, args.point, out)
        return 0
    if not args.table:
        names = [p["name"] for p in grid["points"]]
        if args.only:
            want = args.only.split(",")
            bad = [n for n in want if n not in names]
            if bad:
                raise SystemExit(f"unknown point(s) {bad}; the grid has {names}")
            names = [n for n in names if n in want]
        todo = [n for n in names if not (out / n / "dev.json").is_file()]
        with ThreadPoolExecutor(max(1, args.jobs)) as ex:
            for name, rc in zip(todo, ex.map(lambda n: _run_sub(args.grid, n, out), todo)):
                status = "ok" if rc == 0 else f"failed (see {out / (name + '.log')})"
                print(f"{name}: {status}", flush=True)
    text = table(grid, out)
    print(text, end="")
    if args.report:
        write_report(Path(args.report), text)
    return 0


START, END = "<!-- grid:start -->", "<!-- grid:end -->"


def write_report(path: Path, text: str) -> None:
    """Put the table between the grid markers of `path` (created with just the table if absent)."""
    block = f"{START}\n{text}{END}"
    old = path.read_text() if path.is_file() else ""
    if START in old and END in old:
        new = old[:old.index(START)] + block + old[old.index(END) + len(END):]
    else:
        new = (old + "\n" if old else "") + block + "\n"
    path.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
