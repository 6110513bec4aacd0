"""WildBench v2 rules, as pure functions: the judge prompt, reading the judge's JSON, and the leaderboard's
aggregates (WB-Score and WB-Reward with task groups, weights and the length margin K).

Transcribed from allenai/WildBench@d6b8dcaf377d173d031980f97c16e1a82618c03d: src/eval.py
(placeholder_generation, compose_eval_item, shorten, parse_result, extract_values_from_json) and
leaderboard/data_dir/_create_tables.py (task_group_new, weights_by_task, the score and pairwise tables).
The templates themselves are read from the benchmark folder at run time.
"""

from __future__ import annotations

import json
import re
from typing import Dict, Iterable, List, Optional, Sequence

UPSTREAM = "allenai/WildBench@d6b8dcaf377d173d031980f97c16e1a82618c03d"
MAX_WORDS = 1000  # eval.py --max_words_to_eval
TRUNCATED = "... (truncated)"
EMPTY = "[This model response is empty.]"
# eval.py: temperature 0, max_tokens 1024, json_mode (response_format json_object)
PARAMS = {"temperature": 0.0, "max_tokens": 1024, "response_format": {"type": "json_object"}}
ASSIGNMENT_SEED = 42  # eval.py --seed: random.seed(42), then one random.random() per benchmark row
# _create_tables.py task_group_new: each tag (primary and secondary) counts for its group, groups deduplicated
TASK_GROUP = {
    "Information seeking": "Information/Advice seeking", "Creative Writing": "Creative Tasks",
    "Coding & Debugging": "Coding & Debugging", "Reasoning": "Planning & Reasoning", "Editing": "Creative Tasks",
    "Math": "Math & Data Analysis", "Planning": "Planning & Reasoning", "Brainstorming": "Creative Tasks",
    "Role playing": "Creative Tasks", "Advice seeking": "Information/Advice seeking",
    "Data Analysis": "Math & Data Analysis", "Others": "Creative Tasks",
}
WEIGHTS = {"Creative Tasks": 0.5, "Planning & Reasoning": 1.25, "Math & Data Analysis": 1.0,
           "Information/Advice seeking": 0.75, "Coding & Debugging": 1.25}
# batch_results_format.py: choice -> (winner side, extent); any other choice drops the judgment
CHOICES = {"A++": ("A", 2), "A+": ("A", 1), "A=B": (None, 0), "B+": ("B", 1), "B++": ("B", 2)}
OUTCOME_REWARD = {"win_much": 1.0, "win": 0.5, "tie": 0.0, "lose": -0.5, "lose_much": -1.0}


def shorten(text: str, k: int = MAX_WORDS) -> str:
    """The first k space-separated words and a truncation mark, when the text has more than k."""
    words = text.split(" ")
    return " ".join(words[:k]) + TRUNCATED if k > 0 and len(words) > k else text


def history_text(history: Iterable[dict]) -> str:
    role = {"user": "USER", "assistant": "ASSISTANT"}
    return "".join(f"{role[m['role']]}: {m['content']}\n\n" for m in history if m.get("role") in role)


def checklist_text(checklist: Sequence[str]) -> str:
    return "".join(f"- {c}\n" for c in checklist)


def render(template: str, values: Dict[str, str]) -> str:
    """Replace each {$name} in the order given (upstream replaces one placeholder after another)."""
    for name, value in values.items():
        template = template.replace("{$" + name + "}", value)
    return template


def score_prompt(template: str, history: List[dict], query: str, answer: str, checklist: Sequence[str]) -> str:
    return render(template, {"history": shorten(history_text(history)), "user_query": shorten(query),
                             "model_output": shorten(answer), "checklist": checklist_text(checklist)})


def pairwise_prompt(template: str, history: List[dict], query: str, a: str, b: str,
                    checklist: Sequence[str]) -> str:
    return render(template, {"history": shorten(history_text(history)), "user_query": shorten(query),
                             "candidate_A": shown(a), "candidate_B": shown(b), "checklist": checklist_text(checklist)})


def shown(answer: str) -> str:
    """The answer as the pairwise judge sees it: shortened, or the empty-response note."""
    s = shorten(answer)
    return EMPTY if s.strip() == "" else s


def empty_score_reply() -> str:
    """eval.py writes this judgment for an empty answer instead of asking the judge (score 1)."""
    return json.dumps({"strengths": "N/A", "weaknesses": "The model output is empty.", "score": "1"})


