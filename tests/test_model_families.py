"""Model families beyond LLaDA: Dream's own tokenizer and settings, LLaDA-MoE on native Qwen3-MoE, LLaDA 1.5's
layout, and the attention implementations (`attn`)."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from mdlm_bench.decode import DecodeConfig, generate
from mdlm_bench.errors import UserError
from mdlm_bench.models import load_model


# --- Dream: a tokenizer class of its own, and Dream's own sampler settings -----------------------------
TOKENIZER_CODE = '''
import json, os
from transformers import PreTrainedTokenizer


class TinyDreamTokenizer(PreTrainedTokenizer):
    """A slow character-level tokenizer shipped as code, the way Dream ships tokenization_dream.py."""

    vocab_files_names = {"vocab_file": "vocab.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file, **kwargs):
        with open(vocab_file, encoding="utf-8") as f:
            self.encoder = json.load(f)
        self.decoder = {v: k for k, v in self.encoder.items()}
        super().__init__(**kwargs)

    @property
    def vocab_size(self):
        return len(self.encoder)

    def get_vocab(self):
        return dict(self.encoder, **self.added_tokens_encoder)

    def _tokenize(self, text):
        return list(text)

    def _convert_token_to_id(self, token):
        return self.encoder.get(token, self.encoder["<unk>"])

    def _convert_id_to_token(self, index):
        return self.decoder.get(index, "<unk>")

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        path = os.path.join(save_directory, (filename_prefix or "") + "vocab.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.encoder, f)
        return (path,)
'''


def _dream_with_own_tokenizer(d, generation_config=None):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    d.mkdir()
    specials = ["<unk>", "<|endoftext|>", "<|mask|>"]
    vocab = {t: i for i, t in enumerate(specials + [chr(c) for c in range(32, 127)])}
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "tokenization_tinydream.py").write_text(TOKENIZER_CODE)
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "TinyDreamTokenizer", "auto_map": {"AutoTokenizer": ["tokenization_tinydream.TinyDreamTokenizer", None]},
        "unk_token": "<unk>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "mask_token": "<|mask|>"}))
    torch.manual_seed(0)
    qcfg = Qwen2Config(vocab_size=len(vocab), hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128)
    q = Qwen2ForCausalLM(qcfg)
    cfg = {**qcfg.to_dict(), "model_type": "Dream", "architectures": ["DreamModel"], "mask_token_id": vocab["<|mask|>"],
           "eos_token_id": vocab["<|endoftext|>"]}
    (d / "config.json").write_text(json.dumps(cfg, default=str))
    save_file({k: v.contiguous() for k, v in q.state_dict().items()}, str(d / "model.safetensors"))
    if generation_config is not None:
        (d / "generation_config.json").write_text(json.dumps(generation_config))
    return d, vocab


def test_dream_tokenizer_needs_the_flag(tmp_path):
    d, vocab = _dream_with_own_tokenizer(tmp_path / "dream")
    with pytest.raises(UserError, match="ships its own tokenizer class .*--trust-remote-code") as e:
        load_model(d)
    assert "\n" not in str(e.value)
    m = load_model(d, trust_remote_code=True)
    assert type(m.tokenizer).__name__ == "TinyDreamTokenizer"
    assert m.mask_id == vocab["<|mask|>"] and m.eos_ids == [vocab["<|endoftext|>"]] and m.native
    ids = m.tokenizer("hi there")["input_ids"]
    assert m.tokenizer.decode(ids) == "hi there"


def test_dream_runs_with_its_own_settings_and_rows_record_them(tmp_path):
    from mdlm_bench.evaluate.run import RunConfig, execute
    from mdlm_bench.io import read_jsonl

    gen = {"alg": "entropy", "temperature": 0.2, "top_p": 0.95, "alg_temp": 0.0}
    d, _ = _dream_with_own_tokenizer(tmp_path / "dream", gen)
    m = load_model(d, trust_remote_code=True)
    assert m.meta.decode_defaults == {**gen, "eps": 1e-3, "top_k": None, "block_length": None}
    out = tmp_path / "run"
    execute(RunConfig(model=str(d), tasks=["synth_copy"], limit=2, seeds=[0], trust_remote_code=True,
                      decoding={"gen_length": 32, "steps": 8}), out)
    rows = read_jsonl(out / "generations.jsonl")
    assert rows
    for r in rows:
        dec = r["decoding"]
        assert (dec["alg"], dec["temperature"], dec["top_p"], dec["alg_temp"], dec["eps"]) == ("entropy", 0.2, 0.95,
                                                                                                0.0, 1e-3)
        assert dec["block_length"] == 32  # Dream decodes the whole answer in one block
    # A user who names LLaDA's rules gets them.
    from mdlm_bench.decode.config import with_model_defaults

    base = DecodeConfig(gen_length=16, steps=16, block_length=16, remasking="margin")
    assert with_model_defaults(base, m.meta.decode_defaults, {"remasking"}).alg is None
    assert with_model_defaults(DecodeConfig(), m.meta.decode_defaults, {"temperature"}).temperature == 0.0


def test_dream_defaults_without_generation_config(tmp_path):
    d, _ = _dream_with_own_tokenizer(tmp_path / "dream")
    m = load_model(d, trust_remote_code=True)
    assert m.meta.decode_defaults["alg"] == "origin" and m.meta.decode_defaults["eps"] == 1e-3


# --- LLaDA-MoE ---------------------------------------------------------------------------------------
def _rms(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _reference_lladamoe_forward(w, cfg, ids):
    """LLaDA-MoE written out plainly, after ZHZisZZ/dllm@ca176752fbceec49c6b4777a2c18ae88e4eb10ed
    dllm/pipelines/llada/models/modeling_lladamoe.py: pre-norm blocks, per-head q/k RMSNorm, rotary, full
    attention, softmax top-k routing without renormalisation, SwiGLU experts and dense layers."""
    d, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps, L = d // H, cfg["rms_norm_eps"], ids.shape[1]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.outer(torch.arange(L).float(), inv)
    cos, sin = torch.cat([freqs, freqs], -1).cos(), torch.cat([freqs, freqs], -1).sin()

    def rot(x):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def mlp(x, p):
        return (F.silu(x @ w[p + "gate_proj.weight"].T) * (x @ w[p + "up_proj.weight"].T)) @ w[p + "down_proj.weight"].T

    h = w["model.embed_tokens.weight"][ids]
    for i, f in enumerate(cfg["moe_layer_freq"]):
        p = f"model.layers.{i}."
        x = _rms(h, w[p + "input_layernorm.weight"], eps)
        q = (x @ w[p + "self_attn.q_proj.weight"].T).view(1, L, H, hd)
        k = (x @ w[p + "self_attn.k_proj.weight"].T).view(1, L, KV, hd)
        v = (x @ w[p + "self_attn.v_proj.weight"].T).view(1, L, KV, hd)
        q = _rms(q, w[p + "self_attn.q_norm.weight"], eps).transpose(1, 2)
        k = _rms(k, w[p + "self_attn.k_norm.weight"], eps).transpose(1, 2)
        q, k, v = rot(q), rot(k), v.transpose(1, 2)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ v
        h = h + a.transpose(1, 2).reshape(1, L, d) @ w[p + "self_attn.o_proj.weight"].T
        x = _rms(h, w[p + "post_attention_layernorm.weight"], eps)
        if not f:
            h = h + mlp(x, p + "mlp.")
            continue
        probs = torch.softmax(x @ w[p + "mlp.gate.weight"].T, -1)
        top, idx = probs.topk(cfg["num_experts_per_tok"], -1)
        out = torch.zeros_like(x)
        for e in range(cfg["num_experts"]):
            sel = (idx == e)
            wgt = (top * sel).sum(-1, keepdim=True)
            out = out + wgt * mlp(x, p + f"mlp.experts.{e}.")
        h = h + out
    return _rms(h, w["model.norm.weight"], eps) @ w["lm_head.weight"].T


def _write_lladamoe(root, tiny_model, **over):
    V = len(tiny_model.tokenizer)
    cfg = {"model_type": "lladamoe", "architectures": ["LLaDAMoEModelLM"], "vocab_size": V, "hidden_size": 32,
           "dense_intermediate_size": 64, "expert_intermediate_size": 16, "shared_expert_intermediate_size": None,
           "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
           "rms_norm_eps": 1e-5, "rope_theta": 50000.0, "partial_rotary_factor": 1, "attention_bias": False,
           "clip_qkv": None, "num_experts": 4, "num_experts_per_tok": 2, "norm_topk_prob": False, "qk_layernorm": True,
           "moe_layer_freq": [0, 1, 1], "moe_router_enable_expert_bias": False, "tie_word_embeddings": False,
           "mask_token_id": tiny_model.mask_id, "eos_token_id": tiny_model.eos_ids[0], **over}
    d, H, KV, f, fe = cfg["hidden_size"], 4, 2, 64, 16
    hd = d // H
    g = torch.Generator().manual_seed(3)
    shapes = {"model.embed_tokens.weight": (V, d), "model.norm.weight": (d,), "lm_head.weight": (V, d)}
    for i, moe in enumerate(cfg["moe_layer_freq"]):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": (H * hd, d), p + "self_attn.k_proj.weight": (KV * hd, d),
                       p + "self_attn.v_proj.weight": (KV * hd, d), p + "self_attn.o_proj.weight": (d, H * hd),
                       p + "self_attn.q_norm.weight": (hd,), p + "self_attn.k_norm.weight": (hd,),
                       p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,)})
        mlps = [(p + f"mlp.experts.{e}.", fe) for e in range(cfg["num_experts"])] if moe else [(p + "mlp.", f)]
        if moe:
            shapes[p + "mlp.gate.weight"] = (cfg["num_experts"], d)
        for q, n in mlps:
            shapes.update({q + "gate_proj.weight": (n, d), q + "up_proj.weight": (n, d), q + "down_proj.weight": (d, n)})
    w = {k: (1 + 0.1 * torch.randn(s, generator=g)) if len(s) == 1 else 0.3 * torch.randn(s, generator=g)
         for k, s in shapes.items()}
    root.mkdir()
    (root / "config.json").write_text(json.dumps(cfg))
    save_file(w, str(root / "model.safetensors"))
    tiny_model.tokenizer.save_pretrained(root)
    return root, cfg, w


def test_lladamoe_maps_onto_native_qwen3_moe(tmp_path, tiny_model):
    path, cfg, w = _write_lladamoe(tmp_path / "moe", tiny_model)
    m = load_model(path)
    assert m.native and m.meta.backbone == "qwen3_moe" and m.supports_cache
    ids = torch.randint(10, 90, (1, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = m.logits(ids)
        padded = m.logits(torch.cat([torch.full((1, 3), m.pad_id), ids], 1),
                          torch.cat([torch.zeros((1, 3), dtype=torch.bool), torch.ones_like(ids, dtype=torch.bool)], 1))
    ref = _reference_lladamoe_forward(w, cfg, ids)
    torch.testing.assert_close(ours, ref, atol=2e-4, rtol=2e-4)
    torch.testing.assert_close(padded[:, 3:], ours, atol=1e-5, rtol=1e-5)  # position ids follow the padding
    # the caches run on it: one full forward per block, the other steps reuse the cached keys
    for cache in ("prefix", "dual"):
        r = generate(m, [[10, 11, 12]], DecodeConfig(gen_length=8, steps=8, block_length=4, cache=cache))[0]
        assert (r.nfe, r.full_nfe) == (8, 2)


@pytest.mark.parametrize("over,reason", [({"shared_expert_intermediate_size": 16}, "a shared expert"),
                                         ({"qk_layernorm": False}, "no q/k layer norm"),
                                         ({"moe_router_enable_expert_bias": True}, "a router expert bias")])
def test_lladamoe_without_native_match_needs_remote_code(tmp_path, tiny_model, over, reason):
    path, _, _ = _write_lladamoe(tmp_path / "moe", tiny_model, **over)
    with pytest.raises(UserError, match=f"{reason}.*--trust-remote-code"):
        load_model(path)


# --- LLaDA 1.5: LLaDA's layout, sharded, with its remote-code entries ----------------------------------------
def test_llada_1_5_layout_loads_natively(tmp_path, tiny_model):
    from test_models import _reference_llada_forward, _write_llada_checkpoint

    path, cfg, w = _write_llada_checkpoint(tmp_path, tiny_model)
    # LLaDA-1.5's config.json: LLaDA's keys plus its auto_map to the shipped code; weights in shards.
    cfg15 = {**cfg, "architectures": ["LLaDAModelLM"], "auto_map": {
        "AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM",
        "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"}, "n_kv_heads": cfg["n_heads"], "mlp_ratio": 4,
        "activation_type": "silu", "layer_norm_type": "rms", "pad_token_id": cfg["eos_token_id"]}
    (path / "config.json").write_text(json.dumps(cfg15))
    (path / "model.safetensors").unlink()
    keys = sorted(w)
    half = len(keys) // 2
    index = {}
    for n, part in enumerate((keys[:half], keys[half:]), 1):
        name = f"model-0000{n}-of-00002.safetensors"
        save_file({k: w[k] for k in part}, str(path / name))
        index.update({k: name for k in part})
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    m = load_model(path)  # native: no remote code needed
    assert m.native and m.meta.flavour == "llada" and m.pad_id == cfg["eos_token_id"]
    ids = torch.randint(10, 90, (1, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(m.logits(ids), _reference_llada_forward(w, cfg, ids), atol=2e-4, rtol=2e-4)


# --- attention implementations ---------------------------------------------------------------------------------
def _batch(m):
    ids = torch.tensor([[10, 11, 12, 13, 14, 15, 16], [m.pad_id, m.pad_id, 20, 21, 22, 23, 24]])
    mask = ids != m.pad_id
    return ids, mask


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("bfloat16", 3e-2)])
def test_attention_options_keep_logits(tiny_path, dtype, tol):
    ref = load_model(tiny_path, dtype=dtype)
    eager = load_model(tiny_path, dtype=dtype, attn="eager")
    assert eager.attn == "eager" and ref.attn == "sdpa"
    ids, mask = _batch(ref)
    with torch.no_grad():
        # SDPA with the explicit 4D mask, as before this option existed: the reference
        full4d = mask[:, None, None, :].expand(2, 1, 7, 7)
        from mdlm_bench.models.mdlm import position_ids_from_mask

        masked = ref.model(input_ids=ids, attention_mask=full4d, position_ids=position_ids_from_mask(mask)).logits
        for m in (ref, eager):
            out = m.logits(ids, mask)
            assert (out[mask] - masked[mask]).abs().max().item() <= tol * max(1.0, masked.abs().max().item())
            one = m.logits(ids[:1])  # unpadded: no mask passed
            assert (one - masked[:1]).abs().max().item() <= tol * max(1.0, masked.abs().max().item())


def test_no_mask_passed_when_nothing_is_padded(tiny_model):
    seen = []
    hook = tiny_model.model.register_forward_pre_hook(
        lambda mod, args, kw: seen.append(kw.get("attention_mask")), with_kwargs=True)
    try:
        ids, mask = _batch(tiny_model)
        with torch.no_grad():
            tiny_model.logits(ids[:1])
            tiny_model.window_logits(ids[:1], mask[:1], 3, 7)
            tiny_model.logits(ids, mask)
        generate(tiny_model, [[10, 11, 12]], DecodeConfig(gen_length=8, steps=8, block_length=4, cache="dual"))
    finally:
        hook.remove()
    assert seen[0] is None and seen[1] is None and seen[2] is not None and seen[2].dim() == 4
    assert all(s is None for s in seen[3:])  # one unpadded prompt: every step, cached or not
    # and attention is still bidirectional without a mask: the last token changes the first position
    with torch.no_grad():
        a = tiny_model.logits(ids[:1])
        b = tiny_model.logits(torch.cat([ids[:1, :-1], torch.tensor([[40]])], 1))
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4


def test_attention_option_refusals():
    from mdlm_bench.models.checkpoint import check_attn

    with pytest.raises(UserError, match="did you mean 'eager'"):
        check_attn("eagr")
    from transformers.utils import is_flash_attn_2_available

    if not is_flash_attn_2_available():
        with pytest.raises(UserError, match="flash-attn"):
            check_attn("flash_attention_2")


@pytest.mark.parametrize("cache", ["none", "dual"])
def test_eager_decodes_padded_batches_as_sdpa(tiny_path, tiny_model, cache):
    eager = load_model(tiny_path, attn="eager")
    prompts = [[10, 11, 12, 13, 14], [20, 21]]
    cfg = DecodeConfig(gen_length=8, steps=8, block_length=4, cache=cache)
    assert [r.raw_ids for r in generate(eager, prompts, cfg)] == [r.raw_ids for r in generate(tiny_model, prompts, cfg)]
