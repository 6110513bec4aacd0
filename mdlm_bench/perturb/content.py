"""The per-row operation plan, and what counts as content when a perturbation decides, at commit time, whether a move displaces content.

The rule (documented in perturbations/README.md): the token committed at generated position i is content
when it is neither <slack> nor an end token (EOS / end-of-turn, from the tokenizer), and no end token is
already committed at any position left of i (everything past the first EOS is cut from the text, so a
move there changes nothing a reader or a metric sees). A move is a content move when the operator
displaced a token that was content by this rule at the moment it moved.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch

SELECT = ("all", "content")


def is_content_commit(gen_row: torch.Tensor, i: int, token: int, eos_ids: Sequence[int],
                      slack_id: Optional[int]) -> bool:
    """gen_row [G] the row's canvas before the commit lands; token: the id about to sit at (or leave) i."""
    token = int(token)
    if (slack_id is not None and token == slack_id) or token in eos_ids:
        return False
    if i <= 0 or not len(eos_ids):
        return True
    left = gen_row[:i]
    eos = torch.as_tensor(list(eos_ids), dtype=left.dtype, device=left.device)
    return not bool(torch.isin(left, eos).any())


def content_record(content_moves: int, gen_length: int) -> dict:
    """The per-row fields written next to requested_fraction / effective_fraction."""
    return {"content_moves": int(content_moves), "content_fraction": content_moves / gen_length}


@dataclass
class RowPlan:
    rng: random.Random
    budget: int
    selected: List[int]  # commit ordinals chosen, ascending
    ordinal: int = 0
    pending: int = 0
    done: int = 0
    spent: int = 0  # operations used up on a slack (on_slack: spend)
    content: int = 0  # operations that displaced a content token (perturb.content)
    log: List[dict] = field(default_factory=list)


def stochastic_round(x: float, rng: random.Random) -> int:
    base = int(x)
    return base + (1 if rng.random() < x - base else 0)


def content_vocab(model) -> List[int]:
    """Ids a `replace` control may write: the vocabulary minus special tokens."""
    special = set(model.tokenizer.all_special_ids) | set(model.eos_ids) | {model.mask_id, model.slack_id}
    return [i for i in range(len(model.tokenizer)) if i not in special]
