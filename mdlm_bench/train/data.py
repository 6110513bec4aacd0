"""Training data: loading (JSONL, datasets), chat-format tokenisation, canvas building, slack insertion, masking.

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
    """One training pair: the prompt as chat messages (the history before an assistant turn), the turn's text."""

    uid: str
    messages: List[Dict[str, str]]
    response: str


@dataclass
class Encoded:
    uid: str
    prompt_ids: List[int]
    response_ids: List[int]  # the answer as trained: rendered content + end-of-turn token (train/format.py)
    truncated: bool = False  # cut to the maximum canvas (no end-of-turn, no EOS)


def _shorten(numbers: Sequence, n: int = 10) -> str:
    head = ", ".join(str(x) for x in numbers[:n])
    return head + (f" and {len(numbers) - n} more" if len(numbers) > n else "")


def row_to_examples(row: dict, index: int, system_prompt: str = "") -> Optional[List[Example]]:
    """A data row -> its examples, or None when it lacks the fields. Accepts {"prompt", "response"} or
    {"messages": [...]} with at least one assistant turn after some history: one example per assistant turn,
    the messages before it as the prompt (as LLaDA's SFT does). uid: the row's uid/id (or index), with
    "/k" for the k-th assistant turn when a row has several."""
    if not isinstance(row, dict):
        return None
    uid = str(row.get("uid", row.get("id", index)))
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    if isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str):
        return [Example(uid, system + [{"role": "user", "content": row["prompt"]}], row["response"])]
    msgs = row.get("messages")
    if not (isinstance(msgs, list) and msgs and all(
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in msgs)):
        return None
    msgs = [{"role": m["role"], "content": m["content"]} for m in msgs]
    if system and msgs[0]["role"] != "system":
        msgs = system + msgs
    from mdlm_bench.train.format import assistant_turns

    turns = assistant_turns(msgs)
    if not turns:
        return None
    return [Example(uid if len(turns) == 1 else f"{uid}/{k}", msgs[:i], msgs[i]["content"])
            for k, i in enumerate(turns)]


def row_to_example(row: dict, index: int, system_prompt: str = "") -> Optional[Example]:
    """The last assistant turn of a row as one Example (the synthetic rows have exactly one)."""
    ex = row_to_examples(row, index, system_prompt)
    return ex[-1] if ex else None


BAD_ROW = ("lack 'prompt'+'response' strings or 'messages' (role system/user/assistant, string content) with an "
           "assistant turn after the first message")


def load_examples(recipe: Recipe) -> List[Example]:
    return load_examples_counted(recipe)[0]


def load_examples_counted(recipe: Recipe) -> Tuple[List[Example], Dict[str, int]]:
    """Examples from recipe.data, and {"rows", "bad_rows_skipped", "examples"}.

    data: 'synthetic'; a local .jsonl file (read here, so bad lines are named by line number); any other local
    file (.json, .parquet, .arrow, .csv) or directory, or a hub dataset id, through `datasets.load_dataset`
    with `data_subset` (its config name) and `data_split`. A row that gives no example is an error naming it,
    unless `skip_bad_rows: true`, which skips and counts it.
    """
    if recipe.data == "synthetic":
        from mdlm_bench.train.synthetic import generate

        rows = generate(recipe.synthetic_per_family, seed=recipe.synthetic_seed)
        ex = [row_to_example(r, i, recipe.system_prompt) for i, r in enumerate(rows)]
        return ex, {"rows": len(rows), "bad_rows_skipped": 0, "examples": len(ex)}
    path = Path(recipe.data).expanduser()
    if path.is_file() and path.suffix == ".jsonl":
        rows, bad = read_jsonl_checked(path)
        if bad and not recipe.skip_bad_rows:
            raise UserError(f"data '{path}': unreadable JSON on line(s) {_shorten([b[0] for b in bad])}; "
                            "fix or remove those lines, or set skip_bad_rows: true in the recipe")
        return _validated(rows, _line_numbers(path, bad), "line", str(path), recipe, len(bad))
    if path.suffix in FILE_BUILDERS and not path.exists() or (
            recipe.data.startswith((".", "/", "~")) and not path.exists()):
        raise UserError(f"data file '{recipe.data}' does not exist; check the path (or use data: synthetic)")
    ds = _load_dataset(recipe, path)
    return _validated(list(ds), list(range(len(ds))), "row", recipe.data, recipe, 0)


FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".arrow": "arrow", ".csv": "csv"}


def _line_numbers(path: Path, bad) -> List[int]:
    """1-based line numbers of the readable non-blank lines, so row i can be reported by its line."""
    unreadable = {b[0] for b in bad}
    with open(path, "rb") as f:
        return [i for i, line in enumerate(f, start=1) if line.strip() and i not in unreadable]


def _validated(rows: List[dict], names: List[int], unit: str, where: str, recipe: Recipe,
               unreadable: int) -> Tuple[List[Example], Dict[str, int]]:
    """rows -> examples; names[i]: how row i is named in messages (`unit` = line for JSONL, row for datasets)."""
    out: List[Example] = []
    bad: List[int] = []
    for i, row in enumerate(rows):
        ex = row_to_examples(row, i, recipe.system_prompt)
        if ex is None:
            bad.append(names[i] if i < len(names) else i)
        else:
            out.extend(ex)
    if bad and not recipe.skip_bad_rows:
        raise UserError(f"data '{where}': {unit}(s) {_shorten(bad)} {BAD_ROW}; fix or remove them, or set skip_bad_rows: "
                        "true in the recipe")
    if not out:
        raise UserError(f"data '{where}' has no usable rows; point data at rows with prompt/response or messages")
    counts = {"rows": len(rows) + unreadable, "bad_rows_skipped": len(bad) + unreadable, "examples": len(out)}
    if counts["bad_rows_skipped"]:
        import sys

        print(f"warning: data '{where}': skipped {counts['bad_rows_skipped']} bad row(s) ({unit}(s) {_shorten(bad, 3)}); "
              "counted in train_config.json", file=sys.stderr)
    return out, counts


