"""`mdlm-bench ls`: list models, tasks, perturbations, judges and recipes."""

from __future__ import annotations

NAME = "ls"
HELP = "list models, tasks, perturbations, judges, recipes and remasking rules"
ORDER = 5
JUDGE_HELP = {
    "ArenaHard": "pairwise vs a baseline, both orders, published regexes; win rate + Bradley-Terry",
    "AlpacaEval": "weighted pairwise judge from top_logprobs; win rate and length-controlled win rate",
    "MTBench": "single-answer grading 1-10 over both turns, reference-guided for math/reasoning/coding",
    "Pairwise": "any two mdlm-bench runs (e.g. perturbed vs level 0, CE vs slack-CTC), both orders",
    "WildBenchScore": "WB-Score: one answer graded 1-10 with the checklist; task macro of (s-5)*2",
    "WildBenchReward": "WB-Reward: one pairwise game vs a baseline, seeded sides, length margin K; reward -1..1",
    "CreativeWriting": "Creative-Writing-Bench v3 rubric: criteria 0-20, lower-is-better inverted, x5 to 0-100",
}
JUDGE_NEEDS = {
    "ArenaHard": "arena-hard-v*/judge_config.yaml (+ judge_settings.json for v2.0), baseline answers or --baseline",
    "AlpacaEval": "alpaca-eval/weighted_alpaca_eval_gpt4_turbo.yaml, gpt4_1106_preview_outputs.json",
    "MTBench": "mt-bench/judge_prompts.jsonl, question.jsonl, reference_answer_gpt-4.jsonl",
    "Pairwise": "--baseline RUN_DIR (the generic prompt ships with mdlm-bench)",
    "WildBenchScore": "a run of task wildbench; wildbench/eval_template.score.v2.md (+ the v2 rows, local or hub)",
    "WildBenchReward": "a run of task wildbench; wildbench/eval_template.pairwise.v2.md; --baseline RUN_DIR|FILE",
    "CreativeWriting": "a run of task creative-writing-bench; creative-writing-bench/creative_writing_prompts_v3.json, "
                       "creative_writing_criteria.txt, negative_criteria.txt, creative_writing_judging_prompt.txt",
}
WHAT = ("models", "tasks", "perturbations", "judges", "recipes", "remasking")


def add_arguments(p):
    p.add_argument("what", nargs="?", default="all", help=f"one of: {', '.join(WHAT)} (default: all)")
    p.add_argument("--bench-dir", help="benchmark directory to check open-ended data against "
                                       "(default $MDLM_BENCH_DATA)")


class _NaturalWidth:
    """A console that prints each table whole: at the terminal's width on a terminal (names never
    wrapped there, see _name_column), and at the table's own width to a file or pipe, so no name is cut."""

    def __init__(self, console):
        self.console = console

    def print(self, renderable) -> None:
        from rich.measure import Measurement

        c = self.console
        if c.is_terminal or isinstance(renderable, str):
            c.print(renderable, soft_wrap=isinstance(renderable, str))
            return
        need = Measurement.get(c, c.options.update(max_width=100_000), renderable).maximum
        old, c.width = c.width, max(c.width, need)
        try:
            c.print(renderable)
        finally:
            c.width = old


def _models(console):
    from rich.table import Table

    from mdlm_bench.models import bundled_models
    from mdlm_bench.models.presets import PRESETS

    t = Table(title="models")
    for c in ("name", "kind", "where"):
        t.add_column(c, no_wrap=c == "name")
    for name, path in bundled_models().items():
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6
        t.add_row(name, "bundled checkpoint", f"{path} ({size:.1f} MB)")
    for name, p in PRESETS.items():
        t.add_row(name, "preset (init-model)", f"{p.num_hidden_layers} layers × {p.hidden_size} hidden")
    t.add_row("DIR", "any checkpoint", "mdlm-bench format, LLaDA layout, Dream layout, or --trust-remote-code")
    console.print(t)


