"""The model's own chat format for training examples: what closes an answer, and one example per assistant turn.

An answer is laid out as the chat template writes an assistant turn: its content (as the template renders it,
e.g. trimmed), then the template's end-of-turn token, then EOS padding up to the canvas. LLaDA-8B-Instruct:
`content <|eot_id|> <|endoftext|> ... <|endoftext|>` (its SFT guidelines pad every answer with EOS; the EOS is
the id its config names, the end-of-turn token is the one its template closes a turn with). Dream-7B's template
closes a turn with `<|im_end|>` then a newline; the newline is left out because decoding stops at `<|im_end|>`,
and Dream pads with its config's EOS (`<|endoftext|>`). A template that closes a turn with plain text only (the
character tokenizer of the tiny presets closes it with a newline) adds nothing: the EOS padding closes the answer,
as the bundled models were trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

# Content of a probe assistant turn, to read where the template puts the content and what follows it.
_PROBE = "mdlmbenchprobeanswer"


@dataclass(frozen=True)
class ChatFormat:
    """eot_id: the template's end-of-turn token (None when it closes a turn with plain text);
    eos_id: the padding EOS; turn_suffix: the text the template writes after an assistant turn's content."""

    eot_id: Optional[int]
    eos_id: int
    turn_suffix: str


def _special_ids(tok) -> set:
    ids = set(getattr(tok, "all_special_ids", []) or [])
    for i, added in (getattr(tok, "added_tokens_decoder", None) or {}).items():
        if getattr(added, "special", False):
            ids.add(int(i))
    return ids


def _render(tok, messages, generation_prompt: bool) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def padding_eos(model) -> int:
    """The EOS that pads answers: the model config's eos_token_id (the first, if a list), else the tokenizer's."""
    cfg = getattr(getattr(model, "model", None), "config", None)
    value = getattr(cfg, "eos_token_id", None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        value = getattr(model.tokenizer, "eos_token_id", None)
    if value is None and getattr(model, "eos_ids", None):
        value = model.eos_ids[0]
    if value is None:
        from mdlm_bench.errors import UserError

        raise UserError("the model declares no EOS token (config eos_token_id or tokenizer eos_token); set one")
    return int(value)


def chat_format(model) -> ChatFormat:
    """Read the answer layout from the model's tokenizer and chat template."""
    tok = model.tokenizer
    eos = padding_eos(model)
    if not getattr(tok, "chat_template", None):
        return ChatFormat(None, eos, "")
    text = _render(tok, [{"role": "user", "content": "q"}, {"role": "assistant", "content": _PROBE}], False)
    suffix = text[text.rindex(_PROBE) + len(_PROBE):] if _PROBE in text else ""
    special = _special_ids(tok)
    ids = tok(suffix, add_special_tokens=False)["input_ids"] if suffix else []
    eot = next((int(i) for i in ids if int(i) in special), None)
    return ChatFormat(eot, eos, suffix)


def answer_text(tok, history: Sequence[Dict[str, str]], content: str, fmt: ChatFormat, prompt: str) -> str:
    """The assistant turn's content as the template renders it after `prompt` (the history with the turn opened)."""
    if fmt.eot_id is None:  # plain-text turn ends: the content as given (how the bundled models were trained)
        return content
    full = _render(tok, list(history) + [{"role": "assistant", "content": content}], False)
    if full.startswith(prompt) and full.endswith(fmt.turn_suffix):
        return full[len(prompt):len(full) - len(fmt.turn_suffix)]
    return content  # a template whose turn cannot be read off the rendering: the content as given


def answer_ids(tok, history, content: str, fmt: ChatFormat, prompt: str) -> List[int]:
    """Token ids of one answer: its rendered content, then the end-of-turn token (if the template has one)."""
    ids = list(tok(answer_text(tok, history, content, fmt, prompt), add_special_tokens=False)["input_ids"])
    return ids + ([fmt.eot_id] if fmt.eot_id is not None else [])


def assistant_turns(messages: Sequence[Dict[str, str]]) -> List[int]:
    """Indices of the assistant turns that have a history before them (each is one training example)."""
    return [i for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0]
