"""Prompt encoding and batched decoding over many documents."""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Union

from mdlm_bench.decode.sampler import DecodeConfig, GenResult, Hook, generate

Prompt = Union[str, List[dict]]


def encode_prompt(model, prompt: Prompt, chat: bool = True) -> List[int]:
    """Text (or chat messages) -> token ids, with the model's chat template when `chat`."""
    if isinstance(prompt, list):
        text = model.chat_prompt(prompt) if chat else "\n".join(m["content"] for m in prompt)
    else:
        text = model.chat_prompt([{"role": "user", "content": prompt}]) if chat else prompt
    return model.tokenizer(text, add_special_tokens=not chat)["input_ids"]


def generate_many(model, prompt_ids: Sequence[Sequence[int]], config: DecodeConfig, seeds: Sequence[int],
                  batch_size: int = 16, hooks_for: Optional[Callable[[List[int]], Sequence[Hook]]] = None,
                  on_batch: Optional[Callable[[List[int], List[GenResult]], None]] = None) -> List[GenResult]:
    """Decode many prompts in batches of similar length; results come back in input order.

    hooks_for(indices) builds the hooks of one batch (e.g. perturbations that know their rows);
    on_batch(indices, results) is called as each batch finishes (progress, streaming writes).
    Each row's output is independent of its batch-mates (per-row generators), so grouping by
    length changes speed only.
    """
    order = sorted(range(len(prompt_ids)), key=lambda i: (len(prompt_ids[i]), i))
    out: List[Optional[GenResult]] = [None] * len(prompt_ids)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        hooks = hooks_for(idx) if hooks_for else ()
        res = generate(model, [prompt_ids[i] for i in idx], config, [seeds[i] for i in idx], hooks)
        for i, r in zip(idx, res):
            out[i] = r
        if on_batch:
            on_batch(idx, res)
    return out  # type: ignore[return-value]