def _tasks(console, bench_dir):
    from rich.table import Table

    from mdlm_bench.benchdata import BENCHES, bench_status
    from mdlm_bench.evaluate.tasks import lm_eval_tasks

    t = Table(title="tasks (open-ended sets: local copy, hub cache, or downloaded on first use)")
    for c in ("name", "kind", "data", "status"):
        t.add_column(c, no_wrap=c == "name")
    for info in lm_eval_tasks():
        t.add_row(info.name, info.kind + (" group" if info.group else ""), info.source, "bundled")
    colour = {"local": "green", "cached": "green", "will download": "yellow"}
    for name in BENCHES:
        status, where = bench_status(name, bench_dir)
        t.add_row(name, "open-ended", where, f"[{colour.get(status, 'red')}]{status}[/]")
    console.print(t)


def _perturbations(console):
    from rich.table import Table

    from mdlm_bench.perturb.operators import OPERATORS
    from mdlm_bench.perturb.spec import load_spec
    from mdlm_bench.resources import bundled_dir

    t = Table(title="perturbation operators")
    for c in ("operator", "moves tokens", "what it does"):
        t.add_column(c, no_wrap=c == "name")
    for name, op in OPERATORS.items():
        t.add_row(name, "yes" if op.moves else "no (control)", op.help)
    console.print(t)
    s = Table(title=f"perturbation specs ({bundled_dir('perturbations')})")
    for c in ("spec", "operator", "fraction", "direction", "schedule"):
        s.add_column(c)
    for f in sorted(bundled_dir("perturbations").glob("*.yaml")):
        spec = load_spec(str(f))
        sched = spec.schedule + (f" {spec.window}" if spec.schedule == "window" else "")
        s.add_row(f.stem, spec.operator, f"{spec.fraction:g}", spec.direction, sched)
    console.print(s)


def _judges(console):
    from rich.table import Table

    from mdlm_bench.judge.protocols import PROTOCOLS

    t = Table(title="judges (mdlm-bench judge --bench NAME)")
    t.add_column("bench", no_wrap=True)
    for c in ("protocol", "needs (under --bench-dir)"):
        t.add_column(c, overflow="fold")
    for name, cls in PROTOCOLS.items():
        t.add_row(name, JUDGE_HELP.get(cls.__name__, cls.__name__), JUDGE_NEEDS.get(cls.__name__, "-"))
    console.print(t)


def _recipes(console):
    from rich.table import Table

    from mdlm_bench.resources import bundled_dir

    t = Table(title=f"training recipes ({bundled_dir('training')})")
    t.add_column("recipe")
    t.add_column("file")
    for f in sorted(bundled_dir("training").glob("*.yaml")):
        t.add_row(f.stem, str(f))
    console.print(t)


def _remasking(console):
    from mdlm_bench.decode.rules import DREAM, REMASKING, SCHEDULES

    console.print("remasking rules: " + ", ".join(REMASKING))
    console.print("schedules: " + ", ".join(SCHEDULES) + "; Dream algorithms (--alg): " + ", ".join(DREAM))


def main(args) -> int:
    from rich.console import Console

    from mdlm_bench.errors import unknown

    console = _NaturalWidth(Console())
    what = args.what
    if what != "all" and what not in WHAT:
        raise unknown("listing", what, WHAT + ("all",))
    if args.bench_dir is not None:
        from pathlib import Path

        from mdlm_bench.errors import UserError

        d = Path(args.bench_dir)
        if not d.is_dir():
            raise UserError(f"--bench-dir '{d}' {'is a file' if d.exists() else 'does not exist'}; pass the "
                            f"directory that holds the benchmark folders (arena-hard-v0.1/, mt-bench/, ...)")
    show = {
        "models": lambda: _models(console),
        "tasks": lambda: _tasks(console, args.bench_dir),
        "perturbations": lambda: _perturbations(console),
        "judges": lambda: _judges(console),
        "recipes": lambda: _recipes(console),
        "remasking": lambda: _remasking(console),
    }
    for name in WHAT if what == "all" else (what,):
        show[name]()
    return 0
