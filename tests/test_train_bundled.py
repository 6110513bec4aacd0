"""The bundled tiny models: produced by the shipped recipes, small, loadable, and above chance on held-out rows."""

import json
import os
from pathlib import Path

import pytest

from mdlm_bench.resources import BUNDLED_MODELS
from mdlm_bench.train.recipe import load_recipe

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
NAMES = ["tiny-base", "tiny-ce", "tiny-slack-ctc"]


@pytest.mark.parametrize("name", NAMES)
def test_bundled_model_matches_recipe_and_is_small(name):
    d = BUNDLED_MODELS / name
    assert (d / "model.safetensors").is_file(), f"{name} is not bundled; rebuild with training/{name}.yaml"
    size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    assert size <= 10 * 2 ** 20
    assert not (d / "state").exists()
    cfg = json.loads((d / "train_config.json").read_text())
    assert cfg["digest"] == load_recipe(ROOT / "training" / f"{name}.yaml").digest
    log = [json.loads(x) for x in (d / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == cfg["recipe"]["steps"]


@pytest.mark.parametrize("name", NAMES)
def test_bundled_model_solves_held_out_tasks(name, tmp_path):
    from mdlm_bench.models import load_model
    from mdlm_bench.train.evaluate import evaluate_synthetic

    from mdlm_bench.models import init_model

    m = load_model(name)
    assert m.slack_id is not None
    # Dev rows (no prompt shared with training or the eval files), against the untrained preset.
    res = evaluate_synthetic(m, n_per_family=10, split="dev", gen_length=32)
    base = load_model(init_model(tmp_path / "base", preset="small", seed=0))
    ref = evaluate_synthetic(base, n_per_family=10, split="dev", gen_length=32)
    assert ref["all"]["exact_match"] == 0.0
    assert res["all"]["exact_match"] >= 0.08, res
    solved = [f for f in res if f != "all" and res[f]["exact_match"] > 0]
    assert len(solved) >= 2, res


@pytest.mark.parametrize("name", ["tiny-ce", "tiny-slack-ctc"])
def test_fine_tunes_start_from_the_bundled_base(name):
    cfg = json.loads((BUNDLED_MODELS / name / "train_config.json").read_text())
    assert cfg["recipe"]["model"] == "tiny-base"
