"""Length bucketing: which rows each global step trains on, and the canvas that step pads its answers to.

Without bucketing (`canvas_multiple: 0`) rows come from a seeded permutation per epoch and every answer is
padded to `canvas`. With bucketing (`canvas_multiple: k`), each epoch's permutation is cut into groups of
`bucket_batches` global batches and each group is sorted by answer length (longest first, ties in permutation
order), so a global batch holds answers of similar length; the step's canvas is its longest answer plus one EOS,
rounded up to a multiple of k and capped at `canvas`. Everything is a function of (seed, epoch, step), so the
batches do not depend on the number of processes and resuming replays them.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch


def epoch_order(lengths: Sequence[int], epoch: int, seed: int, group: int) -> List[int]:
    """Row order of one epoch: a seeded permutation, sorted by length (descending) inside groups of `group` rows
    (group <= 0: the permutation as is)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(len(lengths), generator=g).tolist()
    if group <= 0:
        return perm
    out: List[int] = []
    for a in range(0, len(perm), group):
        chunk = perm[a:a + group]
        out.extend(sorted(chunk, key=lambda i: -lengths[i]))  # sorted() is stable: ties keep permutation order
    return out


def step_rows(lengths: Sequence[int], step: int, batch_size: int, seed: int, group: int = 0) -> List[int]:
    """Dataset rows of global step `step`, reading the epochs' orders as one endless stream."""
    n = len(lengths)
    cache: Dict[int, List[int]] = {}
    out: List[int] = []
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch, i = divmod(pos, n)
        if epoch not in cache:
            cache[epoch] = epoch_order(lengths, epoch, seed, group)
        out.append(cache[epoch][i])
    return out


def step_canvas(answer_lengths: Sequence[int], maximum: int, multiple: int) -> int:
    """The canvas of a batch: its longest answer + 1 EOS rounded up to `multiple`, at most `maximum`
    (multiple <= 0: always `maximum`)."""
    if multiple <= 0:
        return maximum
    need = max(answer_lengths) + 1
    return min(maximum, -(-need // multiple) * multiple)
