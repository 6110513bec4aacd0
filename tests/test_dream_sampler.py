"""Dream's sampler (alg, eps schedule, alg_temp, top_p, top_k) against a transcription of Dream's `_sample`.

The reference below is our own transcription of `DreamGenerationMixin._sample` and `sample_tokens` in
NVlabs/Fast-dLLM `dream/model/generation_utils.py` (commit 24cc59e75f20a6384bae8c905965bb090b96388e),
written out in plain torch. Upstream draws from the global RNG; the transcription takes an explicit
generator and makes the same calls in the same order, so one prompt decoded with a row seeded alike must
give the same tokens, at temperature 0 and above.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from mdlm_bench.decode import DecodeConfig, generate
from mdlm_bench.errors import UserError

UPSTREAM = "NVlabs/Fast-dLLM@24cc59e75f20a6384bae8c905965bb090b96388e:dream/model/generation_utils.py"


# --- the transcription -----------------------------------------------------------------------------
def _ref_filter(logits, temperature, top_p, top_k):
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        order_vals, order = torch.sort(logits, descending=True)
        cum = torch.cumsum(F.softmax(order_vals, dim=-1), dim=-1)
        remove = cum > top_p
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = 0
        m = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, order, remove)
        logits = logits.masked_fill(m, torch.finfo(logits.dtype).min)
    if top_k is not None:
        k = min(top_k, logits.size(-1))
        logits = logits.masked_fill(logits < torch.topk(logits, k)[0][..., -1, None], torch.finfo(logits.dtype).min)
    return logits


def _ref_sample_tokens(logits, gen, temperature, top_p, top_k, margin=False, neg_entropy=False):
    probs = torch.softmax(_ref_filter(logits, temperature, top_p, top_k), dim=-1)
    if temperature > 0:
        try:
            dist = torch.distributions.Categorical(probs=probs)  # validates the simplex, normalizes
            x0 = torch.multinomial(dist.probs.reshape(-1, probs.shape[-1]), 1, True, generator=gen).T.reshape(-1)
            conf = torch.gather(probs, -1, x0.unsqueeze(-1)).squeeze(-1)
        except ValueError:
            conf, x0 = probs.max(dim=-1)
    else:
        conf, x0 = probs.max(dim=-1)
    if margin:
        s = torch.sort(probs, dim=-1, descending=True).values
        conf = s[:, 0] - s[:, 1]
    if neg_entropy:
        conf = torch.sum(probs * torch.log(probs + 1e-10), dim=-1)
    return conf, x0


def dream_reference(forward, input_ids, gen_length, steps, mask_id, gen, alg="origin", eps=1e-3, alg_temp=None,
                    temperature=0.0, top_p=None, top_k=None):
    """Transcription of Dream's `_sample` (unpadded prompts). forward(x [B, L]) -> raw logits [B, L, V]."""
    x = F.pad(input_ids, (0, gen_length), value=mask_id)
    timesteps = torch.linspace(1, eps, steps + 1)
    for i in range(steps):
        mask_index = x == mask_id
        logits = forward(x)
        logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        mask_logits = logits[mask_index]
        t, s = timesteps[i], timesteps[i + 1]
        if alg == "origin":
            p_transfer = 1 - s / t if i < steps - 1 else 1
            x0 = torch.zeros_like(x[mask_index], dtype=torch.long) + mask_id
            sel = torch.rand(*x0.shape, generator=gen) < p_transfer
            _, x0[sel] = _ref_sample_tokens(mask_logits[sel], gen, temperature, top_p, top_k)
            x[mask_index] = x0.clone()
            continue
        confidence, x0 = _ref_sample_tokens(mask_logits, gen, temperature, top_p, top_k,
                                            margin=alg == "topk_margin", neg_entropy=alg == "entropy")
        num_mask = mask_index.sum() / mask_index.shape[0]
        n = int(num_mask * (1 - s / t)) if i < steps - 1 else int(num_mask)
        full = torch.full_like(x, -torch.inf, dtype=logits.dtype)
        full[mask_index] = confidence
        if n > 0:
            if alg_temp is None or alg_temp == 0:
                _, idx = torch.topk(full, n)
            else:
                idx = torch.multinomial(F.softmax(full / alg_temp, dim=-1), num_samples=n, generator=gen)
            x_ = torch.zeros_like(x) + mask_id
            x_[mask_index] = x0.clone()
            rows = torch.arange(x.size(0)).unsqueeze(1).expand_as(idx)
            x[rows, idx] = x_[rows, idx]
    return x[:, input_ids.shape[1]:]


# --- a tiny random Dream checkpoint ------------------------------------------------------------------
@pytest.fixture(scope="module")
def dream(tmp_path_factory, tiny_model):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mdlm_bench.models import load_model

    torch.manual_seed(0)
    qcfg = Qwen2Config(vocab_size=len(tiny_model.tokenizer), hidden_size=64, intermediate_size=96,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=128, tie_word_embeddings=False)
    q = Qwen2ForCausalLM(qcfg)
    # Sharpen the head so that confidences spread out (a random head gives near-uniform probabilities).
    with torch.no_grad():
        q.lm_head.weight.mul_(8.0)
    d = tmp_path_factory.mktemp("dream")
    cfg = {**qcfg.to_dict(), "model_type": "Dream", "architectures": ["DreamModel"],
           "mask_token_id": tiny_model.mask_id}
    (d / "config.json").write_text(json.dumps(cfg, default=str))
    save_file({k: v.contiguous() for k, v in q.state_dict().items()}, str(d / "model.safetensors"))
    tiny_model.tokenizer.save_pretrained(d)
    return load_model(d)


