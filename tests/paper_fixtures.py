"""Fixtures in the layouts of WildBench v2 and Creative-Writing-Bench v3, written here (no upstream file is
copied: the templates below are our own text with upstream's placeholders), and a scripted judge that
answers each benchmark's prompt in the format its parser reads."""

import json
import re
from pathlib import Path

from judge_server import MARKER, _prompt_text, marker_judge

WB_SCORE_TPL = ("WB-SCORE-FIXTURE\n<history>{$history}</history>\n<query>{$user_query}</query>\n"
                "<|begin_of_response|>\n{$model_output}\n<|end_of_response|>\n<checklist>{$checklist}</checklist>\n"
                'Answer as JSON {"strengths": "", "weaknesses": "", "score": "1-10"}.\n')
WB_PAIR_TPL = ("WB-PAIRWISE-FIXTURE\n<history>{$history}</history>\n<query>{$user_query}</query>\n"
               "<|begin_of_response_A|>\n{$candidate_A}\n<|end_of_response_A|>\n"
               "<|begin_of_response_B|>\n{$candidate_B}\n<|end_of_response_B|>\n<checklist>{$checklist}</checklist>\n"
               'Answer as JSON {"choice": "A++|A+|A=B|B+|B++"}.\n')
CW_TPL = ("CW-FIXTURE\nPrompt: {writing_prompt}\n[PIECE]\n{test_model_response}\n[END]\n"
          "Criteria:\n{creative_writing_criteria}\nLower is better: {lower_is_better_criteria}\n"
          "Reply with one 'Criterion: score' line per criterion (0-20).\n")
CW_CRITERIA = ["Vivid scenes", "Logic", "Stilted"]
CW_NEGATIVE = ["Stilted"]
TAGS = ["Planning", "Coding & Debugging", "Math", "Creative Writing", "Information seeking", "Reasoning"]


def wildbench_rows(n: int):
    rows = []
    for i in range(n):
        conv = [{"role": "user", "content": f"Question {i}?"}]
        if i % 2 == 0:  # a given history: user, assistant, then the turn to answer
            conv = [{"role": "user", "content": f"Hello {i}"},
                    {"role": "assistant", "content": f"GIVEN-ASSISTANT-REPLY-{i}"},
                    {"role": "user", "content": f"Now question {i}?"}]
        rows.append({"session_id": f"wb{i}", "conversation_input": conv, "checklist": [f"Check {i}a", f"Check {i}b"],
                     "primary_tag": TAGS[i % len(TAGS)], "secondary_tags": [TAGS[(i + 1) % len(TAGS)]]})
    return rows


def make_wildbench(root: Path, n: int = 6) -> Path:
    d = Path(root) / "wildbench"
    d.mkdir(parents=True, exist_ok=True)
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in wildbench_rows(n)))
    (d / "eval_template.score.v2.md").write_text(WB_SCORE_TPL)
    (d / "eval_template.pairwise.v2.md").write_text(WB_PAIR_TPL)
    return root


def make_creative_writing(root: Path, n: int = 2) -> Path:
    d = Path(root) / "creative-writing-bench"
    d.mkdir(parents=True, exist_ok=True)
    prompts = {str(i + 1): {"title": f"Piece {i}", "category": ["fiction", "poetry"][i % 2],
                            "writing_prompt": f"Write piece {i} about <SEED>. Keep it short.",
                            "seed_modifiers": [f"seed{i}a", f"seed{i}b"]} for i in range(n)}
    (d / "creative_writing_prompts_v3.json").write_text(json.dumps(prompts))
    (d / "creative_writing_criteria.txt").write_text("\n".join(CW_CRITERIA) + "\n")
    (d / "negative_criteria.txt").write_text("\n".join(CW_NEGATIVE) + "\n")
    (d / "creative_writing_judging_prompt.txt").write_text(CW_TPL)
    return root


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0] if start in text else ""


def _quality(text: str, default: int) -> int:
    m = MARKER.findall(text)
    return int(m[-1]) if m else default


def paper_judge(payload):
    """WB score: JSON score = the answer's quality marker (default 5); WB pairwise: A++/A+/A=B/B+/B++ from the
    markers of A and B; CW: every criterion scored with the piece's marker; anything else: marker_judge."""
    text = _prompt_text(payload)
    if text.startswith("WB-SCORE-FIXTURE"):
        q = _quality(_between(text, "<|begin_of_response|>", "<|end_of_response|>"), 5)
        return json.dumps({"strengths": "s", "weaknesses": "w", "score": str(q)}), None
    if text.startswith("WB-PAIRWISE-FIXTURE"):
        qa = _quality(_between(text, "<|begin_of_response_A|>", "<|end_of_response_A|>"), 0)
        qb = _quality(_between(text, "<|begin_of_response_B|>", "<|end_of_response_B|>"), 0)
        d = max(-2, min(2, qa - qb))
        choice = {2: "A++", 1: "A+", 0: "A=B", -1: "B+", -2: "B++"}[d]
        return json.dumps({"reason A=B": "", "reason A>B": "", "reason B>A": "", "choice": choice}), None
    if text.startswith("CW-FIXTURE"):
        q = _quality(_between(text, "[PIECE]", "[END]"), 10)
        names = re.findall(r"^- (.+)$", text.split("Criteria:", 1)[1], re.M)
        return "[Notes]\nfine.\n\n[Ratings]\n" + "\n".join(f"{n}: {q}" for n in names) + "\n", None
    return marker_judge(payload)
