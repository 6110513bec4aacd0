"""`mdlm-bench export`: the published layouts load with the families' own modeling math and give identical logits.

The references below are transcriptions of the math of LLaDA's modeling_llada.py (ZHZisZZ/dllm
dllm/pipelines/llada/models/modeling_llada.py at commit ca176752fbceec49c6b4777a2c18ae88e4eb10ed: RMSNorm in
float32, rotate-half rotary with inv_freq = theta^(-2i/d), repeat_interleave of kv heads, no causal mask,
ff_out(silu(ff_proj(x)) * up_proj(x)), ln_f then ff_out or the tied wte) and of Dream's modeling_dream.py
(dllm/pipelines/dream/models/modeling_dream.py, same commit: Qwen2 blocks with q/k/v biases, is_causal False;
generation_utils.py shifts logits right by one, logits[:, :1] then logits[:, :-1]). They read only the exported
config.json and safetensors; no upstream code is in the repository.
"""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from llada_tiny import write_llada
from mdlm_bench.cli import main as cli
from mdlm_bench.models import load_model


def _rms(x, w, eps):
    x32 = x.float()
    return x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * w


def _rope(t, theta):  # t [H, L, hd]
    hd, L = t.shape[-1], t.shape[-2]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.arange(L).float()[:, None] * inv[None, :]
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
    return t * cos + torch.cat([-t2, t1], -1) * sin


def _attend(q, k, v, theta):  # q [H, L, hd], k/v [Hkv, L, hd]
    rep = q.shape[0] // k.shape[0]
    k, v = k.repeat_interleave(rep, 0), v.repeat_interleave(rep, 0)
    att = torch.softmax(_rope(q, theta) @ _rope(k, theta).transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
    return att @ v  # bidirectional: no causal mask


def llada_reference(d, ids):
    cfg = json.loads((d / "config.json").read_text())
    w = load_file(str(d / "model.safetensors"))
    D, H, Hkv = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    hd, L, eps, theta = D // H, ids.shape[0], cfg["rms_norm_eps"], cfg["rope_theta"]
    x = w["model.transformer.wte.weight"][ids].float()
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        h = _rms(x, w[p + "attn_norm.weight"], eps)
        q = (h @ w[p + "q_proj.weight"].T).view(L, H, hd).transpose(0, 1)
        k = (h @ w[p + "k_proj.weight"].T).view(L, Hkv, hd).transpose(0, 1)
        v = (h @ w[p + "v_proj.weight"].T).view(L, Hkv, hd).transpose(0, 1)
        x = x + _attend(q, k, v, theta).transpose(0, 1).reshape(L, D) @ w[p + "attn_out.weight"].T
        h = _rms(x, w[p + "ff_norm.weight"], eps)
        x = x + (torch.nn.functional.silu(h @ w[p + "ff_proj.weight"].T) * (h @ w[p + "up_proj.weight"].T)) \
            @ w[p + "ff_out.weight"].T
    x = _rms(x, w["model.transformer.ln_f.weight"], eps)
    head = w["model.transformer.wte.weight"] if cfg["weight_tying"] else w["model.transformer.ff_out.weight"]
    return x @ head.T


def dream_reference(d, ids):
    cfg = json.loads((d / "config.json").read_text())
    w = load_file(str(d / "model.safetensors"))
    D, H, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, L, eps, theta = D // H, ids.shape[0], cfg["rms_norm_eps"], cfg["rope_theta"]
    x = w["model.embed_tokens.weight"][ids].float()
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = _rms(x, w[p + "input_layernorm.weight"], eps)
        proj = {n: h @ w[p + f"self_attn.{n}_proj.weight"].T + w[p + f"self_attn.{n}_proj.bias"] for n in "qkv"}
        q = proj["q"].view(L, H, hd).transpose(0, 1)
        k, v = (proj[n].view(L, Hkv, hd).transpose(0, 1) for n in "kv")
        x = x + _attend(q, k, v, theta).transpose(0, 1).reshape(L, D) @ w[p + "self_attn.o_proj.weight"].T
        h = _rms(x, w[p + "post_attention_layernorm.weight"], eps)
        x = x + (torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T)) \
            @ w[p + "mlp.down_proj.weight"].T
    x = _rms(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    logits = x @ head.T
    return torch.cat([logits[:1], logits[:-1]], 0)  # Dream: token i is read from position i-1


@pytest.fixture(scope="module")
def trained_llada(tmp_path_factory):
    """A LLaDA-layout model given <slack> and perturbed (as a fine-tune would), saved in mdlm-bench's layout."""
    root = tmp_path_factory.mktemp("exp")
    m = load_model(write_llada(root / "orig"))
    m.add_slack_token()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in m.model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=g))
    return m.save(root / "own"), root


