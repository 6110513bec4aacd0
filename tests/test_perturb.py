"""Perturbation operators: identity at 0, exact displacement, controls, seeding, bad specs."""

import inspect

import pytest

from mdlm_bench.decode import sampler as decoding
from mdlm_bench.decode.config import DecodeConfig
from mdlm_bench.decode.sampler import Hook, generate
from mdlm_bench.errors import UserError
from mdlm_bench.perturb import PerturbSpec, load_spec
from mdlm_bench.perturb.operators import OPERATORS, make_hook
from mdlm_bench.decode.prompts import encode_prompt

CFG = DecodeConfig(gen_length=32, steps=32, block_length=8)
TEXTS = ["copy: abc", "reverse: hello", "sort: dcba", "count: aaa", "x", "spell: 42"]


class Proposals(Hook):
    """Records what the sampler chose before any perturbation edits it."""

    def __init__(self):
        self.seen = set()

    def on_commit(self, state, commit):
        for a, b in enumerate(commit.rows.tolist()):
            for i in commit.transfer[a].nonzero().flatten().tolist():
                self.seen.add((b, state.step, i, int(commit.tokens[a, i])))


def run(model, spec, texts=TEXTS, cfg=CFG, seeds=None, extra=()):
    prompts = [encode_prompt(model, t) for t in texts]
    keys = [f"t|{i}|0" for i in range(len(texts))]
    hook = make_hook(spec, model, keys, cfg.gen_length)
    hooks = list(extra) + ([hook] if hook else [])
    return generate(model, prompts, cfg, seeds or [0] * len(texts), hooks), hook


def test_fraction_zero_is_identity(tiny_model):
    base, _ = run(tiny_model, None)
    for op in OPERATORS:
        for sched in ("every_step", "post_hoc"):
            out, hook = run(tiny_model, PerturbSpec(operator=op, fraction=0.0, schedule=sched).validate())
            assert [r.raw_ids for r in out] == [r.raw_ids for r in base]
            assert all(hook.record(b)["events"] == [] for b in range(len(TEXTS)))


@pytest.mark.parametrize("direction", ["left", "right", "random"])
@pytest.mark.parametrize("distance", [1, 2])
def test_shift_moves_each_token_exactly_d(tiny_model, direction, distance):
    rec = Proposals()
    spec = PerturbSpec(operator="shift", fraction=0.15, direction=direction, distance=distance).validate()
    out, hook = run(tiny_model, spec, extra=[rec])
    moved = 0
    for b, r in enumerate(out):
        for e in hook.record(b)["events"]:
            assert abs(e["to"] - e["from"]) == distance
            assert (b, e["step"], e["from"], e["token"]) in rec.seen  # the sampler chose `from`
            assert r.raw_ids[e["to"]] == e["token"]  # and the token ended up at `to`
            moved += 1
    assert moved > 0


def test_effective_fraction_within_tolerance(tiny_model):
    spec = PerturbSpec(operator="shift", fraction=0.1).validate()
    texts = [f"copy: {w}" for w in ("a", "bb", "ccc", "dddd", "e f", "gh", "ijk", "lmno")]
    out, hook = run(tiny_model, spec, texts=texts)
    G = CFG.gen_length
    effs = []
    for b in range(len(texts)):
        rec = hook.record(b)
        # documented tolerance: stochastic rounding (< 1 op) plus whatever could not be placed
        assert abs(rec["effective_fraction"] - spec.fraction) <= (1 + rec["skipped"]) / G + 1e-9
        assert rec["effective_fraction"] * G == len(rec["events"])
        effs.append(rec["effective_fraction"])
    assert abs(sum(effs) / len(effs) - spec.fraction) < 0.05


@pytest.mark.parametrize("op", ["replace", "remask"])
def test_controls_move_nothing(tiny_model, op):
    out, hook = run(tiny_model, PerturbSpec(operator=op, fraction=0.15).validate())
    events = [e for b in range(len(TEXTS)) for e in hook.record(b)["events"]]
    assert events and all(e["to"] in (e["from"], None) for e in events)
    assert all(hook.record(b)["displaced_tokens"] == 0 for b in range(len(TEXTS)))
    assert all(tiny_model.mask_id not in r.raw_ids for r in out)  # remasked slots were filled again


