"""Multi-process training on CPU: two gloo processes (accelerate launch) equal one; DeepSpeed with accumulation;
torch FSDP2 over gloo equals one process; engines that cannot run here are refused in one line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mdlm_bench.io import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
RECIPE = dict(model="preset:tiny", data="synthetic", synthetic_per_family=8, canvas=24, max_prompt_tokens=48,
              steps=4, batch_size=4, micro_batch_size=2, warmup_steps=1, lr=3e-3, loss="slack_ctc",
              slack_insert_rate=0.2)
BUCKETED = dict(RECIPE, canvas_multiple=8, bucket_batches=2)  # each step's canvas from its global batch


def run(cmd, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate launcher is not on PATH")
def test_two_processes_match_one(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(BUCKETED))
    train = ["-m", "mdlm_bench", "train", "--recipe", str(recipe), "--quiet"]
    run([sys.executable] + train + ["--output", str(tmp_path / "one")], tmp_path)
    # accelerate's MULTI_CPU mode needs MPI for a second process; its torchrun path (--multi_gpu) runs two
    # gloo processes on a machine without GPUs.
    run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
         "no", "--dynamo_backend", "no", "--main_process_port", "29517"] + train + ["--output", str(tmp_path / "two")],
        tmp_path)
    one = [r["loss"] for r in read_jsonl(tmp_path / "one" / "train_log.jsonl")]
    two = [r["loss"] for r in read_jsonl(tmp_path / "two" / "train_log.jsonl")]
    assert len(one) == len(two) == 4
    assert yaml.safe_load((tmp_path / "two" / "train_config.json").read_text())["processes"] == 2
    assert two == pytest.approx(one, rel=1e-4, abs=1e-5)
    canvases = [r["canvas"] for r in read_jsonl(tmp_path / "two" / "train_log.jsonl")]
    assert canvases == [r["canvas"] for r in read_jsonl(tmp_path / "one" / "train_log.jsonl")]
    assert (tmp_path / "two" / "model.safetensors").is_file()


RECIPE_ACCUM = dict(RECIPE, loss="ce", slack_insert_rate=0.0, steps=3)  # batch 4 = 2 micro-batches of 2


def _losses(out):
    return [r["loss"] for r in read_jsonl(out / "train_log.jsonl")]


@pytest.fixture(scope="module")
def plain_accum_run(tmp_path_factory):
    """One plain process with the accumulation recipe: the reference of the DeepSpeed runs."""
    pytest.importorskip("deepspeed")
    tmp = tmp_path_factory.mktemp("plain")
    recipe = tmp / "r.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE_ACCUM))
    train = ["-m", "mdlm_bench", "train", "--recipe", str(recipe), "--quiet", "--eval-per-family", "0"]
    run([sys.executable] + train + ["--output", str(tmp / "plain")], ROOT)
    return train, _losses(tmp / "plain")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate launcher is not on PATH")
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_with_accumulation_starts_and_matches_plain(tmp_path, stage, plain_accum_run):
    """The shipped ZeRO configs with the recipe's accumulation (2 micro-batches) run and give the plain losses."""
    train, plain = plain_accum_run
    run(["accelerate", "launch", "--config_file", f"training/accelerate/deepspeed-zero{stage}.yaml",
         "--num_processes", "1", "--main_process_port", f"2952{stage}"] + train + ["--output", str(tmp_path / "ds")],
        ROOT)
    cfg = yaml.safe_load((tmp_path / "ds" / "train_config.json").read_text())
    assert cfg["engine"] == "DEEPSPEED" and cfg["gradient_accumulation"] == 2
    ds = _losses(tmp_path / "ds")
    # ZeRO-2 keeps whole fp32 parameters: the same run. ZeRO-3 computes through its own partitioned linear
    # functions and a flattened fp32 update, which round differently (4e-5 relative at step 1 here).
    assert ds[0] == pytest.approx(plain[0], rel=1e-5 if stage == 2 else 1e-4)
    assert ds == pytest.approx(plain, rel=1e-4 if stage == 2 else 1e-3)
    assert (tmp_path / "ds" / "model.safetensors").is_file()


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate launcher is not on PATH")
def test_engines_that_cannot_run_here_are_refused_in_one_line(tmp_path, monkeypatch):
    """In-process: the checks accelerate launch's environment triggers (no traceback, one line each)."""
    import importlib.util

    from mdlm_bench.errors import UserError
    from mdlm_bench.train.recipe import Recipe
    from mdlm_bench.train.scale import make_accelerator

    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "deepspeed" else real(n, *a))
    with pytest.raises(UserError, match="DeepSpeed, which is not installed"):
        make_accelerator(Recipe(), False)
    monkeypatch.setattr(importlib.util, "find_spec", real)
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(tmp_path / "missing.json"))
    if real("deepspeed") is not None:
        with pytest.raises(UserError, match="missing.json' does not exist"):
            make_accelerator(Recipe(), False)
        monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none")
        monkeypatch.setenv("WORLD_SIZE", "2")
        with pytest.raises(UserError, match="DeepSpeed runs one process on CPU"):
            make_accelerator(Recipe(), False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(UserError, match="FSDP on GPUs only"):
        make_accelerator(Recipe(), False)
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UserError, match="qlora needs a CUDA GPU"):
        make_accelerator(Recipe(lora={"r": 4}, qlora=True), False)


@pytest.mark.slow
def test_torch_fsdp2_on_cpu_matches_one_process(tmp_path):
    """torch's FSDP2 runs on CPU (gloo): the model sharded over 2 processes, with the trainer's batches, loss and
    micro-batches, reaches the one-process losses within 1e-4 after every step (tests/fsdp_cpu_worker.py). The
    trainer's own FSDP path goes through accelerate, which enables FSDP only on GPUs: benchmarks/fsdp_check.py."""
    worker = str(ROOT / "tests" / "fsdp_cpu_worker.py")
    run([sys.executable, worker, str(tmp_path / "one.json"), "4"], tmp_path)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29519", worker,
         str(tmp_path / "two.json"), "4"], tmp_path)
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert len(one) == len(two) == 4 and len(set(one)) == 4  # the losses move: the steps train
    assert two == pytest.approx(one, rel=1e-4)