def _load_dataset(recipe: Recipe, path: Path):
    """`datasets.load_dataset` for a local file (by suffix), a local directory or a hub id."""
    import datasets

    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix)
        if builder is None:
            raise UserError(f"data file '{path}' has suffix '{path.suffix}'; use .jsonl, .json, .parquet, .arrow "
                            "or .csv, or a dataset directory")
        args, kw = (builder,), {"data_files": str(path), "split": "train"}
    else:
        args, kw = (str(path) if path.is_dir() else recipe.data,), {"name": recipe.data_subset or None,
                                                                    "split": recipe.data_split}
    try:
        return datasets.load_dataset(*args, **kw)
    except Exception as e:  # offline, unknown name, wrong subset or split: all user-fixable
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserError(f"cannot load dataset '{recipe.data}' (subset {recipe.data_subset or '-'}, split "
                        f"{recipe.data_split}): {type(e).__name__}: {first}; check data, data_subset and "
                        "data_split (or pass a local file)") from None


def as_dataset(examples: List[Example]):
    """The examples as a `datasets.Dataset` (uid, messages, response)."""
    import datasets

    return datasets.Dataset.from_list([{"uid": e.uid, "messages": e.messages, "response": e.response}
                                       for e in examples])


def encode_examples(examples: Sequence[Example], model, recipe: Recipe) -> Tuple[List[Encoded], Dict[str, int]]:
    """Tokenise in the model's chat format (train/format.py); apply the overflow policy.

    An answer fits when its tokens (end-of-turn included) plus one EOS fit `canvas` (the maximum canvas).
    overflow: error names the rows; skip drops them; truncate keeps a too-long answer's first `canvas` tokens
    with no end-of-turn and no EOS (the model is not taught to stop where the text was cut) and a too-long
    prompt's last `max_prompt_tokens` tokens. Returns (encoded, {"truncated", "skipped"}).
    """
    from mdlm_bench.train.format import answer_ids, chat_format

    tok = model.tokenizer
    fmt = chat_format(model)
    out: List[Encoded] = []
    stats = {"truncated": 0, "skipped": 0}
    too_long: List[str] = []
    for ex in examples:
        prompt = model.chat_prompt(ex.messages)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        r = answer_ids(tok, ex.messages, ex.response, fmt, prompt)
        cut = False
        if len(p) > recipe.max_prompt_tokens or len(r) + 1 > recipe.canvas:
            if recipe.overflow == "skip":
                stats["skipped"] += 1
                continue
            if recipe.overflow == "error":
                too_long.append(ex.uid)
                continue
            stats["truncated"] += 1
            p = p[-recipe.max_prompt_tokens:]  # keep the end: the question and the opened assistant turn
            if len(r) + 1 > recipe.canvas:
                r, cut = r[:recipe.canvas], True
        out.append(Encoded(ex.uid, p, r, cut))
    if too_long:
        raise UserError(
            f"{len(too_long)} row(s) do not fit (prompt > max_prompt_tokens={recipe.max_prompt_tokens} or answer "
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
    random gaps (fewer if there is no room), then one EOS, then EOS or <slack> padding. A response of `canvas`
    tokens (truncated by overflow: truncate) fills the canvas with no EOS."""
    resp = list(response_ids)[:canvas]
    if slack_id is not None and (slack_rate > 0 or slack_count > 0):
        want = n_slack_inside(len(resp), canvas, placement, slack_rate, slack_count, rng)
        n_slack = min(want, canvas - 1 - len(resp))
        for _ in range(max(n_slack, 0)):
            resp.insert(rng.randint(0, len(resp)), slack_id)
    if len(resp) >= canvas:
        return resp
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
    from mdlm_bench.train.buckets import step_rows

    return step_rows([0] * n_rows, step, batch_size, seed)


def step_canvases(encoded: Sequence[Encoded], step: int, recipe: Recipe, eos_id: int, slack_id: Optional[int]):
    """The global batch of step `step`: (rows, clean canvases [G, N] long, mask [G, N] bool, p_mask [G]).

    N is recipe.canvas, or under length bucketing (canvas_multiple > 0) the step's own canvas
    (mdlm_bench/train/buckets.py)."""
    from mdlm_bench.train.buckets import step_canvas, step_rows

    bucketed = recipe.canvas_multiple > 0
    lengths = [len(r.response_ids) for r in encoded]
    idx = step_rows(lengths, step, recipe.batch_size, recipe.seed,
                    recipe.batch_size * recipe.bucket_batches if bucketed else 0)
    rows = [encoded[i] for i in idx]
    n = step_canvas([lengths[i] for i in idx], recipe.canvas, recipe.canvas_multiple)
    canv = [build_canvas(r.response_ids, n, eos_id, slack_id, recipe.slack_insert_rate,
                         recipe.pad_with, random.Random(f"{recipe.seed}:{step}:{j}"), recipe.slack_placement,
                         recipe.slack_count)
            for j, r in enumerate(rows)]
    g = torch.Generator().manual_seed(recipe.seed * 1_000_003 + 7919 * step + 17)
    mask, p_mask = mask_batch(torch.ones(len(rows), n, dtype=torch.bool), g, eps=recipe.mask_eps)
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
