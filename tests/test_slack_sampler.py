"""The sampler treats <slack> as slack-CTC training assumes: committed like any token, deleted from the text,
never moved by the shift operator, never counted as content by exact match or edit distance."""

import torch

from mdlm_bench.decode.config import DecodeConfig
from mdlm_bench.decode.sampler import Hook, generate
from mdlm_bench.perturb.operators import make_hook
from mdlm_bench.perturb.spec import PerturbSpec
from mdlm_bench.decode.prompts import encode_prompt
from mdlm_bench.evaluate.sweep import compare_levels


class Force(Hook):
    """Make seq[i] the argmax at generated position i, more confidently at later positions (a known order)."""

    def __init__(self, seq):
        self.seq = seq

    def on_logits(self, state, logits):
        for i, t in enumerate(self.seq[:logits.shape[1]]):
            logits[:, i, :] = 0.0
            logits[:, i, t] = 5.0 + 0.5 * i


def _seq(m, text, slack_at, n):
    ids = m.tokenizer(text, add_special_tokens=False)["input_ids"]
    for i in sorted(slack_at):
        ids.insert(i, m.slack_id)
    return ids + [m.eos_ids[0]] * (n - len(ids))


def test_slack_is_committed_like_any_token(tiny_model):
    m = tiny_model
    seq = _seq(m, "abc", [1, 3], 8)
    p = encode_prompt(m, "hi")
    r = generate(m, [p], DecodeConfig(gen_length=8, steps=8, block_length=8, record_steps=True),
                 hooks=[Force(seq)])[0]
    assert r.raw_ids == seq
    # One token per step, slack included, in confidence order (the last position first).
    assert r.commit_step == [7 - i for i in range(8)]


def test_slack_is_deleted_from_text(tiny_model):
    m = tiny_model
    seq = _seq(m, "abc", [0, 2, 5], 10)
    r = generate(m, [encode_prompt(m, "hi")], DecodeConfig(gen_length=10, steps=5, block_length=10),
                 hooks=[Force(seq)])[0]
    assert m.slack_id in r.raw_ids
    assert r.text == "abc" and m.slack_id not in r.token_ids


def test_shift_never_moves_slack(tiny_model):
    m = tiny_model
    seq = _seq(m, "ab", [0, 1, 3, 4], 8)  # S S a S S b EOS EOS
    spec = PerturbSpec(operator="shift", fraction=1.0, direction="random", distance=1).validate()
    for seed in range(6):
        spec.seed = seed
        hook = make_hook(spec, m, [f"row{seed}"], 8)
        r = generate(m, [encode_prompt(m, "hi")], DecodeConfig(gen_length=8, steps=8, block_length=8),
                     hooks=[Force(seq), hook])[0]
        events = [e for e in hook.record(0)["events"] if not e.get("spent_on_slack")]
        assert events, "fraction 1.0 must displace something"
        assert all(e["token"] != m.slack_id and seq[e["from"]] != m.slack_id for e in events)
        # Every slack sits where the sampler proposed it (a content token may be moved onto a masked slot
        # that would have become slack, but a slack is never displaced).
        assert {i for i, t in enumerate(r.raw_ids) if t == m.slack_id} <= {0, 1, 3, 4}


def test_an_operation_selected_on_slack_is_spent_or_carried_as_the_spec_says(tiny_model):
    m = tiny_model
    seq = _seq(m, "ab", [0, 1, 3, 4], 8)  # S S a S S b EOS EOS: half the commits are slack
    moved = {}
    for on_slack in ("spend", "carry"):
        moved[on_slack] = 0
        for seed in range(16):
            spec = PerturbSpec(operator="shift", fraction=1 / 8, distance=1, seed=seed, on_slack=on_slack).validate()
            hook = make_hook(spec, m, ["row"], 8)
            generate(m, [encode_prompt(m, "hi")], DecodeConfig(gen_length=8, steps=8, block_length=8),
                     hooks=[Force(seq), hook])
            rec = hook.record(0)
            assert rec["displaced_tokens"] + rec["spent_on_slack"] + rec["skipped"] == 1  # budget of one
            if on_slack == "carry":
                assert rec["spent_on_slack"] == 0
            moved[on_slack] += rec["displaced_tokens"]
    # Spent operations never reach content; carried ones do, so carry moves strictly more tokens.
    assert moved["spend"] < moved["carry"]


def test_slack_is_not_content_for_exact_match_or_edit_distance(tiny_model):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "synth_utils", Path(__file__).resolve().parents[1] / "tasks" / "synth_utils.py")
    su = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(su)
    m = tiny_model
    p = encode_prompt(m, "hi")
    cfg = DecodeConfig(gen_length=10, steps=10, block_length=10)
    plain = generate(m, [p], cfg, hooks=[Force(_seq(m, "abc", [], 10))])[0]
    slacked = generate(m, [p], cfg, hooks=[Force(_seq(m, "abc", [0, 2, 3], 10))])[0]
    assert plain.raw_ids != slacked.raw_ids
    assert su.process_results({"response": "abc"}, [slacked.text]) == {"exact_match": 1.0}
    rows = [{"task": "t", "uid": "0", "seed": 0, "output": g.text, "token_ids": g.token_ids}
            for g in (plain, slacked)]
    cmp_ = compare_levels([rows[0]], [rows[1]])
    assert cmp_["edit_distance"] == [0.0] and cmp_["unchanged"] == [1.0] and cmp_["length_change"] == [0.0]
    assert torch.tensor(slacked.token_ids).tolist() == plain.token_ids
