"""`mdlm-bench run`: evaluate a checkpoint on tasks, optionally under a perturbation, resumably.

Rows are keyed by (task, uid, seed) and stamped with the config digest; a re-run with the same
arguments skips what is there. Under `accelerate launch`, ranks split the rows to decode, write
their own shard files, and rank 0 merges everything in canonical order at the end, so the merged
generations.jsonl equals a single-process run's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mdlm_bench.config import digest as make_digest
from mdlm_bench.config import from_dict
from mdlm_bench.decode_config import DecodeConfig
from mdlm_bench.errors import UserError
from mdlm_bench.io import JsonlAppender, atomic_write_text, read_jsonl, repair_jsonl, write_json
from mdlm_bench.rundir import CONFIG, GENERATIONS, METRICS, locked, mark_dir, read_config, write_config

Key = Tuple[str, str, int]
# Fields that decide what each row contains; limit, seeds, batch size, device and paths only decide
# which rows exist or how fast they come, so a run can be extended without a new digest.
OUTPUT_FIELDS = ("model", "tasks", "decoding", "perturbation", "chat", "dtype")


@dataclass
class RunConfig:
    """Everything `mdlm-bench run` needs (YAML, CLI and Python share it)."""

    model: str = "tiny-ce"
    tasks: List[str] = field(default_factory=lambda: ["synth"])
    decoding: Dict[str, Any] = field(default_factory=dict)  # DecodeConfig fields
    perturbation: Optional[Dict[str, Any]] = None  # PerturbSpec fields
    seeds: List[int] = field(default_factory=lambda: [0])
    limit: Optional[int] = None
    chat: bool = True
    dtype: str = "auto"
    device: str = "auto"
    bench_dir: Optional[str] = None
    batch_size: int = 16
    trust_remote_code: bool = False
    allow_pickle: bool = False

    def decode_config(self, where: str = "decoding settings") -> DecodeConfig:
        return from_dict(DecodeConfig, self.decoding, where).validate()

    def spec(self, where: str = "perturbation"):
        if not self.perturbation:
            return None
        from mdlm_bench.perturb import PerturbSpec

        return from_dict(PerturbSpec, self.perturbation, where).validate()

    def digest(self) -> str:
        d = asdict(self)
        d["decoding"] = self.decode_config().digest_dict()  # defaults filled in: same settings, same digest
        return make_digest({k: d[k] for k in OUTPUT_FIELDS})


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
        row = self.store.get(task, _uid(doc, doc_id), self.seed)
        return None if row is None else row["output"]  # as decoded; the lm-eval model cuts at `until`

    def decode(self, prompt_ids, keys, config: DecodeConfig):
        from mdlm_bench.decoding import GenResult

        items = [dict(task=t, uid=_uid(doc, doc_id), index=doc_id, prompt=ctx, ids=ids)
                 for (t, doc_id, doc, ctx), ids in zip(keys, prompt_ids)]
        self.decode_items(items, config)
        out = []
        for it in items:
            row = self.store.get(it["task"], it["uid"], self.seed)
            out.append(GenResult(token_ids=row.get("token_ids", []), text=row["output"], nfe=row["nfe"],
                                 raw_ids=[]))
        return out

    # --- shared ---------------------------------------------------------------------------------
    def decode_items(self, items: List[dict], config: DecodeConfig) -> None:
        """items: dicts with task, uid, index, prompt, ids. Decodes this rank's share, then syncs."""
        from mdlm_bench.perturb.operators import PerturbationHook
        from mdlm_bench.prompts import generate_many

        todo = [it for it in items if self.store.get(it["task"], it["uid"], self.seed) is None]
        mine = todo[self.dist.rank::self.dist.world]
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
            if not self.spec:
                current["hook"] = None
                return ()
            keys = [f"{mine[i]['task']}|{mine[i]['uid']}|{self.seed}" for i in idx]
            current["hook"] = PerturbationHook(self.spec, keys, config.gen_length, self.vocab)
            return (current["hook"],)

        def on_batch(idx, results):
            hook = current.get("hook")
            rows = [self._row(mine[i], res, config, hook.record(k) if hook else None)
                    for k, (i, res) in enumerate(zip(idx, results))]
            self.store.put(rows)
            if bar is not None:
                self.progress.advance(bar, len(rows))

        if mine:
            seeds = [row_seed(self.seed, it["task"], it["uid"]) for it in mine]
            generate_many(self.model, [it["ids"] for it in mine], config, seeds, self.cfg.batch_size,
                          hooks_for, on_batch)
        self.dist.barrier()
        self.store.refresh()

    def _row(self, item: dict, res, config: DecodeConfig, record: Optional[dict]) -> dict:
        rec = record or {"events": [], "requested_fraction": 0.0, "effective_fraction": 0.0}
        row = {
            "task": item["task"], "uid": item["uid"], "seed": self.seed, "index": item["index"],
            "digest": self.digest, "model": self.cfg.model, "prompt": item["prompt"], "output": res.text,
            "nfe": res.nfe, "row_seed": row_seed(self.seed, item["task"], item["uid"]),
            "decoding": config.to_dict(), "perturbation": self.spec.to_dict() if self.spec else None,
            **rec, "token_ids": res.token_ids,
        }
        for k in ("turns", "reference", "category", "prompt_truncated"):
            if k in item:
                row[k] = item[k]
        return row