def _raw_forward(m):
    def fwd(x):
        full = torch.ones((x.shape[0], 1, x.shape[1], x.shape[1]), dtype=torch.bool)
        with torch.no_grad():
            return m.model(input_ids=x, attention_mask=full, use_cache=False).logits
    return fwd


PROMPTS = [[10, 11, 12, 13, 14, 15], [20, 21, 22, 23, 24, 25]]

# Every algorithm at two settings: (alg, gen_length, steps, dream kwargs)
SETTINGS = [
    ("origin", 16, 16, dict(temperature=0.0)),
    ("origin", 16, 8, dict(temperature=0.7, top_p=0.9, eps=1e-2)),
    ("maskgit_plus", 16, 16, dict(temperature=0.0)),
    ("maskgit_plus", 16, 8, dict(temperature=0.5, top_k=20, alg_temp=0.3)),
    ("topk_margin", 16, 8, dict(temperature=0.0, top_p=0.8)),
    ("topk_margin", 16, 16, dict(temperature=1.0, top_k=10, alg_temp=0.5)),
    ("entropy", 16, 16, dict(temperature=0.0, eps=1e-3)),
    ("entropy", 16, 8, dict(temperature=0.2, top_p=0.95, alg_temp=0.1)),
]


def _ours(m, prompts, alg, gen_length, steps, kw, seeds):
    cfg = DecodeConfig(gen_length=gen_length, steps=steps, block_length=gen_length, alg=alg, **kw)
    return [r.raw_ids for r in generate(m, prompts, cfg, seeds=seeds)]


@pytest.mark.parametrize("alg,gen_length,steps,kw", SETTINGS)
@pytest.mark.parametrize("seed", [0, 7])
def test_dream_sampler_matches_transcription(dream, alg, gen_length, steps, kw, seed):
    """One prompt at a time (upstream draws for the whole batch from one stream; each of our rows has its own)."""
    for p in PROMPTS:
        g = torch.Generator().manual_seed(seed)
        ref = dream_reference(_raw_forward(dream), torch.tensor([p]), gen_length, steps, dream.mask_id, g,
                              alg=alg, **kw)
        ours = _ours(dream, [p], alg, gen_length, steps, kw, [seed])
        assert ours[0] == ref[0].tolist(), (alg, kw, seed)


@pytest.mark.parametrize("alg", ["maskgit_plus", "topk_margin", "entropy"])
def test_dream_greedy_batch_matches_transcription(dream, alg):
    """Without randomness a batch of unpadded prompts decodes as upstream decodes the batch."""
    ref = dream_reference(_raw_forward(dream), torch.tensor(PROMPTS), 16, 16, dream.mask_id, torch.Generator(),
                          alg=alg)
    assert _ours(dream, PROMPTS, alg, 16, 16, {}, [0, 0]) == ref.tolist()


def test_sampled_rows_do_not_depend_on_batch_mates(dream):
    kw = dict(temperature=0.7, top_p=0.9)
    alone = [_ours(dream, [p], "origin", 16, 8, kw, [3])[0] for p in PROMPTS]
    assert _ours(dream, PROMPTS, "origin", 16, 8, kw, [3, 3]) == alone


def test_eps_schedule_commits_like_dream(dream):
    """16 tokens over 16 steps: Dream commits 0, 1, ..., 1, 2 per step (LLaDA's schedule commits 1)."""
    cfg = DecodeConfig(gen_length=16, steps=16, block_length=16, alg="maskgit_plus", record_steps=True)
    cs = generate(dream, [PROMPTS[0]], cfg)[0].commit_step
    per_step = [cs.count(i) for i in range(16)]
    assert per_step == [0] + [1] * 14 + [2]
    lin = DecodeConfig(gen_length=16, steps=16, block_length=16, record_steps=True)
    assert sorted(generate(dream, [PROMPTS[0]], lin)[0].commit_step) == list(range(16))


def test_eps_schedule_applies_to_llada_rules(dream):
    cfg = DecodeConfig(gen_length=16, steps=16, block_length=16, schedule="eps", record_steps=True)
    cs = generate(dream, [PROMPTS[0]], cfg)[0].commit_step
    assert [cs.count(i) for i in range(16)] == [0] + [1] * 14 + [2]


@pytest.mark.parametrize("kw,msg", [
    (dict(alg="nope"), "Dream algorithm"),
    (dict(top_p=0.9), "--alg"),
    (dict(alg="origin", alg_temp=0.5), "alg_temp"),
    (dict(alg="entropy", threshold=0.9), "--parallel"),
    (dict(alg="entropy", remasking="margin"), "--remasking"),
    (dict(alg="entropy", eps=1.5), "eps"),
    (dict(schedule="cosine"), "schedule"),
])
def test_dream_settings_validated(kw, msg):
    with pytest.raises(UserError, match=msg):
        DecodeConfig(gen_length=16, steps=16, block_length=16, **kw).validate()


def test_dream_fields_keep_old_digests():
    from mdlm_bench.decode.config import DecodeConfig as D

    d = D().digest_dict()
    assert not {"alg", "schedule", "eps", "alg_temp", "top_p", "top_k"} & set(d)
    assert D(alg="entropy").digest_dict()["alg"] == "entropy"
