"""Recipe loading, data loading/validation, canvas building, slack insertion and batch layout."""

import json
import random

import pytest
import torch

from mdlm_bench.errors import UserError
from mdlm_bench.train.data import (
    Encoded,
    batch_indices,
    build_canvas,
    collate,
    displace,
    encode_examples,
    load_examples,
    step_canvases,
)
from mdlm_bench.train.recipe import Recipe, load_recipe

EOS, SLACK = 3, 4


def test_recipe_unknown_keys_are_named(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("loss: ce\nlearning_rate: 0.1\nbatchsize: 3\n")
    with pytest.raises(UserError, match="unknown key\\(s\\) batchsize, learning_rate"):
        load_recipe(p)


def test_recipe_bad_values():
    with pytest.raises(UserError, match="did you mean 'slack_ctc'"):
        from mdlm_bench.config import from_dict
        from_dict(Recipe, {"loss": "slack-ctc"})
    with pytest.raises(ValueError, match="multiple of micro_batch_size"):
        Recipe(batch_size=10, micro_batch_size=4)
    with pytest.raises(UserError, match="recipe.lora"):
        Recipe(lora={"rank": 4})


def test_shipped_recipes_load_and_are_matched():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "training"
    recipes = {p.stem: load_recipe(p) for p in root.glob("*.yaml")}
    assert {"ce", "slack-ctc", "tiny-base", "tiny-ce", "tiny-slack-ctc"} <= set(recipes)
    # Only the loss, its options and the slack placement it needs may differ between matched recipes.
    loss_only = {"loss", "slack_insert_rate", "slack_placement", "slack_count", "pad_with", "ctc_band", "ce_weight",
                 "displace_rate"}
    for a, b in (("tiny-ce", "tiny-slack-ctc"), ("ce", "slack-ctc")):
        da, db = recipes[a].to_dict(), recipes[b].to_dict()
        differ = {k for k in da if da[k] != db[k]}
        assert differ <= loss_only, differ
        assert recipes[b].loss == "slack_ctc" and recipes[a].loss == "ce"
    # At 8B the pair differs exactly in the loss and the slack placement, and slack-CTC uses what the dev grid
    # chose (reports/slack-ctc-grid.md: trailing slack, band 1), the same as the shipped tiny-slack-ctc.
    da, db = recipes["ce"].to_dict(), recipes["slack-ctc"].to_dict()
    assert {k for k in da if da[k] != db[k]} == {"loss", "pad_with", "ctc_band"}
    for k in ("pad_with", "ctc_band", "slack_insert_rate", "slack_count", "ce_weight", "displace_rate"):
        assert db[k] == recipes["tiny-slack-ctc"].to_dict()[k], k
    # Every answer evaluation asks for is kept: the maximum canvas covers the longest decode (1024), long
    # answers are truncated and counted rather than dropped, and canvases are bucketed.
    for name in ("ce", "slack-ctc"):
        r = recipes[name]
        assert r.canvas >= 1024 and r.overflow == "truncate" and r.canvas_multiple > 0 and r.gradient_checkpointing
    # The paper's protocol: both tiny fine-tunes start from the bundled original.
    assert recipes["tiny-ce"].model == recipes["tiny-slack-ctc"].model == "tiny-base"
    assert recipes["tiny-base"].loss == "ce" and recipes["tiny-base"].model.startswith("preset:")


def test_build_canvas_inserts_slack_keeps_order_and_pads():
    resp = [10, 11, 10, 12]
    c = build_canvas(resp, 16, EOS, SLACK, 0.25, "eos", random.Random(0))
    assert len(c) == 16
    body = c[:c.index(EOS)]
    assert body.count(SLACK) == 4 and [t for t in body if t != SLACK] == resp
    assert set(c[len(body):]) == {EOS}
    c2 = build_canvas(resp, 10, EOS, SLACK, 0.0, "slack", random.Random(0))
    assert c2 == resp + [EOS] + [SLACK] * 5
    # No room: fewer slack tokens, never dropping response tokens or the closing EOS.
    c3 = build_canvas(resp, 6, EOS, SLACK, 0.9, "eos", random.Random(1))
    assert len(c3) == 6 and c3[-1] == EOS and [t for t in c3[:-1] if t != SLACK] == resp


def test_batch_indices_permute_each_epoch():
    seen = sum((batch_indices(10, s, 5, seed=1) for s in range(2)), [])
    assert sorted(seen) == list(range(10))
    assert batch_indices(10, 3, 5, seed=1) == batch_indices(10, 3, 5, seed=1)
    assert batch_indices(10, 0, 5, seed=1) != batch_indices(10, 0, 5, seed=2)


def test_collate_layout():
    rows = [Encoded("a", [1, 2, 3], [10]), Encoded("b", [5], [11, 12])]
    canv = torch.tensor([[10, EOS, EOS], [11, 12, EOS]])
    cmask = torch.tensor([[True, False, True], [False, True, True]])
    b = collate(rows, canv, cmask, torch.tensor([0.5, 0.6]), pad_id=0, mask_id=2)
    assert b["targets"].tolist() == [[1, 2, 3, 10, EOS, EOS], [0, 0, 5, 11, 12, EOS]]
    assert b["attention_mask"].tolist() == [[True] * 6, [False, False, True, True, True, True]]
    assert b["input_ids"].tolist() == [[1, 2, 3, 2, EOS, 2], [0, 0, 5, 11, 2, 2]]
    assert not b["mask"][:, :3].any() and b["response_mask"][:, 3:].all()
    assert b["answer_lengths"].tolist() == [3, 3]


class FakeTok:
    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


class FakeModel:
    tokenizer = FakeTok()
    eos_ids = [EOS]

    def chat_prompt(self, messages):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_load_prompt_response_and_chat(tmp_path):
    p = tmp_path / "d.jsonl"
    write_jsonl(p, [{"prompt": "hi", "response": "yo", "uid": "x"}, "",
                    {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                                  {"role": "assistant", "content": "a"}]}])
    ex = load_examples(Recipe(data=str(p)))
    assert [e.uid for e in ex] == ["x", "1"]
    assert ex[0].messages == [{"role": "user", "content": "hi"}] and ex[0].response == "yo"
    assert [m["role"] for m in ex[1].messages] == ["system", "user"] and ex[1].response == "a"
    enc, _ = encode_examples(ex, FakeModel(), Recipe(data=str(p)))
    assert enc[0].prompt_ids == [ord(c) for c in "<user>hi<assistant>"]


