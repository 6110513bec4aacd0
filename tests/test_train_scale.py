"""Scale settings on CPU: gradient checkpointing changes no number, weights load in the training dtype, and the
optimiser's trainable weights are float32 where no engine keeps an fp32 master."""

import torch

from mdlm_bench.io import read_jsonl
from mdlm_bench.train.recipe import Recipe
from mdlm_bench.train.trainer import train, train_dtype

TINY = dict(model="preset:tiny", data="synthetic", synthetic_per_family=8, canvas=24, max_prompt_tokens=48,
            steps=3, batch_size=4, micro_batch_size=2, warmup_steps=1, lr=3e-3, loss="slack_ctc", pad_with="slack",
            ctc_band=1)


def test_gradient_checkpointing_gives_the_same_run(tmp_path):
    train(Recipe(**TINY), tmp_path / "plain", quiet=True)
    train(Recipe(**TINY, gradient_checkpointing=True), tmp_path / "ckpt", quiet=True)
    a = [r["loss"] for r in read_jsonl(tmp_path / "plain" / "train_log.jsonl")]
    b = [r["loss"] for r in read_jsonl(tmp_path / "ckpt" / "train_log.jsonl")]
    assert b == a  # recomputation is exact: no dropout, same kernels


def test_training_dtype_and_master_weights(tiny_path):
    from accelerate import Accelerator

    from mdlm_bench.models import load_model
    from mdlm_bench.train.scale import master_weights, wrap_lora

    assert train_dtype(Recipe(bf16=True), use_cuda=True) == "bfloat16"
    assert train_dtype(Recipe(bf16=True), use_cuda=False) == train_dtype(Recipe(bf16=False), True) == "float32"
    m = load_model(tiny_path, dtype="bfloat16")
    assert {p.dtype for p in m.model.parameters()} == {torch.bfloat16}  # loaded as such: no fp32 copy
    model = wrap_lora(m.model, Recipe(lora={"r": 4}), slack_added=False)
    master_weights(model, Accelerator(cpu=True))
    trainable = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert trainable == {torch.float32} and frozen == {torch.bfloat16}
