"""The rows of a run: the row store (generations.jsonl and per-rank shards), the row decoder, and the
runners that turn prompt sets (single-turn, multi-turn, lm-eval synth tasks) into rows.

Rows are keyed by (task, uid, seed) and stamped with the config digest; under `accelerate launch`
ranks split the rows to decode and write their own shard files, which `RowStore.finalize` merges.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from mdlm_bench.decode.config import DecodeConfig
from mdlm_bench.evaluate.config import Key, RunConfig
from mdlm_bench.io import JsonlAppender, atomic_write_text, read_jsonl, repair_jsonl
from mdlm_bench.rundir import GENERATIONS

# Row field: seconds this row took to decode (its batch's wall time over the batch's rows). It varies from run
# to run, so comparisons of two runs' rows leave it out (`without_timing`); config digests never include it.
WALL = "wall_s"


def without_timing(rows: Sequence[dict]) -> List[dict]:
    return [{k: v for k, v in r.items() if k != WALL} for r in rows]


def row_seed(seed: int, task: str, uid: str) -> int:
    """The sampler seed of one row: differs across rows, fixed for a (seed, task, uid)."""
    return int(hashlib.sha256(f"{seed}|{task}|{uid}".encode()).hexdigest()[:8], 16)


class RowStore:
    """generations.jsonl (plus per-rank shard files while several processes run)."""

    def __init__(self, run_dir: Path, digest: str, dist):
        self.run_dir, self.digest, self.dist = run_dir, digest, dist
        self.path = run_dir / GENERATIONS
        self.shards = run_dir / ".shards"
        self.rows: Dict[Key, dict] = {}
        if dist.main and self.path.exists():
            repair_jsonl(self.path)
        dist.barrier()
        self._absorb(read_jsonl(self.path, warn=False))
        self.refresh()
        self.existing = set(self.rows)  # rows a rerun finds done (same config digest): reused, not decoded
        if dist.world > 1:
            self.shards.mkdir(exist_ok=True)
            self._out = JsonlAppender(self.shards / f"rank-{dist.rank}.jsonl")
        else:
            self._out = JsonlAppender(self.path)

    def _absorb(self, rows: Sequence[dict]) -> None:
        for r in rows:
            if r.get("digest") == self.digest:
                self.rows[(r["task"], str(r["uid"]), int(r["seed"]))] = r

    def refresh(self) -> None:
        """Pick up rows other ranks wrote (call after a barrier)."""
        if self.shards.is_dir():
            for f in sorted(self.shards.glob("rank-*.jsonl")):
                self._absorb(read_jsonl(f))

    def get(self, task: str, uid, seed: int) -> Optional[dict]:
        return self.rows.get((task, str(uid), int(seed)))

    def put(self, rows: Sequence[dict]) -> None:
        self._out.write_many(rows)
        self._absorb(rows)

    def close(self) -> None:
        self._out.close()

    def finalize(self, updates: Dict[Key, dict]) -> List[dict]:
        """Apply per-row updates (metrics), then rank 0 rewrites generations.jsonl in canonical order
        (task, index, uid, seed) without the scratch rows of multi-turn tasks, and drops the shards."""
        self.close()
        for key, upd in updates.items():
            if key in self.rows:
                self.rows[key] = {**self.rows[key], **upd}
        rows = sorted((r for r in self.rows.values() if "#turn" not in r["task"]),
                      key=lambda r: (r["task"], r.get("index", 0), str(r["uid"]), r["seed"]))
        if self.dist.main:
            atomic_write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            if self.shards.is_dir():
                shutil.rmtree(self.shards)
        self.dist.barrier()
        return rows


class RowDecoder:
    """Decodes missing rows (sharded across ranks), logs perturbations, writes rows as they finish.

    Also the `row_hook` of the lm-eval model: `lookup` serves finished rows, `decode` makes new ones.
    """

    def __init__(self, model, cfg: RunConfig, store: RowStore, dist, progress=None):
        from mdlm_bench.perturb.operators import content_vocab

        self.model, self.cfg, self.store, self.dist = model, cfg, store, dist
        self.spec = cfg.spec()
        self.vocab = content_vocab(model) if self.spec else []
        self.progress = progress
        self.seed = cfg.seeds[0]
        self.digest = store.digest

    # --- the lm-eval row hook ----------------------------------------------------------------
    def lookup(self, task: str, doc_id: int, doc: dict, context: str) -> Optional[str]:
        row = self.store.get(task, doc_uid(doc, doc_id), self.seed)
        return None if row is None else row["output"]  # as decoded; the lm-eval model cuts at `until`

    def decode(self, prompt_ids, keys, config: DecodeConfig):
        from mdlm_bench.decode.sampler import GenResult

        items = [dict(task=t, uid=doc_uid(doc, doc_id), index=doc_id, prompt=ctx, ids=ids)
                 for (t, doc_id, doc, ctx), ids in zip(keys, prompt_ids)]
        self.decode_items(items, config, split=False)  # lm-eval already gave this rank its own documents
        out = []
        for it in items:
            row = self.store.get(it["task"], it["uid"], self.seed)
            out.append(GenResult(token_ids=row.get("token_ids", []), text=row["output"], nfe=row["nfe"],
                                 raw_ids=[]))
        return out

    # --- shared ---------------------------------------------------------------------------------
    def decode_items(self, items: List[dict], config: DecodeConfig, split: bool = True) -> None:
        """items: dicts with task, uid, index, prompt, ids. Decodes this rank's share, then syncs; split=False:
        the items are this rank's already (lm-eval's split), decoded here without waiting for the others."""
        from mdlm_bench.perturb.operators import PerturbationHook
        from mdlm_bench.decode.prompts import generate_many

        todo = [it for it in items if self.store.get(it["task"], it["uid"], self.seed) is None]
        mine = todo[self.dist.rank::self.dist.world] if split else todo
        room = (self.model.max_positions or 1 << 30) - config.gen_length
        for it in mine:
            if len(it["ids"]) > room:  # keep the end of an over-long prompt (where the question is)
                it["prompt_truncated"] = len(it["ids"]) - room
                it["ids"] = it["ids"][-room:]
        label = ", ".join(sorted({it["task"] for it in mine}))
        bar = self.progress.add_task(f"{label[:40]} · seed {self.seed}", total=len(mine)) \
            if self.progress and mine else None
        current: Dict[str, Any] = {}

        def hooks_for(idx):
            current["t0"] = time.perf_counter()  # a batch's wall time is shared out over its rows
            if not self.spec:
                current["hook"] = None
                return ()
            keys = [f"{mine[i]['task']}|{mine[i]['uid']}|{self.seed}" for i in idx]
            current["hook"] = PerturbationHook(self.spec, keys, config.gen_length, self.vocab)
            return (current["hook"],)

        def on_batch(idx, results):
            hook = current.get("hook")
            wall = (time.perf_counter() - current["t0"]) / max(1, len(idx))
            rows = [self._row(mine[i], res, config, hook.record(k) if hook else None, wall)
                    for k, (i, res) in enumerate(zip(idx, results))]
            self.store.put(rows)
            if bar is not None:
                self.progress.advance(bar, len(rows))

        if mine:
            seeds = [row_seed(self.seed, it["task"], it["uid"]) for it in mine]
            generate_many(self.model, [it["ids"] for it in mine], config, seeds, self.cfg.batch_size,
                          hooks_for, on_batch)
        if split:
            self.dist.barrier()
            self.store.refresh()

    def _row(self, item: dict, res, config: DecodeConfig, record: Optional[dict], wall_s: float = 0.0) -> dict:
        rec = record or {"events": [], "requested_fraction": 0.0, "effective_fraction": 0.0}
        row = {
            "task": item["task"], "uid": item["uid"], "seed": self.seed, "index": item["index"],
            "digest": self.digest, "model": self.cfg.model, "prompt": item["prompt"], "output": res.text,
            "nfe": res.nfe, "row_seed": row_seed(self.seed, item["task"], item["uid"]),
            "decoding": config.to_dict(), "perturbation": self.spec.to_dict() if self.spec else None,
            **rec, "token_ids": res.token_ids, WALL: round(wall_s, 6),
        }
        for k in ("turns", "reference", "category", "prompt_truncated"):
            if k in item:
                row[k] = item[k]
        return row


def doc_uid(doc: dict, doc_id: int) -> str:
    """A row's uid: the doc's own `uid` field, else its index in the task."""
    return str(doc.get("uid", doc_id)) if isinstance(doc, dict) else str(doc_id)


# --- open-ended prompt sets ------------------------------------------------------------------------
def run_open_ended(decoder: RowDecoder, task: str, prompts: List[dict], config: DecodeConfig) -> None:
    """Decode each prompt's turns in order; turn k sees the model's own earlier answers."""
    from mdlm_bench.decode.prompts import encode_prompt

    model, chat = decoder.model, decoder.cfg.chat
    todo = [p for p in prompts if decoder.store.get(task, p["uid"], decoder.seed) is None]
    single = [p for p in todo if len(p["turns"]) == 1]
    items = [dict(task=task, uid=str(p["uid"]), index=p["_index"], prompt=p["turns"][0],
                  category=p.get("category"), reference=p.get("reference"),
                  ids=encode_prompt(model, given_history(p) + [{"role": "user", "content": p["turns"][0]}], chat))
             for p in single]
    if items:
        decoder.decode_items(items, config)
    multi = [p for p in todo if len(p["turns"]) > 1]
    if multi:
        _run_multi_turn(decoder, task, multi, config)


def given_history(prompt: dict) -> List[dict]:
    """Messages a benchmark gives before the turn to answer (WildBench: user and assistant turns as
    published); the model generates only the reply to the last user turn."""
    return [dict(m) for m in (prompt.get("extra") or {}).get("history") or []]


def _run_multi_turn(decoder: RowDecoder, task: str, prompts: List[dict], config: DecodeConfig) -> None:
    """Turns are decoded as separate rows under a scratch task, then joined into one row per prompt."""
    from mdlm_bench.decode.prompts import encode_prompt

    n_turns = max(len(p["turns"]) for p in prompts)
    answers: Dict[str, List[str]] = {str(p["uid"]): [] for p in prompts}
    for t in range(n_turns):
        items = []
        for p in prompts:
            uid = str(p["uid"])
            if t >= len(p["turns"]):
                continue
            msgs = []
            for k in range(t):
                msgs += [{"role": "user", "content": p["turns"][k]}, {"role": "assistant", "content": answers[uid][k]}]
            msgs.append({"role": "user", "content": p["turns"][t]})
            items.append(dict(task=f"{task}#turn{t + 1}", uid=uid, index=p["_index"], prompt=p["turns"][t],
                              ids=encode_prompt(decoder.model, msgs, decoder.cfg.chat)))
        decoder.decode_items(items, config)
        for it in items:
            answers[it["uid"]].append(decoder.store.get(it["task"], it["uid"], decoder.seed)["output"])
    if decoder.dist.main:
        rows = []
        for p in prompts:
            uid = str(p["uid"])
            parts = [decoder.store.get(f"{task}#turn{t + 1}", uid, decoder.seed) for t in range(len(p["turns"]))]
            row = dict(parts[0], task=task, prompt=p["turns"], output=answers[uid],
                       nfe=sum(r["nfe"] for r in parts), **{WALL: sum(r.get(WALL, 0.0) for r in parts)},
                       category=p.get("category"), reference=p.get("reference"),
                       events=[dict(e, turn=i + 1) for i, r in enumerate(parts) for e in r["events"]],
                       effective_fraction=sum(r["effective_fraction"] for r in parts) / len(parts),
                       token_ids=[r.get("token_ids", []) for r in parts])
            rows.append(row)
        decoder.store.put(rows)
    decoder.dist.barrier()
    decoder.store.refresh()


# --- lm-eval synth tasks -----------------------------------------------------------------------
def predecode(decoder, names: List[str], base, limit: Optional[int]) -> None:
    """Decode the rows of the synth tasks among `names` (groups expanded) into the decoder's store, with the
    prompt ids, settings and keys the lm-eval adapter would use (see `evaluate.tasks.synth_tasks`)."""
    from mdlm_bench.decode.config import config_for_max_tokens
    from mdlm_bench.decode.prompts import encode_prompt
    from mdlm_bench.evaluate.tasks import synth_tasks, tasks_dir

    cat = synth_tasks()
    tasks: List[str] = []
    for n in names:
        for t in cat.get(n, {}).get("tasks", [n] if n in cat else []):
            if t not in tasks:
                tasks.append(t)
    model, chat = decoder.model, decoder.cfg.chat
    room = model.max_positions or 1 << 30
    for t in tasks:
        info = cat[t]
        cfg = config_for_max_tokens(base, info["max_gen_toks"])
        rows = read_jsonl(tasks_dir() / "data" / f"synth_{info['family']}.jsonl")
        rows = rows[:limit] if limit else rows
        items = [dict(task=t, uid=str(r.get("uid", i)), index=i, prompt=r["prompt"],
                      ids=encode_prompt(model, r["prompt"], chat)) for i, r in enumerate(rows)]
        if all(len(it["ids"]) + cfg.gen_length <= room for it in items):  # else lm-eval cuts prompts: its job
            decoder.decode_items(items, cfg)
