"""Sampler: equality with a plainly written LLaDA reference loop, batching invariance, options."""

import pytest
import torch
import torch.nn.functional as F

from mdlm_bench.decode.config import DecodeConfig
from mdlm_bench.decode.sampler import Hook, generate
from mdlm_bench.errors import UserError
from mdlm_bench.decode.prompts import encode_prompt


def reference_generate(model, prompt, gen_length, steps, block_length, remasking="low_confidence",
                       cfg_scale=0.0):
    """Batch-1 LLaDA generate(), temperature 0, written out from the algorithm."""
    mask_id = model.mask_id
    x = torch.tensor([list(prompt) + [mask_id] * gen_length])
    L = len(prompt)
    n_blocks = gen_length // block_length
    per_block = steps // n_blocks
    for b in range(n_blocks):
        lo, hi = L + b * block_length, L + (b + 1) * block_length
        n_masked = int((x[0, lo:hi] == mask_id).sum())
        base, extra = divmod(n_masked, per_block)
        schedule = [base + (1 if i < extra else 0) for i in range(per_block)]
        for i in range(per_block):
            with torch.no_grad():
                if cfg_scale > 0:
                    un = x.clone()
                    un[0, :L] = mask_id
                    cond, unc = model.logits(x)[0], model.logits(un)[0]
                    logits = unc + (cfg_scale + 1) * (cond - unc)
                else:
                    logits = model.logits(x)[0]
            x0 = logits.argmax(-1)
            p = F.softmax(logits.float(), -1)
            if remasking == "low_confidence":
                conf = p.gather(-1, x0[:, None])[:, 0]
            elif remasking == "margin":
                t2 = p.topk(2, -1).values
                conf = t2[:, 0] - t2[:, 1]
            elif remasking == "entropy":
                logp = F.log_softmax(logits.float(), -1)
                conf = (logp.exp() * logp).sum(-1)
            conf = conf.clone()
            conf[hi:] = -float("inf")
            conf[x[0] != mask_id] = -float("inf")
            idx = conf.topk(schedule[i]).indices
            x[0, idx] = x0[idx]
    return x[0, L:].tolist()


def _prompts(model, texts):
    return [encode_prompt(model, t) for t in texts]


@pytest.mark.parametrize("remasking", ["low_confidence", "margin", "entropy"])
@pytest.mark.parametrize("gen,steps,block", [(16, 16, 16), (16, 8, 4), (12, 3 * 3, 4), (10, 3, 10)])
def test_matches_reference_loop(tiny_model, remasking, gen, steps, block):
    prompt = _prompts(tiny_model, ["reverse: abc"])[0]
    cfg = DecodeConfig(gen_length=gen, steps=steps, block_length=block, remasking=remasking)
    ours = generate(tiny_model, [prompt], cfg)[0]
    assert ours.raw_ids == reference_generate(tiny_model, prompt, gen, steps, block, remasking)
    assert ours.nfe == steps


def test_cfg_matches_reference(tiny_model):
    prompt = _prompts(tiny_model, ["copy: xyz"])[0]
    cfg = DecodeConfig(gen_length=8, steps=8, block_length=4, cfg_scale=1.5)
    ours = generate(tiny_model, [prompt], cfg)[0]
    assert ours.raw_ids == reference_generate(tiny_model, prompt, 8, 8, 4, cfg_scale=1.5)
    assert ours.nfe == 16  # two forward evaluations per step


@pytest.mark.parametrize("cfg", [
    DecodeConfig(gen_length=16, steps=8, block_length=8),
    DecodeConfig(gen_length=16, steps=16, block_length=4, temperature=1.0, remasking="random"),
    DecodeConfig(gen_length=16, block_length=8, threshold=0.02, temperature=0.7),
    DecodeConfig(gen_length=8, steps=8, block_length=8, cfg_scale=1.0, temperature=0.5),
])
def test_batched_equals_one_by_one(tiny_model, cfg):
    texts = ["a", "sort: dcba", "count the letters in hello world", "x y"]
    prompts = _prompts(tiny_model, texts)
    seeds = [3, 1, 4, 1]
    batched = generate(tiny_model, prompts, cfg, seeds)
    for p, s, b in zip(prompts, seeds, batched):
        single = generate(tiny_model, [p], cfg, [s])[0]
        assert single.raw_ids == b.raw_ids and single.nfe == b.nfe