def _uid(doc: dict, doc_id: int) -> str:
    return str(doc.get("uid", doc_id)) if isinstance(doc, dict) else str(doc_id)


# --- open-ended prompt sets ------------------------------------------------------------------------
def run_open_ended(decoder: RowDecoder, task: str, prompts: List[dict], config: DecodeConfig) -> None:
    """Decode each prompt's turns in order; turn k sees the model's own earlier answers."""
    from mdlm_bench.prompts import encode_prompt

    model, chat = decoder.model, decoder.cfg.chat
    todo = [p for p in prompts if decoder.store.get(task, p["uid"], decoder.seed) is None]
    single = [p for p in todo if len(p["turns"]) == 1]
    items = [dict(task=task, uid=str(p["uid"]), index=p["_index"], prompt=p["turns"][0],
                  category=p.get("category"), reference=p.get("reference"),
                  ids=encode_prompt(model, [{"role": "user", "content": p["turns"][0]}], chat))
             for p in single]
    if items:
        decoder.decode_items(items, config)
    multi = [p for p in todo if len(p["turns"]) > 1]
    if multi:
        _run_multi_turn(decoder, task, multi, config)


def _run_multi_turn(decoder: RowDecoder, task: str, prompts: List[dict], config: DecodeConfig) -> None:
    """Turns are decoded as separate rows under a scratch task, then joined into one row per prompt."""
    from mdlm_bench.prompts import encode_prompt

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
                       nfe=sum(r["nfe"] for r in parts), category=p.get("category"), reference=p.get("reference"),
                       events=[dict(e, turn=i + 1) for i, r in enumerate(parts) for e in r["events"]],
                       effective_fraction=sum(r["effective_fraction"] for r in parts) / len(parts),
                       token_ids=[r.get("token_ids", []) for r in parts])
            rows.append(row)
        decoder.store.put(rows)
    decoder.dist.barrier()
    decoder.store.refresh()


# --- orchestration -----------------------------------------------------------------------------------
def check_run_dir(out: Path, digest: str, overwrite: bool) -> bool:
    """Refuse a directory of another kind, and a run with another config unless --overwrite; True if it
    must be cleared. Reads only."""
    from mdlm_bench.rundir import claim_dir

    if not claim_dir(out, "run", overwrite):
        return False
    try:
        prev = read_config(out) if (out / CONFIG).exists() else None
    except UserError:  # a damaged config.json of a run directory: --overwrite (which the message offers) clears it
        if overwrite:
            return True
        raise
    if prev is None or prev.get("digest") == digest:
        return False
    if not overwrite:
        raise UserError(
            f"'{out}' holds a run with another config (digest {prev.get('digest')} != {digest}); "
            "choose another --out, or pass --overwrite to replace its results"
        )
    return True


