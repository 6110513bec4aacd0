"""Training data through `datasets.load_dataset`: a local dataset repository in the hub's layout (subsets and
splits from its README's `configs`), single files (json, parquet, arrow), and bad rows named or skipped+counted."""

import json

import pytest

from mdlm_bench.errors import UserError
from mdlm_bench.train.data import load_examples_counted
from mdlm_bench.train.recipe import Recipe

README = """---
configs:
- config_name: single
  data_files:
  - split: train
    path: single/train-*.parquet
  - split: test
    path: single/test-*.parquet
- config_name: chat
  data_files:
  - split: train
    path: chat/train-*.parquet
- config_name: dirty
  data_files:
  - split: train
    path: dirty/train-*.parquet
---
# a chat SFT dataset
"""

TURNS = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": "bye"}, {"role": "assistant", "content": "see you"}]}


def _parquet(path, rows):
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows).to_parquet(str(path))


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # not the shared cache


@pytest.fixture()
def hub_repo(tmp_path, monkeypatch):
    """`org/sft` as the hub lays a dataset repository out, found from the working directory like a hub id."""
    repo = tmp_path / "org" / "sft"
    repo.mkdir(parents=True)
    (repo / "README.md").write_text(README)
    _parquet(repo / "single" / "train-00000-of-00001.parquet",
             [{"id": f"t{i}", "prompt": f"q{i}", "response": f"a{i}"} for i in range(3)])
    _parquet(repo / "single" / "test-00000-of-00001.parquet", [{"id": "x", "prompt": "q", "response": "a"}])
    _parquet(repo / "chat" / "train-00000-of-00001.parquet", [{"id": "c0", **TURNS}])
    _parquet(repo / "dirty" / "train-00000-of-00001.parquet",
             [{"id": "ok", "prompt": "q", "response": "a"}, {"id": "bad", "prompt": "q", "response": None},
              {"id": "ok2", "prompt": "q2", "response": "a2"}])
    monkeypatch.chdir(tmp_path)
    return "org/sft"


def test_hub_layout_subsets_and_splits(hub_repo):
    ex, counts = load_examples_counted(Recipe(data=hub_repo, data_subset="single", data_split="train"))
    assert [e.uid for e in ex] == ["t0", "t1", "t2"] and counts["bad_rows_skipped"] == 0
    ex, _ = load_examples_counted(Recipe(data=hub_repo, data_subset="single", data_split="test"))
    assert [e.uid for e in ex] == ["x"]
    ex, counts = load_examples_counted(Recipe(data=hub_repo, data_subset="chat"))
    assert [e.uid for e in ex] == ["c0/0", "c0/1"] and counts == {"rows": 1, "bad_rows_skipped": 0, "examples": 2}
    assert ex[1].response == "see you" and [m["content"] for m in ex[1].messages] == ["hi", "hello", "bye"]
    with pytest.raises(UserError, match="data_subset"):
        load_examples_counted(Recipe(data=hub_repo, data_subset="nope"))
    with pytest.raises(UserError, match="data_split"):
        load_examples_counted(Recipe(data=hub_repo, data_subset="single", data_split="validation"))


@pytest.mark.parametrize("kind", ["json", "parquet", "arrow"])
def test_single_files(tmp_path, kind):
    import datasets

    rows = [{"id": "a", "prompt": "p", "response": "r"}, {"id": "b", **TURNS}]
    ds = datasets.Dataset.from_list([{"id": "a", "prompt": "p", "response": "r", "messages": None},
                                     {"id": "b", "prompt": None, "response": None, "messages": TURNS["messages"]}])
    p = tmp_path / f"d.{kind}"
    if kind == "json":
        p.write_text(json.dumps(rows))
    elif kind == "parquet":
        ds.to_parquet(str(p))
    else:
        ds.save_to_disk(str(tmp_path / "saved"))
        p = next((tmp_path / "saved").glob("*.arrow"))
    ex, _ = load_examples_counted(Recipe(data=str(p)))
    assert [e.uid for e in ex] == ["a", "b/0", "b/1"]


def test_bad_rows_are_named_or_skipped_and_counted(tmp_path, hub_repo):
    with pytest.raises(UserError, match=r"row\(s\) 1 lack .*skip_bad_rows: true"):
        load_examples_counted(Recipe(data=hub_repo, data_subset="dirty"))
    ex, counts = load_examples_counted(Recipe(data=hub_repo, data_subset="dirty", skip_bad_rows=True))
    assert [e.uid for e in ex] == ["ok", "ok2"] and counts == {"rows": 3, "bad_rows_skipped": 1, "examples": 2}
    # JSONL with an unreadable line: named by line number, or skipped and counted.
    p = tmp_path / "d.jsonl"
    p.write_text('{"prompt": "q", "response": "a"}\n{not json\n{"prompt": "q"}\n')
    with pytest.raises(UserError, match=r"unreadable JSON on line\(s\) 2"):
        load_examples_counted(Recipe(data=str(p)))
    ex, counts = load_examples_counted(Recipe(data=str(p), skip_bad_rows=True))
    assert len(ex) == 1 and counts == {"rows": 3, "bad_rows_skipped": 2, "examples": 1}


def test_skipped_rows_reach_the_run_metadata(tmp_path):
    from mdlm_bench.train.trainer import train

    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in [{"prompt": "ab", "response": "cd"}, {"prompt": 3},
                                                         {"prompt": "ef", "response": "gh"}]))
    r = Recipe(model="preset:tiny", data=str(p), skip_bad_rows=True, canvas=8, max_prompt_tokens=32, steps=1,
               batch_size=2, micro_batch_size=2, warmup_steps=0)
    s = train(r, tmp_path / "out", quiet=True)
    cfg = json.loads((tmp_path / "out" / "train_config.json").read_text())
    assert cfg["data"]["bad_rows_skipped"] == 1 and cfg["data"]["rows"] == 3 and s["bad_rows_skipped"] == 1
