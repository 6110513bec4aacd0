"""Filling published judge templates and reading verdicts out of the judge's reply (and only its reply)."""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

from mdlm_bench.errors import UserError

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_CHATML = re.compile(r"<\|im_start\|>(\w+)\n(.*?)\n?<\|im_end\|>", re.S)


def placeholders(template: str) -> List[str]:
    return _PLACEHOLDER.findall(template)


def fill(template: str, values: Dict[str, str], where: str = "judge template") -> str:
    """Replace {name} for the given names in one pass.

    One pass, so an answer that itself contains '{answer_2}' is never expanded; names not in `values`
    (such as the literal JSON braces of AlpacaEval's prompt) are left as they are.
    """
    missing = [n for n in placeholders(template) if n not in values and _looks_like_slot(n)]
    if missing:
        raise UserError(f"{where} expects {{{missing[0]}}} which this benchmark does not provide; "
                        f"use the benchmark's published template")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def _looks_like_slot(name: str) -> bool:
    return bool(re.fullmatch(r"(question|answer|ref_answer|instruction|output|QUESTION|ANSWER|REFERENCE)\w*", name))


def chatml_messages(text: str, where: str) -> List[Dict[str, str]]:
    """Messages from an <|im_start|>role ... <|im_end|> prompt file (AlpacaEval's format)."""
    msgs = [{"role": role, "content": body.strip("\n")} for role, body in _CHATML.findall(text)]
    if not msgs:
        raise UserError(f"{where}: no <|im_start|>role ... <|im_end|> blocks found; use the published prompt file")
    return msgs


def last_match(text: str, patterns: Sequence[str], pick: int = -1) -> Optional[str]:
    """The last (pick=-1) non-empty match of the first pattern that matches at all (arena-hard's rule)."""
    for pattern in patterns:
        found = [m for m in re.findall(pattern, text) if m]
        if found:
            last = found[pick]
            return (last[0] if isinstance(last, tuple) else last).strip()
    return None


def verdict_labels(text: str, patterns: Sequence[str]) -> List[str]:
    """Distinct non-empty matches, in order of appearance, of the first pattern that matches at all.

    More than one distinct label means the reply has no verdict (arena-hard v0.1 gen_judgment.get_score);
    taking the last one would let a quoted or injected label decide the game.
    """
    for pattern in patterns:
        found = [m[0] if isinstance(m, tuple) else m for m in re.findall(pattern, text)]
        found = [m.strip() for m in found if m]
        if found:
            return list(dict.fromkeys(found))
    return []


def rating_pattern(output_format: str) -> List[str]:
    """Regexes for a numeric rating given a published output format such as '[[rating]]'.

    The format's brackets are kept; FastChat also accepts the single-bracket form as a fallback.
    """
    if "rating" not in output_format:
        raise UserError(f"judge output format '{output_format}' has no 'rating' slot; use the published prompts")
    number = r"(\d+\.?\d*)"
    primary = re.escape(output_format).replace("rating", number)
    inner = output_format.strip("[]")
    fallback = r"\[" + re.escape(inner).replace("rating", number) + r"\]"
    return [primary] if fallback == primary else [primary, fallback]