def test_missing_fields_report_line_numbers(tmp_path):
    p = tmp_path / "d.jsonl"
    write_jsonl(p, [{"prompt": "a", "response": "b"}, "", {"prompt": "a"}, {"messages": [{"role": "user",
                                                                                          "content": "q"}]}])
    with pytest.raises(UserError, match=r"line\(s\) 3, 4 lack.*skip_bad_rows: true"):
        load_examples(Recipe(data=str(p)))
    from mdlm_bench.train.data import load_examples_counted

    ex, counts = load_examples_counted(Recipe(data=str(p), skip_bad_rows=True))
    assert len(ex) == 1 and counts == {"rows": 3, "bad_rows_skipped": 2, "examples": 1}
    with pytest.raises(UserError, match="does not exist"):
        load_examples(Recipe(data=str(tmp_path / "nope.jsonl")))


def test_overflow_policies(tmp_path):
    p = tmp_path / "d.jsonl"
    write_jsonl(p, [{"prompt": "a", "response": "x" * 3}, {"prompt": "b", "response": "y" * 10}])
    base = dict(data=str(p), canvas=6, max_prompt_tokens=32)
    ex = load_examples(Recipe(**base))
    with pytest.raises(UserError, match="1 row\\(s\\) do not fit.*overflow: truncate or skip"):
        encode_examples(ex, FakeModel(), Recipe(**base))
    enc, st = encode_examples(ex, FakeModel(), Recipe(**base, overflow="skip"))
    assert len(enc) == 1 and st == {"truncated": 0, "skipped": 1}
    enc, st = encode_examples(ex, FakeModel(), Recipe(**base, overflow="truncate"))
    # Truncation keeps the first `canvas` tokens and no closing EOS (build_canvas then adds none).
    assert st == {"truncated": 1, "skipped": 0} and enc[1].response_ids == [ord("y")] * 6 and enc[1].truncated
    assert build_canvas(enc[1].response_ids, 6, EOS, SLACK, 0.0, "eos", random.Random(0)) == [ord("y")] * 6


def test_step_canvases_deterministic_and_seeded():
    enc = [Encoded(str(i), [1], [10 + i] * (i % 4 + 1)) for i in range(20)]
    r = Recipe(canvas=8, batch_size=6, micro_batch_size=6, slack_insert_rate=0.25, seed=3)
    a = step_canvases(enc, 5, r, EOS, SLACK)
    b = step_canvases(enc, 5, r, EOS, SLACK)
    assert [x.uid for x in a[0]] == [x.uid for x in b[0]]
    assert all(torch.equal(x, y) for x, y in zip(a[1:], b[1:]))
    c = step_canvases(enc, 6, r, EOS, SLACK)
    assert not torch.equal(a[2], c[2])
    assert (a[1] == SLACK).sum(1).tolist() == [2] * 6  # round(0.25 * 8) slack tokens each


