"""Perturbation operators, plugged into the sampler's `on_commit` / `on_finish` hook points.

Selection. Each row gets a budget of n = fraction * gen_length operations (stochastically rounded,
so the expectation is exact), drawn from its own RNG seeded by (spec seed, row key): a row's events
do not depend on its batch-mates. Under `every_step` and `window`, the budget is placed on randomly
chosen commit ordinals (the k-th token the sampler commits in that row) inside the window of decoding
progress; under `once`, on tokens committed at step `at_step`; under `post_hoc`, on positions of the
finished output. A selected token with no valid target slot carries its operation over to the next
committed token of the row; what is still owed at the end is reported as `skipped`. A <slack> is never
displaced. `select: all` (default): a selected <slack> is spent with no effect (`on_slack: spend`,
counted as `spent_on_slack`) or carried (`on_slack: carry`), as a move of EOS inside EOS padding
changes nothing. `select: content`: an operation selected on anything that is not content (slack, an
end token, anything past a committed end token; see `perturb.content`) passes to the row's next
content commit, so models with different padding get the same number of content moves. Every row
records `content_moves` and `content_fraction` (content moves / gen_length) either way.
Prompt and padding are never touched: operators only see the generated region.

Shift policy. The token the sampler is about to commit at i is committed at i +/- d instead, and i
stays masked for the model to fill later. The target must be a generated position that is still
masked and not being committed in the same step; otherwise the other direction is tried, and
otherwise the operation is carried over.

Under a KV cache (`--cache prefix|dual`): before each forward pass the sampler compares every cached
position of a row with the token it held when the cache was built; any difference (a move into or out of
a cached position, or a re-masked committed token) invalidates that row's cache, so it gets a full
forward pass. Operators need not declare anything; `post_hoc` operators never meet a cache. Tested with
a one-layer model, where the cache is exact (tests/test_decode_cache.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Protocol, Sequence

import torch

from mdlm_bench.decode.sampler import Commit, DecodeState, Hook
from mdlm_bench.perturb.content import RowPlan, content_record, content_vocab, is_content_commit, stochastic_round
from mdlm_bench.registry import Registry


class PerturbSpec(Protocol):
    """The fields of `perturb.spec.PerturbSpec` read here (the spec imports this module, not the reverse)."""

    operator: str
    fraction: float
    distance: int
    span: int
    direction: str
    schedule: str
    window: Sequence[float]  # [start, end] of decoding progress
    at_step: int
    on_slack: str
    select: str
    seed: int


@dataclass
class RowCtx:
    """One row of one step, as an operator sees it."""

    state: DecodeState
    b: int  # batch row
    a: int  # index of the row in commit.rows (-1 after decoding)
    commit: Optional[Commit]
    rng: random.Random
    log: List[dict]
    vocab: Sequence[int]

    @property
    def gen(self) -> torch.Tensor:
        return self.state.gen[self.b]

    @property
    def G(self) -> int:
        return self.state.gen.shape[1]

    def is_masked(self, t: int) -> bool:
        return 0 <= t < self.G and int(self.gen[t]) == self.state.mask_id

    def committing(self, t: int) -> bool:
        c = self.commit
        return c is not None and 0 <= t < c.transfer.shape[1] and bool(c.transfer[self.a, t])

    def is_content(self, t: int) -> bool:
        """A committed, non-slack token of the generated region."""
        if not 0 <= t < self.G:
            return False
        v = int(self.gen[t])
        return v != self.state.mask_id and v != self.state.slack_id

    def proposal(self, i: int) -> Optional[int]:
        """The token proposed at i this step, or None for slack (never displaced)."""
        tok = int(self.commit.tokens[self.a, i])
        return None if tok == self.state.slack_id else tok

    def place(self, t: int, token: int) -> None:
        self.gen[t] = token
        self.state.commit_step[self.b, t] = self.state.step

    def event(self, frm, to, token, **extra) -> None:
        self.log.append({"step": self.state.step, "from": frm, "to": to, "token": int(token), **extra})

    def directions(self, direction: str) -> List[int]:
        first = {"left": -1, "right": 1}.get(direction) or self.rng.choice((-1, 1))
        return [first, -first]


@dataclass
class Operator:
    at_commit: Callable[[RowCtx, int, PerturbSpec], bool]  # perturb the proposal at i; True if done
    post_hoc: Callable[[RowCtx, int, PerturbSpec], bool]  # perturb finished output at i
    moves: bool  # displaces tokens (False: a control)
    help: str


OPERATORS: Registry[Operator] = Registry("perturbation operator")


# --- shift -----------------------------------------------------------------------------------
def _shift_commit(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    token = ctx.proposal(i)
    if token is None:
        return False
    for sign in ctx.directions(spec.direction):
        t = i + sign * int(spec.distance)
        if ctx.is_masked(t) and not ctx.committing(t):
            ctx.commit.transfer[ctx.a, i] = False  # i stays masked; the model fills it later
            ctx.place(t, token)
            ctx.event(i, t, token)
            return True
    return False


def _shift_post(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    token = int(ctx.gen[i])
    for sign in ctx.directions(spec.direction):
        t = i + sign * int(spec.distance)
        if 0 <= t < ctx.G:
            ctx.place(t, token)  # overwrites t; i becomes a hole (mask, dropped from the text)
            ctx.gen[i] = ctx.state.mask_id
            ctx.event(i, t, token)
            return True
    return False


OPERATORS.add("shift", Operator(_shift_commit, _shift_post, True,
                                "commit a token d positions left/right of where the sampler chose"))


# --- swap ------------------------------------------------------------------------------------
def _swap_commit(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    c = ctx.commit
    p = ctx.proposal(i)
    if p is None:
        return False
    for sign in ctx.directions(spec.direction):
        t = i + sign
        if ctx.committing(t) and int(c.tokens[ctx.a, t]) != ctx.state.slack_id:
            o = int(c.tokens[ctx.a, t])
            c.tokens[ctx.a, t], c.tokens[ctx.a, i] = p, o
        elif ctx.is_content(t):
            o = int(ctx.gen[t])
            ctx.place(t, p)
            c.tokens[ctx.a, i] = o
        else:
            continue
        ctx.event(i, t, p)
        ctx.event(t, i, o)
        return True
    return False


def _swap_post(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    for sign in ctx.directions(spec.direction):
        t = i + sign
        if ctx.is_content(t):
            p, o = int(ctx.gen[i]), int(ctx.gen[t])
            ctx.gen[i], ctx.gen[t] = o, p
            ctx.event(i, t, p)
            ctx.event(t, i, o)
            return True
    return False


OPERATORS.add("swap", Operator(_swap_commit, _swap_post, True, "exchange two adjacent committed tokens"))


# --- span_shift ------------------------------------------------------------------------------
def _move_run(ctx: RowCtx, run: List[int], sign: int, values: List[int]) -> None:
    """Move tokens `values` at positions `run` (ascending) by `sign`; the vacated end is re-masked."""
    vacated = run[0] if sign > 0 else run[-1]
    for pos, v in zip(run, values):
        ctx.place(pos + sign, v)
        ctx.event(pos, pos + sign, v)
    ctx.gen[vacated] = ctx.state.mask_id
    ctx.state.commit_step[ctx.b, vacated] = -1


def _run_through(ctx: RowCtx, i: int, sign: int, span: int) -> List[int]:
    """Committed content positions contiguous with i on the side opposite to the move, with i."""
    run = [i]
    while len(run) < span and ctx.is_content(run[-1] - sign) and not ctx.committing(run[-1] - sign):
        run.append(run[-1] - sign)
    return sorted(run)


def _span_commit(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    c = ctx.commit
    p = ctx.proposal(i)
    if p is None:
        return False
    for sign in ctx.directions(spec.direction):
        run = _run_through(ctx, i, sign, int(spec.span))
        dest = run[-1] + 1 if sign > 0 else run[0] - 1
        if not (ctx.is_masked(dest) and not ctx.committing(dest)):
            continue
        c.transfer[ctx.a, i] = False
        values = [p if pos == i else int(ctx.gen[pos]) for pos in run]
        _move_run(ctx, run, sign, values)
        return True
    return False


def _span_post(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    for sign in ctx.directions(spec.direction):
        run = _run_through(ctx, i, sign, int(spec.span))
        dest = run[-1] + 1 if sign > 0 else run[0] - 1
        if 0 <= dest < ctx.G:
            _move_run(ctx, run, sign, [int(ctx.gen[pos]) for pos in run])
            return True
    return False


OPERATORS.add("span_shift", Operator(_span_commit, _span_post, True,
                                     "move a run of committed tokens one slot; the vacated slot is re-masked"))


# --- controls: nothing moves ------------------------------------------------------------------
def _replace_commit(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    old = ctx.proposal(i)
    if old is None:
        return False
    new = ctx.rng.choice(ctx.vocab)
    ctx.commit.tokens[ctx.a, i] = new
    ctx.event(i, i, new, old=old)
    return True


def _replace_post(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    old, new = int(ctx.gen[i]), ctx.rng.choice(ctx.vocab)
    ctx.gen[i] = new
    ctx.event(i, i, new, old=old)
    return True


def _remask_commit(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    token = ctx.proposal(i)
    if token is None or ctx.state.steps_left == 1:  # the block's last step must fill it
        return False
    ctx.commit.transfer[ctx.a, i] = False
    ctx.event(i, None, token)
    return True


def _remask_post(ctx: RowCtx, i: int, spec: PerturbSpec) -> bool:
    token = int(ctx.gen[i])
    ctx.gen[i] = ctx.state.mask_id
    ctx.event(i, None, token)
    return True


OPERATORS.add("replace", Operator(_replace_commit, _replace_post, False,
                                  "control: commit a random vocabulary token in place"))
OPERATORS.add("remask", Operator(_remask_commit, _remask_post, False,
                                 "control: re-mask a token the sampler was about to commit"))


# --- the hook ---------------------------------------------------------------------------------
class PerturbationHook(Hook):
    """Applies `spec` to a batch. row_keys[b] names row b (e.g. 'task|uid|seed') for its RNG."""

    def __init__(self, spec: PerturbSpec, row_keys: Sequence[str], gen_length: int, vocab: Sequence[int]):
        self.spec = spec
        self.op = OPERATORS.get(spec.operator)
        self.G = gen_length
        self.vocab = list(vocab)
        lo, hi = 0, gen_length
        if spec.schedule == "window":
            lo, hi = int(round(spec.window[0] * gen_length)), int(round(spec.window[1] * gen_length))
        self.plans: List[RowPlan] = []
        for key in row_keys:
            rng = random.Random(f"{spec.seed}|{key}")
            budget = stochastic_round(spec.fraction * gen_length, rng) if spec.fraction > 0 else 0
            selected = []
            if spec.schedule in ("every_step", "window"):
                budget = min(budget, hi - lo)
                selected = sorted(rng.sample(range(lo, hi), budget))
            self.plans.append(RowPlan(rng=rng, budget=budget, selected=selected))

    def on_commit(self, state: DecodeState, commit: Commit) -> None:
        sched = self.spec.schedule
        if sched == "post_hoc" or (sched == "once" and state.step != self.spec.at_step):
            return
        counts = commit.transfer.sum(-1).tolist()
        rows = commit.rows.tolist()
        for a, (b, n) in enumerate(zip(rows, counts)):
            plan = self.plans[b]
            if plan.budget == 0 or n == 0:
                continue
            if sched == "once":
                positions = commit.transfer[a].nonzero().flatten().tolist()
                ctx = RowCtx(state, b, a, commit, plan.rng, plan.log, self.vocab)
                if self.spec.select == "content":
                    positions = [i for i in positions if self._content(ctx, i)]
                for i in plan.rng.sample(positions, min(plan.budget, len(positions))):
                    if self._spend_on_slack(ctx, plan, i):
                        continue
                    self._apply(ctx, plan, i)
                plan.budget = plan.done + plan.spent  # the step has passed; what could not be placed is skipped
                plan.pending = 0
                continue
            first = plan.ordinal
            plan.ordinal += n
            hit = plan.pending > 0 or (plan.selected and plan.selected[0] < first + n)
            if not hit:
                continue
            ctx = RowCtx(state, b, a, commit, plan.rng, plan.log, self.vocab)
            positions = commit.transfer[a].nonzero().flatten().tolist()
            for k, i in enumerate(positions):
                while plan.selected and plan.selected[0] <= first + k:
                    plan.selected.pop(0)
                    plan.pending += 1
                if not plan.pending or (self.spec.select == "content" and not self._content(ctx, i)):
                    continue  # under select: content the operation waits for the next content commit
                if self._spend_on_slack(ctx, plan, i) or self._apply(ctx, plan, i):
                    plan.pending -= 1

    def _content(self, ctx: RowCtx, i: int, token: Optional[int] = None) -> bool:
        tok = int(ctx.commit.tokens[ctx.a, i]) if token is None else token
        return is_content_commit(ctx.gen, i, tok, ctx.state.eos_ids, ctx.state.slack_id)

    def _apply(self, ctx: RowCtx, plan: RowPlan, i: int, post: bool = False) -> bool:
        """Run the operator at i; count it done, and a content move when it moved content."""
        content = self.op.moves and self._content(ctx, i, int(ctx.gen[i]) if post else None)
        ok = (self.op.post_hoc if post else self.op.at_commit)(ctx, i, self.spec)
        plan.done += int(ok)
        plan.content += int(ok and content)
        return ok

    def _spend_on_slack(self, ctx: RowCtx, plan: RowPlan, i: int) -> bool:
        """Use the operation up on a slack proposed at i (on_slack: spend); True if it was."""
        if self.spec.on_slack != "spend" or int(ctx.commit.tokens[ctx.a, i]) != ctx.state.slack_id:
            return False
        plan.spent += 1
        ctx.event(i, i, ctx.state.slack_id, spent_on_slack=True)
        return True

    def on_finish(self, state: DecodeState) -> None:
        if self.spec.schedule != "post_hoc":
            return
        for b, plan in enumerate(self.plans):
            if plan.budget == 0:
                continue
            ctx = RowCtx(state, b, -1, None, plan.rng, plan.log, self.vocab)
            content = [t for t in range(self.G) if ctx.is_content(t)]
            if self.spec.select == "content":
                content = [t for t in content if self._content(ctx, t, int(ctx.gen[t]))]
            for i in plan.rng.sample(content, min(plan.budget, len(content))):
                if ctx.is_content(i):
                    self._apply(ctx, plan, i, post=True)

    def record(self, b: int) -> Dict[str, object]:
        """What was done to row b, for the generations file."""
        plan = self.plans[b]
        return {
            "events": plan.log,
            "requested_fraction": self.spec.fraction,
            "effective_fraction": plan.done / self.G,
            "skipped": plan.budget - plan.done - plan.spent,
            "spent_on_slack": plan.spent,
            "displaced_tokens": sum(1 for e in plan.log if e["to"] is not None and e["to"] != e["from"]),
            **content_record(plan.content, self.G),
        }


def make_hook(spec: Optional[PerturbSpec], model, row_keys: Sequence[str], gen_length: int):
    if spec is None:
        return None
    return PerturbationHook(spec, row_keys, gen_length, content_vocab(model))
