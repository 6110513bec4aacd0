"""The model's own format on a tiny LLaDA-layout checkpoint with LLaDA's special tokens (tests/llada_tiny.py):
end-of-turn then EOS padding, one example per assistant turn, nothing dropped silently, bucketed canvases.

Rules transcribed from ML-GSAI/LLaDA GUIDELINES.md (SFT section, commit b7e6c3565f194352da44b38dd12b6970597309f3):
every answer is padded with EOS, the padding is part of the answer length, and the prompt is never masked; and
from ZHZisZZ/dllm dllm/utils/data.py `default_sft_map_fn` (commit ca176752fbceec49c6b4777a2c18ae88e4eb10ed): the
answer is what the chat template renders after the prompt with the turn opened, closed by the template's
end-of-turn token (<|eot_id|> for LLaDA), and the padding EOS is trained on.
"""

import json
import random

import pytest

from llada_tiny import write_llada
from mdlm_bench.io import read_jsonl
from mdlm_bench.train.buckets import epoch_order, step_canvas
from mdlm_bench.train.data import build_canvas, encode_examples, load_examples, step_canvases
from mdlm_bench.train.format import chat_format
from mdlm_bench.train.recipe import Recipe

ROWS = [
    {"id": "a", "messages": [{"role": "user", "content": "capital of France?"},
                             {"role": "assistant", "content": "Paris."}]},
    {"id": "b", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"},
                             {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"},
                             {"role": "assistant", "content": "6, since 3+3 is 6."}]},
    {"id": "c", "prompt": "spell cat", "response": "c a t"},
    {"id": "long", "prompt": "count", "response": "one two three four five six seven eight nine ten"},
]


@pytest.fixture(scope="module")
def llada(tmp_path_factory):
    from mdlm_bench.models import load_model

    path = write_llada(tmp_path_factory.mktemp("llada") / "ckpt")
    return path, load_model(path)


@pytest.fixture()
def data(tmp_path):
    p = tmp_path / "chat.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return p


def ids(m, *tokens):
    return [m.tokenizer.convert_tokens_to_ids(t) for t in tokens]


def test_format_is_read_from_the_tokenizer_and_template(llada):
    _, m = llada
    fmt = chat_format(m)
    eot, eos = ids(m, "<|eot_id|>", "<|endoftext|>")
    assert (fmt.eot_id, fmt.eos_id) == (eot, eos) and eot != eos
    assert "<slack>" not in m.tokenizer.get_vocab()


def test_every_answer_ends_with_eot_then_eos_and_each_turn_is_an_example(llada, data):
    _, m = llada
    r = Recipe(data=str(data), canvas=64, max_prompt_tokens=256)
    ex = load_examples(r)
    assert [e.uid for e in ex] == ["a", "b/0", "b/1", "c", "long"]  # one example per assistant turn
    b1 = ex[2]
    assert [x["content"] for x in b1.messages] == ["be brief", "2+2?", "4", "and 3+3?"]  # history as prompt
    enc, counts = encode_examples(ex, m, r)
    assert counts == {"truncated": 0, "skipped": 0}
    eot, eos = ids(m, "<|eot_id|>", "<|endoftext|>")
    for e, x in zip(enc, ex):
        assert e.response_ids[-1] == eot and eos not in e.response_ids
        assert m.tokenizer.decode(e.response_ids[:-1]) == x.response.strip()
        # The prompt is the template with the turn opened; earlier answers in it are closed by <|eot_id|> too.
        text = m.tokenizer.decode(e.prompt_ids)
        assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
        assert text.count("<|eot_id|>") == len(x.messages)
    canvas = build_canvas(enc[0].response_ids, 16, eos, None, 0.0, "eos", random.Random(0))
    assert canvas == enc[0].response_ids + [eos] * (16 - len(enc[0].response_ids))
    assert canvas[len("Paris.")] == eot  # content, then <|eot_id|>, then <|endoftext|> padding


def test_long_answers_are_truncated_and_counted_or_named(llada, data):
    _, m = llada
    ex = load_examples(Recipe(data=str(data)))
    from mdlm_bench.errors import UserError

    with pytest.raises(UserError, match="uid long"):
        encode_examples(ex, m, Recipe(data=str(data), canvas=24, max_prompt_tokens=256))
    enc, counts = encode_examples(ex, m, Recipe(data=str(data), canvas=24, max_prompt_tokens=256,
                                                overflow="truncate"))
    assert counts == {"truncated": 1, "skipped": 0} and len(enc) == len(ex)
    cut = [e for e in enc if e.truncated]
    assert [e.uid for e in cut] == ["long"] and len(cut[0].response_ids) == 24
    assert m.tokenizer.decode(cut[0].response_ids) == ROWS[3]["response"][:24]  # no end-of-turn: not an ending