def empty_pairwise_reply(a: str, b: str) -> Optional[str]:
    """eval.py's judgment when an answer is empty (no request), else None."""
    if a.strip() == "" and b.strip() == "":
        return json.dumps({"reason": "Both responses are empty.", "choice": "A=B"})
    if a.strip() == "":
        return json.dumps({"reason": "The response A is empty.", "choice": "B++"})
    if b.strip() == "":
        return json.dumps({"reason": "The response B is empty.", "choice": "A++"})
    return None


def extract_values(text: str, keys: Sequence[str]) -> Dict[str, str]:
    """Fallback reader for replies that are not valid JSON: "key": "value" (a value without inner quotes
    first, then any text up to the next quote, across lines)."""
    out: Dict[str, str] = {}
    for key in keys:
        if key not in text:
            continue
        m = re.search(f'"{key}"\\s*:\\s*"([^"]*?)"', text) or re.search(f'"{key}"\\s*:\\s*"(.*?)"', text, re.DOTALL)
        if m:
            out[key] = m.group(1)
    return out


def parse_reply(text: str) -> dict:
    """The judge's reply as a dict: JSON when it parses, else the quoted score/choice values found in it."""
    text = text.strip()
    try:
        got = json.loads(text)
    except ValueError:
        return extract_values(text, ("score", "choice"))
    return got if isinstance(got, dict) else {}


def read_score(text: str) -> Optional[float]:
    value = parse_reply(text).get("score")
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_choice(text: str) -> Optional[str]:
    value = parse_reply(text).get("choice")
    return value if value in CHOICES else None


def groups(tags: Iterable[str]) -> List[str]:
    """Task groups of a prompt from its primary and secondary tags (KeyError for an unknown tag)."""
    return sorted({TASK_GROUP[t] for t in tags})


def macro(group_values: Dict[str, float]) -> float:
    """Weighted task macro: sum(value * weight) / sum of all five weights (also when a group is absent)."""
    return sum(v * WEIGHTS[g] for g, v in group_values.items()) / sum(WEIGHTS.values())


def excluded(shown_text: str) -> bool:
    """_create_tables skips truncated and empty answers in its win/lose and per-task counts."""
    return shown_text.endswith(TRUNCATED) or shown_text == EMPTY or shown_text.strip() == ""


def outcome(choice: str, model_is_a: bool, model_len: int, base_len: int, k: int) -> str:
    """The model's outcome for one judged pair; a plain win (extent 1) of an answer more than K characters
    longer than the other is a tie (K >= 0; K = -1 for no margin)."""
    side, extent = CHOICES[choice]
    if side is None:
        return "tie"
    if (side == "A") == model_is_a:
        if extent == 2:
            return "win_much"
        return "tie" if k >= 0 and model_len > base_len + k else "win"
    if extent == 2:
        return "lose_much"
    return "tie" if k >= 0 and base_len > model_len + k else "lose"


def score_table(scores: Sequence[float], kept: Sequence[bool], item_groups: Sequence[List[str]]) -> dict:
    """WB-Score: mean over every scored answer; per group the adjusted (mean - 5) * 2 over answers neither
    truncated nor empty; task macro of the adjusted group scores."""
    per: Dict[str, List[float]] = {}
    for s, k, gs in zip(scores, kept, item_groups):
        if k:
            for g in gs:
                per.setdefault(g, []).append(float(s))
    cat = {g: (sum(v) / len(v) - 5.0) * 2.0 for g, v in sorted(per.items())}
    mean = sum(scores) / len(scores)
    return {"score": mean, "adjusted_score": (mean - 5.0) * 2.0, "task_macro_score": macro(cat) if cat else None,
            "task_categorized_scores": cat}


def reward_table(outcomes: Sequence[Optional[str]], item_groups: Sequence[List[str]]) -> dict:
    """WB-Reward over judged pairs; None = an excluded pair (truncated or empty answer), which counts in the
    total (the denominator) but in no outcome and no task group."""
    counts = {o: sum(1 for x in outcomes if x == o) for o in OUTCOME_REWARD}
    per: Dict[str, List[float]] = {}
    for o, gs in zip(outcomes, item_groups):
        if o is not None:
            for g in gs:
                per.setdefault(g, []).append(OUTCOME_REWARD[o])
    cat = {g: sum(v) / len(v) for g, v in sorted(per.items())}
    total = len(outcomes)
    reward = sum(OUTCOME_REWARD[o] * n for o, n in counts.items()) / total
    return {**counts, "total": total, "reward": reward, "task_macro_reward": macro(cat) if cat else None,
            "task_categorized_rewards": cat}
