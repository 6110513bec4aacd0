"""benchmarks/real_shapes.py runs scaled down on CPU (its GPU shape is LLaDA-8B's); with a Fast-dLLM
checkout (FASTDLLM_DIR) it also runs Fast-dLLM's own dual-cache decoder and checks the tokens agree."""

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import real_shapes  # noqa: E402


def test_scaled_down_run(tmp_path):
    out = tmp_path / "rs.json"
    res = real_shapes.run(real_shapes.parse(["--shape", "small", "--gen-length", "16", "--block-length", "8",
                                             "--batches", "1", "2", "--repeats", "1", "--warmup", "0",
                                             "--prompt-length", "12", "--out", str(out)]))
    assert json.loads(out.read_text())["rows"] == json.loads(json.dumps(res["rows"]))
    rows = {(r["mode"], r["batch"]): r for r in res["rows"]}
    assert set(rows) == {(m, b) for m in real_shapes.MODES for b in (1, 2)}
    for (mode, b), r in rows.items():
        assert r["tokens_per_s"] > 0 and r["ms_per_forward"] > 0
        assert 1 <= r["forwards"] <= 16
        if "threshold" not in mode:
            assert r["forwards"] == 16  # fixed steps: one forward per token
        assert r["vs_none"] == pytest.approx(1.0) if mode == "none" else r["vs_none"] > 0


def test_8b_shape_is_llada_8b():
    import torch
    from transformers import LlamaForCausalLM

    from mdlm_bench.models.loaders import _llada_to_llama_config

    with torch.device("meta"):
        n = sum(p.numel() for p in LlamaForCausalLM(_llada_to_llama_config(real_shapes.llada_config("8b"))).parameters())
    assert 7.9e9 < n < 8.1e9  # LLaDA-8B: 8.02B parameters


@pytest.mark.skipif(not os.environ.get("FASTDLLM_DIR"), reason="set FASTDLLM_DIR to a checkout of NVlabs/Fast-dLLM")
def test_fastdllm_side_by_side_agrees():
    res = real_shapes.run(real_shapes.parse(["--shape", "small", "--gen-length", "16", "--block-length", "8",
                                             "--batches", "1", "--repeats", "1", "--warmup", "0",
                                             "--prompt-length", "12", "--fastdllm", os.environ["FASTDLLM_DIR"]]))
    fd = [r for r in res["rows"] if r["impl"] == "Fast-dLLM"]
    assert len(fd) == 2 and all(r["same_tokens"] for r in fd)