def clear_run_dir(out: Path) -> None:
    for name in (GENERATIONS, METRICS, CONFIG):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / ".shards", ignore_errors=True)
    shutil.rmtree(out / "judgments", ignore_errors=True)


def summarize(rows: List[dict]) -> dict:
    """metrics.json: per task, each per-row metric's mean, its type, and n; decoding statistics."""
    tasks: Dict[str, dict] = {}
    stats: Dict[str, dict] = {}
    by_task: Dict[str, List[dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    for task, rs in by_task.items():
        names = sorted({m for r in rs for m in (r.get("metrics") or {})})
        tasks[task] = {}
        for m in names:
            vals = [float(r["metrics"][m]) for r in rs if m in (r.get("metrics") or {})]
            kind = "binary" if all(v in (0.0, 1.0) for v in vals) else "continuous"
            tasks[task][m] = {"value": sum(vals) / len(vals), "type": kind, "n": len(vals)}
        stats[task] = {
            "rows": len(rs),
            "seeds": sorted({r["seed"] for r in rs}),
            "nfe_mean": sum(r["nfe"] for r in rs) / len(rs),
            "effective_fraction_mean": sum(r.get("effective_fraction", 0.0) for r in rs) / len(rs),
            "output_chars_mean": sum(len(r["output"]) if isinstance(r["output"], str)
                                     else sum(map(len, r["output"])) for r in rs) / len(rs),
        }
    return {"tasks": tasks, "decoding_stats": stats}


def _lm_eval_pass(lm, names: List[str], cfg: RunConfig) -> Dict[Key, dict]:
    """One simple_evaluate call; returns per-row updates (metrics, target, scored output)."""
    import os
    from unittest import mock

    import lm_eval
    import lm_eval.evaluator

    from mdlm_bench.tasks import task_manager

    os.environ.setdefault("TQDM_DISABLE", "1")  # our rich bar replaces lm-eval's per-stage tqdm bars
    # lm-eval shells out to `git describe` (an error message outside a checkout) and to pip for its
    # environment report (about a second per call); config.json already records provenance.
    with mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", lambda: None), \
            mock.patch.object(lm_eval.evaluator, "add_env_info", lambda results: None):
        res = lm_eval.simple_evaluate(model=lm, tasks=names, task_manager=task_manager(), limit=cfg.limit,
                                      log_samples=True, bootstrap_iters=0, verbosity="ERROR")
    if res is None:  # lm-eval returns results on local rank 0 only
        return {}
    seed = lm.row_hook.seed
    updates: Dict[Key, dict] = {}
    for task, samples in (res.get("samples") or {}).items():
        for s in samples:
            uid = _uid(s.get("doc", {}), s["doc_id"])
            metrics = {m: float(s[m]) for m in s.get("metrics", []) if m in s}
            resp = s.get("filtered_resps", s.get("resps"))
            while isinstance(resp, list) and resp:
                resp = resp[0]
            upd = {"metrics": metrics, "reference": s.get("target")}
            if isinstance(resp, str):
                upd["scored_output"] = resp
            updates[(task, uid, seed)] = upd
    return updates


def execute(cfg: RunConfig, out: Path, overwrite: bool = False, console=None) -> dict:
    """Run `cfg` into `out`; returns the metrics dict (also written to metrics.json)."""
    from mdlm_bench.dist import current
    from mdlm_bench.models import load_model
    from mdlm_bench.tasks import resolve

    dist = current()
    from_dict(RunConfig, asdict(cfg), "run config")  # types of a config built in Python, too
    if not cfg.tasks:
        raise UserError("no tasks given; pass --tasks synth_copy (see 'mdlm-bench ls tasks')")
    tasks = resolve(cfg.tasks)
    dec = cfg.decode_config()
    cfg.spec()
    if not cfg.seeds:
        raise UserError("no seeds given; pass --seeds 0 (or a list like 0,1,2)")
    if cfg.limit is not None and cfg.limit < 1:
        raise UserError(f"--limit must be at least 1, got {cfg.limit}")
    if cfg.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    bench_dir, prompt_sets, bench_sources = None, {}, {}
    if any(t.kind == "open-ended" for t in tasks):
        from mdlm_bench.benchdata import load_bench

        for t in tasks:
            if t.kind == "open-ended":  # read (and check) every prompt file before anything is written
                prompts, bench_sources[t.name] = load_bench(t.name, cfg.bench_dir)
                bench_dir = bench_sources[t.name].get("path", bench_dir)
                for i, p in enumerate(prompts):
                    p["_index"] = i
                prompt_sets[t.name] = prompts[: cfg.limit] if cfg.limit else prompts
    out = Path(out).resolve()
    digest = cfg.digest()
    if dist.main:
        check_run_dir(out, digest, overwrite)
    model = load_model(cfg.model, dtype=cfg.dtype, device=dist.device(cfg.device),
                       trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
    dec.validate(1, model.max_positions)  # room for at least one prompt token
    with contextlib.ExitStack() as stack:
        if dist.main:  # checked again under the lock: another writer may have started in between
            stack.enter_context(locked(out, "run directory"))
            must_clear = check_run_dir(out, digest, overwrite)
        return _execute_locked(cfg, out, digest, dist, model, tasks, dec, bench_dir, prompt_sets,
                               must_clear if dist.main else False, console, bench_sources)


def _execute_locked(cfg, out, digest, dist, model, tasks, dec, bench_dir, prompt_sets, must_clear, console,
                    bench_sources=None):
    from mdlm_bench.progress import make_progress

    if dist.main:
        if must_clear:
            clear_run_dir(out)
            if console is not None:
                console.print(f"--overwrite: replacing the run in {out}", soft_wrap=True)
        mark_dir(out, "run")
        resolved = asdict(cfg)
        resolved["resolved_paths"] = {"out": str(out), "model": model.name,
                                      "bench_dir": str(bench_dir) if bench_dir else None}
        resolved["bench_sources"] = bench_sources  # local directory, or hub id and pinned revision
        write_config(out, "run", resolved, digest)
        if console is not None:
            console.print(f"run directory: [bold]{out}[/bold]", soft_wrap=True)
    dist.barrier()
    store = RowStore(out, digest, dist)
    progress = make_progress(console, transient=False) if console is not None and dist.main else None
    decoder = RowDecoder(model, cfg, store, dist, progress)
    updates: Dict[Key, dict] = {}
    lm_names = [t.name for t in tasks if t.kind == "lm-eval"]
    lm = None
    if progress:
        progress.start()
    try:
        for seed in cfg.seeds:
            decoder.seed = int(seed)
            if lm_names:
                from mdlm_bench.synth_rows import predecode

                predecode(decoder, lm_names, dec, cfg.limit)  # first rows before lm-eval is imported
                if lm is None:
                    from mdlm_bench.lm_eval import MDLMEvalLM

                    lm = MDLMEvalLM(model=model, decoding=dec, batch_size=cfg.batch_size, chat=cfg.chat,
                                    row_hook=decoder)
                updates.update(_lm_eval_pass(lm, lm_names, cfg))
            for name, prompts in prompt_sets.items():
                run_open_ended(decoder, name, prompts, dec)
    finally:
        if progress:
            progress.stop()
    rows = store.finalize(updates)
    metrics = summarize(rows)
    if dist.main:
        write_json(out / METRICS, metrics)
    return metrics