def test_replace_writes_logged_token(tiny_model):
    out, hook = run(tiny_model, PerturbSpec(operator="replace", fraction=0.15).validate())
    for b, r in enumerate(out):
        for e in hook.record(b)["events"]:
            assert r.raw_ids[e["from"]] == e["token"]


@pytest.mark.parametrize("op", ["swap", "span_shift"])
def test_moving_operators_displace_by_one(tiny_model, op):
    out, hook = run(tiny_model, PerturbSpec(operator=op, fraction=0.15).validate())
    events = [e for b in range(len(TEXTS)) for e in hook.record(b)["events"]]
    assert events and all(abs(e["to"] - e["from"]) == 1 for e in events)
    assert all(tiny_model.mask_id not in r.raw_ids for r in out)  # vacated slots were refilled


def test_same_seed_same_events_other_seed_other_events(tiny_model):
    spec = PerturbSpec(operator="shift", fraction=0.15, seed=7).validate()
    a = run(tiny_model, spec)[1]
    b = run(tiny_model, spec)[1]
    c = run(tiny_model, PerturbSpec(operator="shift", fraction=0.15, seed=8).validate())[1]
    ev = lambda h: [h.record(i)["events"] for i in range(len(TEXTS))]  # noqa: E731
    assert ev(a) == ev(b) and ev(a) != ev(c)


def test_row_events_do_not_depend_on_batch(tiny_model):
    spec = PerturbSpec(operator="shift", fraction=0.15).validate()
    out, hook = run(tiny_model, spec)
    prompts = [encode_prompt(tiny_model, t) for t in TEXTS]
    for b in (0, 3):
        h1 = make_hook(spec, tiny_model, [f"t|{b}|0"], CFG.gen_length)
        single = generate(tiny_model, [prompts[b]], CFG, [0], [h1])[0]
        assert single.raw_ids == out[b].raw_ids and h1.record(0)["events"] == hook.record(b)["events"]


def test_window_and_once_schedules(tiny_model):
    rec = Proposals()
    spec = PerturbSpec(operator="shift", fraction=0.15, schedule="window", window=[0.0, 0.5]).validate()
    cfg = DecodeConfig(gen_length=32, steps=32, block_length=32)
    out, hook = run(tiny_model, spec, cfg=cfg, extra=[rec])
    steps = [e["step"] for b in range(len(TEXTS)) for e in hook.record(b)["events"]]
    assert steps and max(steps) < 24  # one commit per step: the first half ends near step 16 (+ carry-over)
    spec = PerturbSpec(operator="shift", fraction=0.1, schedule="once", at_step=5).validate()
    cfg = DecodeConfig(gen_length=32, steps=8, block_length=32)
    out, hook = run(tiny_model, spec, cfg=cfg)
    steps = {e["step"] for b in range(len(TEXTS)) for e in hook.record(b)["events"]}
    assert steps == {5}


def test_post_hoc_leaves_holes_dropped_from_text(tiny_model):
    out, hook = run(tiny_model, PerturbSpec(operator="shift", fraction=0.1, schedule="post_hoc").validate())
    ev = [e for b in range(len(TEXTS)) for e in hook.record(b)["events"]]
    assert ev and all(e["step"] == CFG.steps - 1 for e in ev)
    for b, r in enumerate(out):
        for e in hook.record(b)["events"]:
            assert r.raw_ids[e["to"]] == e["token"]


def test_sampler_loop_is_untouched():
    code = decoding.generate.__code__
    from mdlm_bench.perturb.operators import PerturbationHook

    assert "mdlm_bench.perturb" not in inspect.getsource(decoding)  # the loop knows nothing of operators
    assert decoding.generate.__code__ is code  # and importing them patches nothing
    assert issubclass(PerturbationHook, Hook)


@pytest.mark.parametrize("data,msg", [
    ({"operator": "shift", "fraction": 1.5}, "fraction must lie in"),
    ({"operator": "shfit"}, "did you mean 'shift'"),
    ({"operator": "shift", "schedule": "window", "window": [0.5, 1.2]}, "window"),
    ({"operator": "shift", "frac": 0.1}, "unknown key"),
])
def test_bad_specs(tmp_path, data, msg):
    import yaml

    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=msg):
        load_spec(str(p))