def test_bucketed_canvases_follow_the_batch_length(llada, data):
    _, m = llada
    r = Recipe(data=str(data), canvas=48, max_prompt_tokens=256, canvas_multiple=8, bucket_batches=2,
               batch_size=2, micro_batch_size=1, overflow="truncate")
    enc, _ = encode_examples(load_examples(r), m, r)
    lengths = [len(e.response_ids) for e in enc]
    fmt = chat_format(m)
    seen = set()
    for step in range(10):
        rows, canv, mask, _ = step_canvases(enc, step, r, fmt.eos_id, None)
        need = max(len(x.response_ids) for x in rows) + 1
        assert canv.shape[1] == min(48, -(-need // 8) * 8) == step_canvas([len(x.response_ids) for x in rows], 48, 8)
        assert mask.shape == canv.shape
        seen.add(canv.shape[1])
    assert len(seen) > 1  # batches of short answers get short canvases
    # Inside a group of bucket_batches global batches rows come longest first; each epoch is a permutation.
    order = epoch_order(lengths, 0, r.seed, 4)
    assert sorted(order) == list(range(len(enc)))
    assert [lengths[i] for i in order[:4]] == sorted((lengths[i] for i in order[:4]), reverse=True)


def test_training_run_logs_canvas_and_truncation(llada, data, tmp_path):
    from mdlm_bench.train.trainer import train

    path, _ = llada
    r = Recipe(model=str(path), data=str(data), canvas=24, max_prompt_tokens=256, canvas_multiple=8,
               bucket_batches=1, overflow="truncate", steps=3, batch_size=5, micro_batch_size=5, lr=1e-3,
               warmup_steps=1, loss="slack_ctc", pad_with="slack", ctc_band=1)
    s = train(r, tmp_path / "out", quiet=True)
    log = read_jsonl(tmp_path / "out" / "train_log.jsonl")
    assert [row["canvas"] for row in log] == [24, 24, 24]  # the truncated answer fills the maximum canvas
    assert [row["truncated"] for row in log] == [1, 1, 1] and s["truncated"] == 1
    cfg = json.loads((tmp_path / "out" / "train_config.json").read_text())
    assert cfg["data"]["examples"] == 5 and cfg["data"]["truncated"] == 1 and cfg["data"]["bad_rows_skipped"] == 0
    from mdlm_bench.models import load_model

    m = load_model(tmp_path / "out")
    assert m.meta.pad_to == "none"  # bucketed answers had no fixed canvas for likelihood scoring to replay
    assert m.tokenizer.convert_ids_to_tokens(m.slack_id) == "<slack>" and m.meta.flavour == "llada"


def test_dream_style_template_ends_answers_with_im_end_without_the_newline():
    """Dream's (Qwen2's) template closes a turn with <|im_end|> and a newline: the answer keeps <|im_end|> only."""
    from types import SimpleNamespace

    from llada_tiny import llada_tokenizer
    from mdlm_bench.train.format import answer_ids

    tok = llada_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    model = SimpleNamespace(tokenizer=tok, model=None, eos_ids=[])
    fmt = chat_format(model)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert fmt.eot_id == im_end and fmt.turn_suffix == "<|im_end|>\n"
    assert fmt.eos_id == tok.convert_tokens_to_ids("<|endoftext|>")
    history = [{"role": "user", "content": "hi"}]
    prompt = tok.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    got = answer_ids(tok, history, "yo", fmt, prompt)
    assert got == tok("yo", add_special_tokens=False)["input_ids"] + [im_end]


@pytest.mark.parametrize("name", ["ce", "slack-ctc"])
def test_shipped_8b_recipes_run_on_a_llada_layout_checkpoint(llada, data, tmp_path, name, capsys):
    """The 8B recipes as shipped (accumulation 32 on one process, checkpointing, bucketing) take a step here."""
    from pathlib import Path

    from mdlm_bench.cli import main as cli

    path, _ = llada
    recipe = Path(__file__).resolve().parents[1] / "training" / f"{name}.yaml"
    rc = cli(["train", "--recipe", str(recipe), "--model", str(path), "--data", str(data), "--output",
              str(tmp_path / "out"), "--max-steps", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    log = read_jsonl(tmp_path / "out" / "train_log.jsonl")
    assert len(log) == 1 and log[0]["canvas"] % 64 == 0 and log[0]["truncated"] == 0
    cfg = json.loads((tmp_path / "out" / "train_config.json").read_text())
    assert cfg["gradient_accumulation"] == 32 and cfg["data"]["examples"] == 5
