"""Deterministic synthetic instruction data with exactly checkable answers (the tiny models' training set).

Each row is {"uid", "family", "prompt", "response"}; the response is the exact answer string. Every row is a
pure function of (family, seed, index), so any subset can be regenerated and uids never collide across seeds.
Prompts and answers stay short so a character-level tiny model can learn them on a CPU in minutes.
"""

from __future__ import annotations

import random
import string
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from mdlm_bench.registry import Registry

LETTERS = string.ascii_lowercase
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

Family = Callable[[random.Random], tuple]
FAMILIES: Registry[Family] = Registry("synthetic task family")


def _word(rng: random.Random, lo: int, hi: int, alphabet: str = LETTERS) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


@FAMILIES.register("copy")
def _copy(rng):
    w = _word(rng, 3, 8, LETTERS + string.digits)
    return f"copy: {w}", w


@FAMILIES.register("reverse")
def _reverse(rng):
    w = _word(rng, 3, 7)
    return f"reverse: {w}", w[::-1]


@FAMILIES.register("sort")
def _sort(rng):
    w = _word(rng, 3, 7)
    return f"sort: {w}", "".join(sorted(w))


@FAMILIES.register("count")
def _count(rng):
    w = _word(rng, 4, 10, "abc")
    c = rng.choice("abc")
    return f"count {c}: {w}", str(w.count(c))


@FAMILIES.register("arithmetic")
def _arithmetic(rng):
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    if rng.random() < 0.5:
        return f"{a}+{b}=", str(a + b)
    a, b = max(a, b), min(a, b)
    return f"{a}-{b}=", str(a - b)


@FAMILIES.register("spell")
def _spell(rng):
    n = _word(rng, 1, 3, string.digits)
    return f"spell: {n}", " ".join(DIGIT_WORDS[int(d)] for d in n)


@FAMILIES.register("lookup")
def _lookup(rng):
    keys = rng.sample(LETTERS, rng.randint(3, 4))
    vals = [str(rng.randint(0, 9)) for _ in keys]
    q = rng.randrange(len(keys))
    pairs = " ".join(f"{k}={v}" for k, v in zip(keys, vals))
    return f"{pairs} ? {keys[q]}", vals[q]


def make_row(family: str, seed: int, index: int) -> Dict[str, str]:
    """The row (family, seed, index) -> {"uid", "family", "prompt", "response"}; same inputs, same row."""
    fn = FAMILIES.get(family)
    rng = random.Random(f"mdlm-bench-synthetic:{family}:{seed}:{index}")
    prompt, response = fn(rng)
    return {"uid": f"{family}-s{seed}-{index:06d}", "family": family, "prompt": prompt, "response": response}


def generate(n_per_family: int, seed: int = 0, families: Optional[Sequence[str]] = None) -> List[Dict[str, str]]:
    """n_per_family rows of each family, interleaved family by family (index-major)."""
    names = list(families) if families else list(FAMILIES)
    for name in names:
        FAMILIES.get(name)  # did-you-mean error for a bad name
    return [make_row(f, seed, i) for i in range(n_per_family) for f in names]


# Content-disjoint splits. Training data is generate(n, seed=TRAIN_SEED); the held-out splits are drawn from
# their own seeds and keep only rows whose prompt occurs in no earlier split, so no prompt is shared.
# Order: the first EVAL_BASE_PER_FAMILY eval rows, then dev (avoiding them), then the rest of eval, which
# continues the same eval stream and also avoids the first DEV_RESERVED_PER_FAMILY dev rows. So the first
# 32 eval rows and every dev row the grid uses are what they were before eval grew.
TRAIN_SEED = 0
TRAIN_PER_FAMILY = 3000  # the bundled models' training set (training/tiny-*.yaml)
HELDOUT_SEEDS = {"eval": 1000, "dev": 2000}
EVAL_BASE_PER_FAMILY = 32  # the eval rows drawn before dev (the first rows of tasks/data/synth_<family>.jsonl)
EVAL_PER_FAMILY = 200  # tasks/data/synth_<family>.jsonl (spell has ~356 prompts outside training)
DEV_PER_FAMILY = 48
DEV_RESERVED_PER_FAMILY = 100  # dev rows the eval extension avoids: the most a dev draw may ask for


def _fresh_rows(family: str, seed: int, n: int, exclude: set) -> List[Dict[str, str]]:
    out: List[Dict[str, str]] = []
    seen = set(exclude)
    index = 0
    while len(out) < n:
        if index > 200 * n + 10_000:
            raise ValueError(f"family '{family}' has too few distinct prompts outside the excluded set")
        row = make_row(family, seed, index)
        index += 1
        if row["prompt"] not in seen:
            seen.add(row["prompt"])
            out.append(row)
    return out


def heldout_rows(split: str, n_per_family: Optional[int] = None, families: Optional[Sequence[str]] = None,
                 train_per_family: int = TRAIN_PER_FAMILY) -> List[Dict[str, str]]:
    """Rows of a held-out split ('eval' or 'dev'), disjoint by prompt from the training data
    generate(train_per_family, TRAIN_SEED), from each other, and within themselves. Family-major order.
    Each split is prefix-stable: a smaller draw is the first rows of a larger one."""
    if split not in HELDOUT_SEEDS:
        from mdlm_bench.errors import unknown

        raise unknown("split", split, HELDOUT_SEEDS)
    default = {"eval": EVAL_PER_FAMILY, "dev": DEV_PER_FAMILY}
    n = default[split] if n_per_family is None else int(n_per_family)
    if split == "dev" and n > DEV_RESERVED_PER_FAMILY:
        raise ValueError(f"at most {DEV_RESERVED_PER_FAMILY} dev rows per family are kept apart from eval; "
                         f"asked for {n}")
    names = list(families) if families else list(FAMILIES)
    out: List[Dict[str, str]] = []
    for fam in names:
        train = {r["prompt"] for r in generate(train_per_family, TRAIN_SEED, [fam])}
        base = _fresh_rows(fam, HELDOUT_SEEDS["eval"], EVAL_BASE_PER_FAMILY, train)
        dev_exclude = train | {r["prompt"] for r in base}
        if split == "dev":
            out += _fresh_rows(fam, HELDOUT_SEEDS["dev"], n, dev_exclude)
            continue
        if n <= EVAL_BASE_PER_FAMILY:
            out += base[:n]
            continue
        dev = _fresh_rows(fam, HELDOUT_SEEDS["dev"], DEV_RESERVED_PER_FAMILY, dev_exclude)
        out += _fresh_rows(fam, HELDOUT_SEEDS["eval"], n, train | {r["prompt"] for r in dev})
    return out


def exact_match(row: Dict[str, str], output: str) -> bool:
    """Whether the model's answer text equals the exact answer (surrounding whitespace ignored)."""
    return output.strip() == row["response"].strip()


def per_family(rows: Iterable[Dict[str, str]], outputs: Iterable[str]) -> Dict[str, Dict[str, float]]:
    """{family: {"n", "exact_match"}} over paired rows and outputs."""
    acc: Dict[str, List[int]] = {}
    for row, out in zip(rows, outputs):
        acc.setdefault(row["family"], []).append(int(exact_match(row, out)))
    return {f: {"n": len(v), "exact_match": sum(v) / len(v)} for f, v in sorted(acc.items())}