def test_missing_and_malformed_spec(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_spec(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("operator: [shift\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_spec(str(bad))
    with pytest.raises(UserError, match="did you mean 'shift'"):
        load_spec("shfit")


def test_bundled_specs_load():
    for name in ("shift", "swap", "span-shift", "replace", "remask", "shift-first-half", "shift-post-hoc"):
        assert load_spec(name).operator in OPERATORS


class _Force(Hook):
    """Make seq[i] the argmax at position i, more confidently at later positions (commits right to left)."""

    def __init__(self, seq):
        self.seq = seq

    def on_logits(self, state, logits):
        for i, t in enumerate(self.seq[:logits.shape[1]]):
            logits[:, i, :] = 0.0
            logits[:, i, t] = 5.0 + 0.5 * i


def _padded(m, text, n, pad):
    ids = m.tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids + [pad] * (n - len(ids))


def _content_moves(m, seq, spec, key):
    hook = make_hook(spec, m, [key], len(seq))
    cfg = DecodeConfig(gen_length=len(seq), steps=len(seq), block_length=len(seq))
    generate(m, [encode_prompt(m, "hi")], cfg, [0], [_Force(seq), hook])
    return hook.record(0)


def test_content_only_matches_content_moves_across_eos_and_slack_padding(tiny_model):
    """Same rows and seeds, one answer padded with EOS and with <slack>: under select: content both get
    every budgeted operation as a content move; under select: all both mostly hit padding."""
    m = tiny_model
    texts = ["abcd", "xyz", "hello", "ab"]
    n = 16
    moves = {"all": {"eos": [], "slack": []}, "content": {"eos": [], "slack": []}}
    for select in ("all", "content"):
        for seed in range(6):
            spec = PerturbSpec(operator="shift", fraction=2 / n, seed=seed, select=select).validate()
            for k, text in enumerate(texts):
                for pad_name, pad in (("eos", m.eos_ids[0]), ("slack", m.slack_id)):
                    seq = _padded(m, text, n, pad)
                    rec = _content_moves(m, seq, spec, f"t|{k}|{seed}")
                    assert rec["content_fraction"] == rec["content_moves"] / n
                    moves[select][pad_name].append(rec["content_moves"])
                    if select == "content":
                        assert rec["content_moves"] + rec["skipped"] == 2 and rec["spent_on_slack"] == 0
    assert moves["content"]["eos"] == moves["content"]["slack"]
    assert sum(moves["content"]["eos"]) > sum(moves["all"]["eos"])
    assert sum(moves["content"]["eos"]) >= 0.5 * 2 * len(texts) * 6  # the rest found no free slot (skipped)


def test_content_rule_excludes_end_tokens_and_what_follows_them(tiny_model):
    import torch

    from mdlm_bench.perturb.content import is_content_commit

    m = tiny_model
    eos, slack, mask = m.eos_ids[0], m.slack_id, m.mask_id
    a = m.tokenizer("a", add_special_tokens=False)["input_ids"][0]
    row = torch.tensor([a, mask, eos, mask, mask])
    assert is_content_commit(row, 1, a, m.eos_ids, slack)  # left of the committed EOS
    assert not is_content_commit(row, 3, a, m.eos_ids, slack)  # past it: cut from the text
    assert not is_content_commit(row, 1, eos, m.eos_ids, slack)
    assert not is_content_commit(row, 1, slack, m.eos_ids, slack)
    # Moves of EOS inside EOS padding are done but are not content moves.
    spec = PerturbSpec(operator="shift", fraction=1.0, seed=0).validate()
    rec = _content_moves(m, _padded(m, "ab", 8, eos), spec, "row")
    assert rec["displaced_tokens"] > rec["content_moves"]
    assert rec["content_moves"] == sum(1 for e in rec["events"] if e["token"] not in m.eos_ids
                                       and e["to"] is not None and e["to"] != e["from"])


def test_default_select_keeps_the_spec_digest_of_earlier_runs():
    spec = PerturbSpec(operator="shift", fraction=0.05).validate()
    assert "select" not in spec.to_dict() and PerturbSpec(**spec.to_dict()).select == "all"
    content = PerturbSpec(operator="shift", fraction=0.05, select="content").validate()
    assert content.to_dict()["select"] == "content" and content.digest != spec.digest
    with pytest.raises(UserError, match="unknown select"):
        PerturbSpec(select="contnet").validate()
