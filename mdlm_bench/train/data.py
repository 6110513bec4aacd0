"""Training data: JSONL / chat loading, tokenisation, canvas building, slack insertion and masking.

Every random choice of a step (which rows, where slack goes, what is masked) is a function of
(recipe seed, step, position in the global batch) only, so the run does not depend on how many processes
share it, and resuming at step k replays exactly what a straight run would have done.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from mdlm_bench.errors import UserError
from mdlm_bench.io import read_jsonl_checked
from mdlm_bench.train.recipe import Recipe

ROLES = ("system", "user", "assistant")


def mask_batch(
    response_mask: torch.Tensor,
    generator: torch.Generator,
    eps: float = 1e-3,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """LLaDA's forward process: t ~ U(0,1) per sample, p_mask = (1-eps) t + eps, each response token masked
    independently with probability p_mask; prompt tokens are never masked.

    response_mask: [B, L] bool, True on the response canvas (response + padding).
    Returns (mask [B, L] bool, p_mask [B] float32).
    """
    b, length = response_mask.shape
    t = torch.rand(b, generator=generator)
    p_mask = (1.0 - eps) * t + eps
    draw = torch.rand(b, length, generator=generator)
    mask = (draw < p_mask[:, None]) & response_mask.cpu()
    return mask.to(response_mask.device), p_mask.to(response_mask.device)



@dataclass
class Example:
    """One training pair: the prompt as chat messages, the response as text."""

    uid: str
    messages: List[Dict[str, str]]
    response: str


@dataclass
class Encoded:
    uid: str
    prompt_ids: List[int]
    response_ids: List[int]


def _shorten(numbers: Sequence[int], n: int = 10) -> str:
    head = ", ".join(str(x) for x in numbers[:n])
    return head + (f" and {len(numbers) - n} more" if len(numbers) > n else "")


def row_to_example(row: dict, index: int, system_prompt: str = "") -> Optional[Example]:
    """A data row -> Example, or None when it lacks the fields. Accepts {"prompt", "response"} or
    {"messages": [..., {"role": "assistant", "content": ...}]}."""
    uid = str(row.get("uid", row.get("id", index)))
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    if isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str):
        return Example(uid, system + [{"role": "user", "content": row["prompt"]}], row["response"])
    msgs = row.get("messages")
    if isinstance(msgs, list) and len(msgs) >= 2 and all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in msgs
    ) and msgs[-1]["role"] == "assistant":
        prompt = [{"role": m["role"], "content": m["content"]} for m in msgs[:-1]]
        if system and prompt[0]["role"] != "system":
            prompt = system + prompt
        return Example(uid, prompt, msgs[-1]["content"])
    return None


def load_examples(recipe: Recipe) -> List[Example]:
    """Examples from recipe.data: 'synthetic', a local JSONL file, or a hub dataset name."""
    if recipe.data == "synthetic":
        from mdlm_bench.train.synthetic import generate

        rows = generate(recipe.synthetic_per_family, seed=recipe.synthetic_seed)
        return [row_to_example(r, i, recipe.system_prompt) for i, r in enumerate(rows)]
    path = Path(recipe.data).expanduser()
    if path.is_file():
        rows, bad = read_jsonl_checked(path)
        if bad:
            raise UserError(f"data '{path}': unreadable JSON on line(s) {_shorten([b[0] for b in bad])}; "
                            "fix or remove those lines")
        return _validated(rows, _line_numbers(path), str(path), recipe.system_prompt)
    if path.suffix in (".jsonl", ".json") or recipe.data.startswith((".", "/", "~")) or path.is_dir():
        raise UserError(f"data file '{recipe.data}' does not exist; check the path (or use data: synthetic)")
    return _from_hub(recipe)


def _line_numbers(path: Path) -> List[int]:
    """1-based line numbers of the non-blank lines, so row i can be reported by its line."""
    with open(path, "rb") as f:
        return [i for i, line in enumerate(f, start=1) if line.strip()]


def _validated(rows: List[dict], lines: List[int], where: str, system_prompt: str) -> List[Example]:
    out: List[Example] = []
    missing: List[int] = []
    for i, row in enumerate(rows):
        ex = row_to_example(row, i, system_prompt)
        if ex is None:
            missing.append(lines[i] if i < len(lines) else i + 1)
        else:
            out.append(ex)
    if missing:
        raise UserError(f"data '{where}': line(s) {_shorten(missing)} lack 'prompt'+'response' strings or "
                        "'messages' ending with an assistant turn; fix or remove those lines")
    if not out:
        raise UserError(f"data '{where}' has no rows; point data at a JSONL file with prompt/response rows")
    return out


def _from_hub(recipe: Recipe) -> List[Example]:
    import datasets

    try:
        ds = datasets.load_dataset(recipe.data, split=recipe.data_split)
    except Exception as e:  # offline, unknown name, wrong split: all user-fixable
        raise UserError(f"cannot load dataset '{recipe.data}' split '{recipe.data_split}' "
                        f"({type(e).__name__}); pass a local JSONL file or check the name/network") from None
    return _validated(list(ds), list(range(1, len(ds) + 1)), recipe.data, recipe.system_prompt)


def as_dataset(examples: List[Example]):
    """The examples as a `datasets.Dataset` (uid, messages, response)."""
    import datasets

    return datasets.Dataset.from_list([{"uid": e.uid, "messages": e.messages, "response": e.response}
                                       for e in examples])


def encode_examples(examples: Sequence[Example], model, recipe: Recipe) -> Tuple[List[Encoded], Dict[str, int]]:
    """Tokenise with the chat template; apply the overflow policy. Returns (encoded, {"truncated", "skipped"})."""
    tok = model.tokenizer
    room = recipe.canvas - 1  # at least one EOS closes the response
    out: List[Encoded] = []
    stats = {"truncated": 0, "skipped": 0}
    too_long: List[str] = []
    for ex in examples:
        p = tok(model.chat_prompt(ex.messages), add_special_tokens=False)["input_ids"]
        r = tok(ex.response, add_special_tokens=False)["input_ids"]
        if len(p) > recipe.max_prompt_tokens or len(r) > room:
            if recipe.overflow == "skip":
                stats["skipped"] += 1
                continue
            if recipe.overflow == "error":
                too_long.append(ex.uid)
                continue
            stats["truncated"] += 1
            p = p[-recipe.max_prompt_tokens:]  # keep the end: the question and the opened assistant turn
            r = r[:room]
        out.append(Encoded(ex.uid, p, r))
    if too_long:
        raise UserError(
            f"{len(too_long)} row(s) do not fit (prompt > max_prompt_tokens={recipe.max_prompt_tokens} or response "
            f"+ EOS > canvas={recipe.canvas}), e.g. uid {_shorten(too_long, 3)}; raise canvas/max_prompt_tokens or "
            "set overflow: truncate or skip in the recipe")
    if not out:
        raise UserError("every row was skipped by overflow: skip; raise canvas or max_prompt_tokens")
    return out, stats


def n_slack_inside(n_answer: int, canvas: int, placement: str, rate: float, count: int,
                   rng: random.Random) -> int:
    """How many <slack> go inside the clean response (before room limits), by `placement`."""
    if placement == "canvas":
        return int(round(rate * canvas))
    if placement == "answer":
        x = rate * n_answer
        return int(x) + (1 if rng.random() < x - int(x) else 0)
    if placement == "count":
        return count
    raise ValueError(f"unknown slack placement '{placement}'")


def build_canvas(response_ids: Sequence[int], canvas: int, eos_id: int, slack_id: Optional[int],
                 slack_rate: float, pad_with: str, rng: random.Random, placement: str = "canvas",
                 slack_count: int = 0) -> List[int]:
    """Clean response canvas of `canvas` tokens: response with n_slack_inside(...) <slack> tokens inserted at
    random gaps (fewer if there is no room), then one EOS, then EOS or <slack> padding."""
    resp = list(response_ids)
    if slack_id is not None and (slack_rate > 0 or slack_count > 0):
        want = n_slack_inside(len(resp), canvas, placement, slack_rate, slack_count, rng)
        n_slack = min(want, canvas - 1 - len(resp))
        for _ in range(max(n_slack, 0)):
            resp.insert(rng.randint(0, len(resp)), slack_id)
    fill = eos_id if pad_with == "eos" or slack_id is None else slack_id
    return resp + [eos_id] + [fill] * (canvas - len(resp) - 1)


def displace(canvas: List[int], mask: List[bool], slack_id: int, rate: float, rng: random.Random) -> int:
    """Training on sampler states: move visible tokens one slot onto a masked neighbour, as the shift operator
    does at decoding, and rewrite the clean canvas so that the move is explained by slack. In place.

    canvas: clean canvas (token ids, slack included); mask: True where masked. A visible non-slack token at i
    is picked with probability `rate`; for a move to t = i + s (s = +1 or -1, random order, the other tried
    next) t must be masked and the masked run beyond t (away from i) must hold a clean <slack> at some j.
    The canvas then becomes: that slack removed, the tokens between shifted one slot towards j, the token at t,
    and a <slack> at i, which turns masked. Every visible position keeps its token, so each span's CTC target
    is the clean content between its anchors. Returns the number of moves.
    """
    n = len(canvas)
    moves = 0
    used = set()  # slots already moved from or to: each token moves at most once, as at decoding
    for i in rng.sample(range(n), n):
        if i in used or mask[i] or canvas[i] == slack_id or rng.random() >= rate:
            continue
        first = rng.choice((-1, 1))
        for s in (first, -first):
            t = i + s
            if not (0 <= t < n and mask[t]) or t in used:
                continue
            j = t
            while 0 <= j < n and mask[j] and canvas[j] != slack_id and j not in used:
                j += s
            if not (0 <= j < n and mask[j]) or j in used:
                continue  # no untouched masked slack beyond t inside the same masked run
            # Remove canvas[j], shift canvas[t .. j-s] by s, put canvas[i] at t and slack at i.
            k = j
            while k != t:
                canvas[k] = canvas[k - s]
                k -= s
            canvas[t] = canvas[i]
            canvas[i] = slack_id
            mask[t], mask[i] = False, True
            used.update((i, t))
            moves += 1
            break
    return moves


def batch_indices(n_rows: int, step: int, batch_size: int, seed: int) -> List[int]:
    """Dataset rows of global step `step`: a seeded permutation per epoch, read as one endless stream."""
    out: List[int] = []
    start = step * batch_size
    perm_cache: Dict[int, List[int]] = {}
    for pos in range(start, start + batch_size):
        epoch, i = divmod(pos, n_rows)
        if epoch not in perm_cache:
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            perm_cache[epoch] = torch.randperm(n_rows, generator=g).tolist()
        out.append(perm_cache[epoch][i])
    return out


def step_canvases(encoded: Sequence[Encoded], step: int, recipe: Recipe, eos_id: int, slack_id: Optional[int]):
    """The global batch of step `step`: (rows, clean canvases [G, N] long, mask [G, N] bool, p_mask [G])."""
    idx = batch_indices(len(encoded), step, recipe.batch_size, recipe.seed)
    rows = [encoded[i] for i in idx]
    canv = [build_canvas(r.response_ids, recipe.canvas, eos_id, slack_id, recipe.slack_insert_rate,
                         recipe.pad_with, random.Random(f"{recipe.seed}:{step}:{j}"), recipe.slack_placement,
                         recipe.slack_count)
            for j, r in enumerate(rows)]
    g = torch.Generator().manual_seed(recipe.seed * 1_000_003 + 7919 * step + 17)
    mask, p_mask = mask_batch(torch.ones(len(rows), recipe.canvas, dtype=torch.bool), g, eps=recipe.mask_eps)
    if recipe.displace_rate > 0 and slack_id is not None:
        rows_mask = mask.tolist()
        for j in range(len(rows)):
            displace(canv[j], rows_mask[j], slack_id, recipe.displace_rate,
                     random.Random(f"{recipe.seed}:{step}:{j}:displace"))
        mask = torch.tensor(rows_mask, dtype=torch.bool)
    return rows, torch.tensor(canv, dtype=torch.long), mask, p_mask


def collate(rows: Sequence[Encoded], canvases: torch.Tensor, canvas_mask: torch.Tensor, p_mask: torch.Tensor,
            pad_id: int, mask_id: int) -> Dict[str, torch.Tensor]:
    """Left-pad prompts so every canvas ends the row (as at decoding) and build the model inputs.

    rows: b examples; canvases [b, N] long; canvas_mask [b, N] bool; p_mask [b].
    Returns input_ids (masked) / targets [b, L] long, attention_mask / response_mask / mask [b, L] bool,
    p_mask [b], answer_lengths [b] (= N).
    """
    b, n = canvases.shape
    plen = max(len(r.prompt_ids) for r in rows)
    length = plen + n
    targets = torch.full((b, length), pad_id, dtype=torch.long)
    attn = torch.zeros(b, length, dtype=torch.bool)
    for i, r in enumerate(rows):
        k = len(r.prompt_ids)
        targets[i, plen - k:plen] = torch.tensor(r.prompt_ids, dtype=torch.long)
        attn[i, plen - k:] = True
    targets[:, plen:] = canvases
    response = torch.zeros(b, length, dtype=torch.bool)
    response[:, plen:] = True
    mask = torch.zeros(b, length, dtype=torch.bool)
    mask[:, plen:] = canvas_mask
    inputs = torch.where(mask, mask_id, targets)
    return {"input_ids": inputs, "targets": targets, "attention_mask": attn, "response_mask": response,
            "mask": mask, "p_mask": p_mask.float(), "answer_lengths": torch.full((b,), n, dtype=torch.long)}
