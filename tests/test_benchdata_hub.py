"""Hub sources of the open-ended sets: a dataset repository in the published layout, built here and read
through `datasets.load_dataset(path)` (the code path of a hub id), the local copy winning, the source in
config.json, the one-line offline error, and `ls tasks` statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_bench import benchdata
from mdlm_bench.errors import UserError

ARENA = [
    {"uid": "q1", "category": "hard_prompt", "subcategory": "code", "prompt": "Write a haiku about sorting."},
    {"uid": "q2", "category": "creative_writing", "subcategory": "poem", "prompt": "A limerick on caches."},
    {"uid": "q3", "category": "hard_prompt", "subcategory": "math", "prompt": "Is 2^61-1 prime?"},
]
WILD = [
    {"id": "1", "session_id": "s1", "primary_tag": "Coding",
     "conversation_input": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                            {"role": "user", "content": "fix my loop"}],
     "references": {"gpt-4": "use range"}, "checklist": ["is it correct?"]},
    {"id": "2", "session_id": "s2", "primary_tag": "Math",
     "conversation_input": [{"role": "user", "content": "2+2?"}], "references": {"gpt-4": "4"},
     "checklist": ["says 4"]},
]


def _jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def hub_repo(tmp_path, monkeypatch):
    """A script-free dataset repo laid out as on the hub (Arena-Hard JSONL under data/, WildBench parquet
    under v2/), and HUB pointed at it with the real data_files and parsers."""
    import datasets

    repo = tmp_path / "repo"
    _jsonl(repo / "data" / "arena-hard-v2.0" / "question.jsonl", ARENA)
    (repo / "v2").mkdir(parents=True)
    datasets.Dataset.from_list(WILD).to_parquet(str(repo / "v2" / "test-00000-of-00001.parquet"))
    (repo / "README.md").write_text("---\nlicense: apache-2.0\n---\n# test copy\n")
    for name in ("arena-hard-v2.0", "arena-hard-v2.0-hard-prompt", "wildbench"):
        src = benchdata.HUB[name]
        monkeypatch.setitem(benchdata.HUB, name, benchdata.HubSource(str(repo), None, src.data_files, src.parse))
    monkeypatch.delenv(benchdata.ENV_VAR, raising=False)
    return repo


def test_hub_copy_loads_through_datasets_like_the_local_files(hub_repo, tmp_path):
    local = tmp_path / "bench"
    _jsonl(local / "arena-hard-v2.0" / "question.jsonl", ARENA)
    _jsonl(local / "wildbench" / "wildbench.jsonl", WILD)
    for bench, n in (("arena-hard-v2.0", 3), ("arena-hard-v2.0-hard-prompt", 2), ("wildbench", 2)):
        prompts, source = benchdata.load_bench(bench)
        assert source == {"kind": "hub", "repo": str(hub_repo), "revision": None,
                          "data_files": benchdata.HUB[bench].data_files}
        assert len(prompts) == n
        want = benchdata.load_prompts(bench, local)
        assert [(p["uid"], p["turns"], p["category"], p["reference"]) for p in prompts] == \
               [(p["uid"], p["turns"], p["category"], p["reference"]) for p in want]
    wild = benchdata.load_bench("wildbench")[0]
    # only the last turn is generated; the given history (with its assistant turn) rides along
    assert wild[0]["turns"] == ["fix my loop"] and wild[0]["extra"]["checklist"] == ["is it correct?"]
    assert [m["content"] for m in wild[0]["extra"]["history"]] == ["hi", "hello"]


def test_local_copy_wins_over_the_hub(hub_repo, tmp_path):
    local = tmp_path / "bench"
    _jsonl(local / "arena-hard-v2.0" / "question.jsonl", ARENA[:1])
    prompts, source = benchdata.load_bench("arena-hard-v2.0", str(local))
    assert source == {"kind": "local", "path": str(local)} and [p["uid"] for p in prompts] == ["q1"]
    # a bench directory without this set's folder falls through to the hub copy
    assert benchdata.load_bench("wildbench", str(local))[1]["kind"] == "hub"
    with pytest.raises(UserError, match="--bench-dir"):  # no hub source, no local copy
        benchdata.load_bench("mt-bench")


def test_published_sources_are_pinned():
    for name, src in benchdata.HUB.items():
        assert "/" in src.repo and len(src.revision) == 40 and int(src.revision, 16) >= 0, name
    assert set(benchdata.HUB) <= set(benchdata.BENCHES)


def test_run_records_the_source_in_config_json(hub_repo, tiny_path, tmp_path):
    from mdlm_bench.evaluate.run import RunConfig, execute

    out = tmp_path / "run"
    execute(RunConfig(model=str(tiny_path), tasks=["arena-hard-v2.0-hard-prompt"], limit=1,
                      decoding={"gen_length": 8, "steps": 8, "block_length": 8}), out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["bench_sources"] == {"arena-hard-v2.0-hard-prompt": benchdata.HUB[
        "arena-hard-v2.0-hard-prompt"].record()}
    assert [json.loads(x)["uid"] for x in (out / "generations.jsonl").read_text().splitlines()] == ["q1"]


def _cli(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k not in (benchdata.ENV_VAR, "HF_HUB_CACHE", "HF_DATASETS_CACHE")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "mdlm_bench", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


def test_offline_without_a_local_copy_is_one_line_naming_bench_dir(tmp_path, tiny_path):
    p = _cli(tmp_path, "run", "--model", str(tiny_path), "--tasks", "arena-hard-v0.1", "--limit", "1",
             "--out", "r")
    err = p.stderr.strip()
    assert p.returncode == 2, p.stderr[-2000:]
    assert err.startswith("error: arena-hard-v0.1: could not load lmarena-ai/arena-hard-auto@c75cc2581ae7")
    assert "\n" not in err and "--bench-dir" in err
    assert not (tmp_path / "r").exists()


def test_ls_tasks_shows_local_cached_and_missing(tmp_path):
    bench = tmp_path / "bench"
    _jsonl(bench / "mt-bench" / "question.jsonl", [])
    src = benchdata.HUB["arena-hard-v0.1"]
    cached = tmp_path / "hf-home" / "hub" / "datasets--lmarena-ai--arena-hard-auto" / "snapshots" / src.revision
    _jsonl(cached / src.data_files, ARENA)
    out = _cli(tmp_path, "ls", "tasks", "--bench-dir", str(bench)).stdout
    status = {line.split("│")[1].strip(): line.split("│")[4].strip() for line in out.splitlines()
              if line.count("│") == 5}
    assert status["arena-hard-v0.1"] == "cached"
    assert status["arena-hard-v2.0"] == "missing (offline)" and status["wildbench"] == "missing (offline)"
    assert status["mt-bench"] == "local (unreadable)"  # folder present, reference answers missing
    assert status["alpaca-eval"] == "missing" and status["synth_copy"] == "bundled"