def test_seed_changes_sampled_output(tiny_model):
    p = _prompts(tiny_model, ["hi"])[0]
    cfg = DecodeConfig(gen_length=16, steps=16, block_length=16, temperature=1.0)
    a, b, c = (generate(tiny_model, [p], cfg, [s])[0].raw_ids for s in (0, 0, 1))
    assert a == b and a != c


def test_threshold_commits_all_and_counts_nfe(tiny_model):
    p = _prompts(tiny_model, ["hi"])[0]
    cfg = DecodeConfig(gen_length=16, block_length=8, threshold=1e-6, record_steps=True)
    r = generate(tiny_model, [p], cfg)[0]
    assert tiny_model.mask_id not in r.raw_ids
    # every candidate clears a tiny threshold: one step per block
    assert r.nfe == 2 and set(r.commit_step) == {0, 1}


def test_suppress_eos_and_text_cleaning(tiny_model):
    p = _prompts(tiny_model, ["hi"])[0]

    class ForceEos(Hook):
        def on_logits(self, state, logits):
            logits[..., state.eos_ids[0]] += 100.0  # make EOS the argmax everywhere

    r = generate(tiny_model, [p], DecodeConfig(gen_length=8, steps=8, block_length=8), hooks=[ForceEos()])[0]
    assert r.raw_ids == [tiny_model.eos_ids[0]] * 8 and r.text == "" and r.token_ids == []
    r = generate(tiny_model, [p], DecodeConfig(gen_length=8, steps=8, block_length=8, suppress_eos=True),
                 hooks=[ForceEos()])[0]
    assert tiny_model.eos_ids[0] not in r.raw_ids


def test_slack_removed_from_text(tiny_model):
    p = _prompts(tiny_model, ["hi"])[0]
    tok = tiny_model.tokenizer
    want = tok("ab")["input_ids"]

    class Write(Hook):
        def on_logits(self, state, logits):
            seq = [want[0], tiny_model.slack_id, want[1]] + [tiny_model.eos_ids[0]] * 5
            for i, t in enumerate(seq):
                logits[:, i, t] += 100.0

    r = generate(tiny_model, [p], DecodeConfig(gen_length=8, steps=4, block_length=8), hooks=[Write()])[0]
    assert r.text == "ab" and r.token_ids == want


def test_commit_step_records_schedule(tiny_model):
    p = _prompts(tiny_model, ["hi"])[0]
    r = generate(tiny_model, [p], DecodeConfig(gen_length=8, steps=4, block_length=4, record_steps=True))[0]
    assert sorted(r.commit_step) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert max(r.commit_step[:4]) < min(r.commit_step[4:])  # blocks are semi-autoregressive


@pytest.mark.parametrize("kw,msg", [
    (dict(gen_length=10, block_length=4), "multiple of block_length"),
    (dict(gen_length=16, block_length=4, steps=6), "multiple of the number of blocks"),
    (dict(remasking="lowconf"), "did you mean 'low_confidence'"),
    (dict(threshold=1.5), "threshold"),
    (dict(temperature=-1), "temperature"),
])
def test_bad_settings(kw, msg):
    with pytest.raises(UserError, match=msg):
        DecodeConfig(**kw).validate()


def test_too_long_for_positions(tiny_model):
    with pytest.raises(UserError, match="exceeds the model's"):
        generate(tiny_model, [[5] * 10], DecodeConfig(gen_length=512, steps=512, block_length=512))
