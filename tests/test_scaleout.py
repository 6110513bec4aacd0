"""`mdlm-bench run` under `accelerate launch` with two CPU processes (gloo): the ranks split the rows to
decode between them and rank 0 merges, so the run directory equals a single-process run's byte for byte.

accelerate 1.x starts a single process for `--cpu --num_processes 2` unless an MPI hostfile is given
(simple_launcher), so the test launches through torchrun with `--multi_gpu`, which on a machine without
GPUs gives two CPU ranks that find no CUDA and must fall back to gloo.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_bench.evaluate.rows import without_timing
from mdlm_bench.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]
DEC_FLAGS = ["--gen-length", "16", "--steps", "16", "--block-length", "16"]

# Runs the CLI as `-m mdlm_bench` would, logging per rank the world size mdlm-bench sees and each batch
# of rows that rank decodes.
WRAPPER = """
import json, os, sys
from pathlib import Path
log = Path(sys.argv.pop(1)) / f"rank-{os.environ.get('RANK', '0')}.jsonl"
import mdlm_bench.dist as dist
import mdlm_bench.decode.prompts as prompts
real_current, real_generate = dist.current, prompts.generate_many
def current():
    d = real_current()
    with open(log, "a") as f:
        f.write(json.dumps({"world": d.world, "rank": d.rank}) + "\\n")
    return d
def generate_many(model, ids, *a, **k):
    with open(log, "a") as f:
        f.write(json.dumps({"rows": len(ids)}) + "\\n")
    return real_generate(model, ids, *a, **k)
dist.current, prompts.generate_many = current, generate_many
from mdlm_bench.cli import main
sys.exit(main())
"""

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate launcher is not on PATH")
def test_two_processes_shard_rows_and_merge_to_the_single_process_run(tiny_path, tmp_path, capsys):
    from mdlm_bench.cli import main

    args = ["run", "--model", str(tiny_path), "--tasks", "synth_copy", "--limit", "3", "--seeds", "0,1",
            "--batch-size", "1", *DEC_FLAGS]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()

    (tmp_path / "wrapper.py").write_text(WRAPPER)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDLM_")}
    env.update({"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           str(tmp_path / "wrapper.py"), str(logs), *args, "--out", str(tmp_path / "two")]
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-4000:]

    logged = {f.stem: [json.loads(line) for line in f.read_text().splitlines()] for f in logs.glob("rank-*.jsonl")}
    assert sorted(logged) == ["rank-0", "rank-1"]
    for rank, events in logged.items():
        assert [e for e in events if "world" in e] == [{"world": 2, "rank": int(rank[-1])}], rank
    decoded = {rank: sum(e.get("rows", 0) for e in events) for rank, events in logged.items()}
    assert decoded == {"rank-0": 4, "rank-1": 2}  # per seed, rows 0 and 2 on rank 0, row 1 on rank 1

    one, two = tmp_path / "one", tmp_path / "two"
    # the same rows in the same order; only the rows' wall times (wall_s) differ from run to run
    assert without_timing(read_jsonl(two / "generations.jsonl")) == without_timing(read_jsonl(one / "generations.jsonl"))
    assert json.loads((two / "metrics.json").read_text()) == json.loads((one / "metrics.json").read_text())
    assert sorted(f.name for f in two.iterdir() if not f.name.startswith(".mdlm-bench")) == [
        "config.json", "generations.jsonl", "metrics.json"]


# --- resuming after a multi-process run was killed --------------------------------------------------------
class FakeRank:
    """What RowStore needs of mdlm_bench.dist.Dist, for one rank of a group whose other ranks are absent."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world
        self.main = rank == 0

    def barrier(self) -> None:
        pass


def _rows_of_a_run(tiny_path, out: Path):
    from mdlm_bench.evaluate.run import RunConfig, execute

    cfg = RunConfig(model=str(tiny_path), tasks=["synth_copy"], limit=4, seeds=[0],
                    decoding={"gen_length": 16, "steps": 16, "block_length": 16})
    execute(cfg, out)
    return cfg, (out / "generations.jsonl").read_bytes()


def test_single_process_rerun_picks_up_shards_of_a_killed_multi_process_run(tiny_path, tmp_path, monkeypatch,
                                                                             capsys):
    """A killed 2-process run leaves .shards/rank-*.jsonl (one with a torn tail); a plain rerun uses their rows,
    decodes only what is missing, and merges to the uninterrupted result."""
    import mdlm_bench.decode.prompts as prompts
    from mdlm_bench.evaluate.run import execute

    out = tmp_path / "run"
    cfg, full = _rows_of_a_run(tiny_path, out)
    lines = full.splitlines(keepends=True)
    (out / "generations.jsonl").write_bytes(lines[0])
    shards = out / ".shards"
    shards.mkdir()
    (shards / "rank-0.jsonl").write_bytes(lines[2])
    (shards / "rank-1.jsonl").write_bytes(lines[1] + lines[3][:25])  # killed while writing the last row
    (out / "metrics.json").unlink()
    decoded = []
    real = prompts.generate_many
    monkeypatch.setattr(prompts, "generate_many", lambda m, ids, *a, **k: decoded.append(len(ids)) or
                        real(m, ids, *a, **k))
    capsys.readouterr()
    execute(cfg, out)
    assert "rank-1.jsonl:2" in capsys.readouterr().err  # the torn line is reported, not fatal
    assert sum(decoded) == 1
    assert without_timing(read_jsonl(out / "generations.jsonl")) == without_timing(
        [json.loads(line) for line in full.splitlines()])
    assert not shards.exists()


def test_resumed_rank_appends_after_a_torn_shard_line_without_losing_rows(tiny_path, tmp_path):
    from mdlm_bench.io import read_jsonl_checked
    from mdlm_bench.evaluate.rows import RowStore

    out = tmp_path / "run"
    cfg, full = _rows_of_a_run(tiny_path, out)
    rows = [json.loads(line) for line in full.splitlines()]
    (out / "generations.jsonl").unlink()
    shards = out / ".shards"
    shards.mkdir()
    (shards / "rank-1.jsonl").write_bytes(full.splitlines(keepends=True)[1] + b'{"task": "synth_co')
    store = RowStore(out, cfg.digest(), FakeRank(1, 2))
    store.put([rows[3]])
    store.close()
    got, bad = read_jsonl_checked(shards / "rank-1.jsonl")
    assert got == [rows[1], rows[3]]
    assert all(n == 2 for n, _ in bad)  # at most the old fragment, on its own line