def test_slack_placements_relative_to_answer_and_fixed_count():
    resp = list(range(10, 18))  # 8 tokens
    for seed in range(20):
        c = build_canvas(resp, 32, EOS, SLACK, 0.0, "eos", random.Random(seed), "count", 2)
        body = c[:c.index(EOS)]
        assert body.count(SLACK) == 2 and [t for t in body if t != SLACK] == resp
    # answer: rate x answer length, stochastically rounded (0.3 x 8 = 2.4 -> 2 or 3, mean 2.4)
    counts = [build_canvas(resp, 32, EOS, SLACK, 0.3, "eos", random.Random(s), "answer").count(SLACK)
              for s in range(400)]
    assert set(counts) == {2, 3} and abs(sum(counts) / 400 - 2.4) < 0.1
    # canvas (the default): a fraction of the canvas, whatever the answer length
    assert build_canvas(resp[:2], 32, EOS, SLACK, 0.125, "eos", random.Random(0)).count(SLACK) == 4
    # trailing only: no slack inside, slack padding after the EOS
    assert build_canvas(resp, 12, EOS, SLACK, 0.0, "slack", random.Random(0)) == resp + [EOS] + [SLACK] * 3


def test_displace_follows_the_shift_rule_and_keeps_spans_explained_by_slack():
    tot = 0
    for trial in range(500):
        rng = random.Random(trial)
        resp = [rng.randint(10, 20) for _ in range(rng.randint(1, 8))]
        c = build_canvas(resp, 16, EOS, SLACK, 0.0, rng.choice(["eos", "slack"]), rng, "count", rng.randint(0, 2))
        m = [rng.random() < 0.5 for _ in c]
        c0, m0 = list(c), list(m)
        k = displace(c, m, SLACK, 0.5, rng)
        tot += k
        # Same content in the same order, same number of slack tokens: only slack moved in the clean canvas.
        assert [t for t in c if t != SLACK] == [t for t in c0 if t != SLACK] and c.count(SLACK) == c0.count(SLACK)
        newly_visible = [i for i in range(16) if m0[i] and not m[i]]
        newly_masked = [i for i in range(16) if m[i] and not m0[i]]
        assert len(newly_visible) == len(newly_masked) == k
        for i in newly_masked:  # the vacated slot is slack, next to a newly visible (moved) token
            assert c[i] == SLACK and (i - 1 in newly_visible or i + 1 in newly_visible)
        for i in range(16):  # tokens visible before and after keep their value
            if not m0[i] and not m[i]:
                assert c[i] == c0[i]
    assert tot > 100
    # A hand-checked case: "a b c" with a trailing slack; b visible, its right neighbour and the rest masked.
    c, m = [10, 11, 12, SLACK, EOS], [True, False, True, True, True]
    rng = random.Random(0)
    while True:  # find a draw that moves b right
        cc, mm = list(c), list(m)
        if displace(cc, mm, SLACK, 1.0, rng) and not mm[2]:
            break
    assert cc == [10, SLACK, 11, 12, EOS] and mm == [True, True, False, True, True]
    # No masked slack beyond the target in either direction: nothing moves.
    c, m = [10, 11, 12, EOS], [True, False, True, True]
    assert displace(c, m, SLACK, 1.0, random.Random(0)) == 0 and c == [10, 11, 12, EOS]


def test_step_canvases_with_displacement_are_seeded():
    enc = [Encoded(str(i), [5, 6], [10 + i % 5, 11, 12]) for i in range(8)]
    r = Recipe(loss="slack_ctc", canvas=8, batch_size=4, micro_batch_size=4, pad_with="slack", displace_rate=0.5)
    a = step_canvases(enc, 3, r, EOS, SLACK)
    b = step_canvases(enc, 3, r, EOS, SLACK)
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    plain = step_canvases(enc, 3, Recipe(**{**r.to_dict(), "displace_rate": 0.0}), EOS, SLACK)
    assert not torch.equal(plain[1], a[1])  # some token was displaced at this rate


def test_new_recipe_options_are_validated():
    with pytest.raises(UserError, match="slack_placement"):
        Recipe(slack_placement="gaps")
    with pytest.raises(ValueError, match="ce_weight"):
        Recipe(ce_weight=1.5)
    with pytest.raises(ValueError, match="ctc_band"):
        Recipe(ctc_band=-1)
