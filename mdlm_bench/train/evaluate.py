"""Exact-match of a model on held-out synthetic rows, decoded with the project's sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

from mdlm_bench.train.synthetic import heldout_rows, per_family


def decode_rows(model, rows: Sequence[dict], gen_length: int = 32, steps: Optional[int] = None,
                batch_size: int = 64, shift: float = 0.0, seed: int = 0) -> List[str]:
    """Answers of `rows` (synthetic rows) under greedy low-confidence decoding, one block of gen_length; with
    shift > 0, the bundled reference-sweep shift operator at that fraction (selection seed `seed`)."""
    import torch

    from mdlm_bench.decode.sampler import DecodeConfig, generate as decode

    cfg = DecodeConfig(gen_length=gen_length, steps=steps or gen_length, block_length=gen_length)
    spec = None
    if shift > 0:
        from mdlm_bench.perturb.spec import load_spec

        spec = load_spec("reference-sweep").with_fraction(shift)
        spec.seed = seed
    outputs: List[str] = []
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            prompts = [model.tokenizer(model.chat_prompt([{"role": "user", "content": r["prompt"]}]),
                                       add_special_tokens=False)["input_ids"] for r in chunk]
            hooks = []
            if spec is not None:
                from mdlm_bench.perturb.operators import make_hook

                hooks = [make_hook(spec, model, [f"synth_{r['family']}|{r['uid']}|{seed}" for r in chunk],
                                   gen_length)]
            outputs += [g.text for g in decode(model, prompts, cfg, seeds=list(range(i, i + len(chunk))),
                                               hooks=hooks)]
    return outputs


def summarise(rows: Sequence[dict], outputs: Sequence[str]) -> Dict[str, Dict[str, float]]:
    res = per_family(rows, outputs)
    total = sum(v["n"] for v in res.values())
    res["all"] = {"n": total, "exact_match": sum(v["n"] * v["exact_match"] for v in res.values()) / total}
    return res


def evaluate_synthetic(model, n_per_family: int = 48, split: str = "dev", gen_length: int = 32,
                       steps: Optional[int] = None, batch_size: int = 64,
                       families: Optional[Sequence[str]] = None, shift: float = 0.0,
                       seed: int = 0) -> Dict[str, Dict[str, float]]:
    """{family: {"n", "exact_match"}} plus "all", on heldout_rows(split, n_per_family): rows whose prompts
    occur neither in the training data nor in the other held-out split."""
    rows = heldout_rows(split, n_per_family, families=families)
    return summarise(rows, decode_rows(model, rows, gen_length, steps, batch_size, shift, seed))


def write_eval(model_dir: Path, n_per_family: int = 48, split: str = "dev", gen_length: int = 32,
               quiet: bool = False) -> Dict[str, Dict[str, float]]:
    """Evaluate the checkpoint in model_dir on held-out synthetic rows; write model_dir/eval.json and show a table."""
    from mdlm_bench.config import provenance
    from mdlm_bench.io import write_json
    from mdlm_bench.models import load_model

    m = load_model(model_dir, dtype="float32", device="cpu")
    res = evaluate_synthetic(m, n_per_family=n_per_family, split=split, gen_length=gen_length)
    write_json(Path(model_dir) / "eval.json", {
        "what": f"exact match on the '{split}' split of the synthetic rows (disjoint by prompt from training; "
                "mdlm_bench.train.evaluate.evaluate_synthetic)",
        "settings": {"n_per_family": n_per_family, "split": split, "gen_length": gen_length, "steps": gen_length,
                     "block_length": gen_length, "remasking": "low_confidence", "temperature": 0.0},
        "results": res, "provenance": provenance(),
    })
    if not quiet:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"exact match, held-out synthetic rows ({model_dir})")
        t.add_column("family")
        t.add_column("n", justify="right")
        t.add_column("exact match", justify="right")
        for fam, v in res.items():
            t.add_row(fam, str(v["n"]), f"{v['exact_match']:.3f}")
        Console(stderr=True).print(t)
    return res