def test_llada_export_matches_llada_modeling_math(trained_llada, capsys):
    own, root = trained_llada
    out = root / "llada-export"
    assert cli(["export", str(own), "--layout", "llada", "--out", str(out), "--dtype", "float32"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "llada" and cfg["architectures"] == ["LLaDAModelLM"]
    assert not (out / "mdlm_bench.json").exists()
    keys = set(load_file(str(out / "model.safetensors")))
    assert all(k.startswith("model.transformer.") for k in keys) and "model.transformer.blocks.0.attn_out.weight" in keys
    m = load_model(own)
    slack = m.slack_id
    assert cfg["slack_token_id"] == slack and json.loads((out / "tokenizer.json").read_text())["added_tokens"]
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(out)).convert_tokens_to_ids("<slack>") == slack
    ids = torch.tensor([3, 17, cfg["mask_token_id"], 40, slack, cfg["mask_token_id"], 8, 61])
    with torch.no_grad():
        ours = m.logits(ids[None])[0]
        ref = llada_reference(out, ids)
        back = load_model(out).logits(ids[None])[0]  # and mdlm-bench reads its own export back
    torch.testing.assert_close(ref, ours, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(back, ours, atol=1e-6, rtol=1e-6)


def test_export_carries_the_original_modeling_files_and_fields(trained_llada):
    """The original checkpoint's code (*.py) and extra config fields (auto_map) come along; shapes are the model's."""
    own, root = trained_llada
    orig = root / "orig"
    cfg = json.loads((orig / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_llada.LLaDAModelLM"}
    (orig / "config.json").write_text(json.dumps(cfg))
    (orig / "modeling_llada.py").write_text("# the family's modeling code would be here\n")
    out = root / "with-code"
    assert cli(["export", str(own), "--layout", "llada", "--out", str(out), "--code-from", str(orig)]) == 0
    got = json.loads((out / "config.json").read_text())
    assert got["auto_map"] == cfg["auto_map"] and (out / "modeling_llada.py").is_file()
    assert got["d_model"] == cfg["d_model"] and got["torch_dtype"] == "bfloat16"


def test_own_layout_is_not_a_causal_lm(trained_llada):
    """Why export exists: plain transformers reads mdlm-bench's layout as a causal LM, with other logits."""
    from transformers import AutoModelForCausalLM

    own, _ = trained_llada
    ids = torch.tensor([[3, 17, 40, 8, 61, 5]])
    with torch.no_grad():
        causal = AutoModelForCausalLM.from_pretrained(str(own), dtype=torch.float32)(input_ids=ids).logits
        ours = load_model(own).logits(ids)
    assert (causal - ours).abs().max() > 0.1  # under a causal mask no position sees the tokens after it


def test_dream_export_matches_dream_modeling_math(tmp_path, tiny_model):
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    qcfg = Qwen2Config(vocab_size=len(tiny_model.tokenizer), hidden_size=64, intermediate_size=96,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=128, tie_word_embeddings=False, rope_theta=10000.0)
    q = Qwen2ForCausalLM(qcfg)
    with torch.no_grad():
        for n, p in q.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.1)
    src = tmp_path / "dream"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({**qcfg.to_dict(), "model_type": "Dream",
                                                 "mask_token_id": tiny_model.mask_id}, default=str))
    save_file({k: v.contiguous() for k, v in q.state_dict().items()}, str(src / "model.safetensors"))
    tiny_model.tokenizer.save_pretrained(src)
    m = load_model(src)
    own = m.save(tmp_path / "own")
    out = tmp_path / "dream-export"
    assert cli(["export", str(own), "--layout", "dream", "--out", str(out), "--dtype", "float32"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "Dream" and cfg["architectures"] == ["DreamModel"]
    assert cfg["mask_token_id"] == m.mask_id and cfg["slack_token_id"] == m.slack_id
    ids = torch.tensor([10, 11, m.mask_id, 13, 14, m.mask_id])
    with torch.no_grad():
        ours = load_model(own).logits(ids[None])[0]
    torch.testing.assert_close(dream_reference(out, ids), ours, atol=1e-5, rtol=1e-5)


def test_export_refuses_a_layout_of_another_family(trained_llada, capsys):
    own, root = trained_llada
    assert cli(["export", str(own), "--layout", "dream", "--out", str(root / "x")]) == 2
    err = capsys.readouterr().err
    assert "exports only as --layout llada" in err and err.count("\n") == 1
    assert cli(["export", str(own), "--layout", "lada", "--out", str(root / "y")]) == 2
    assert "did you mean 'llada'" in capsys.readouterr().err
