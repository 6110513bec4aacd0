"""Losses against independent references: brute-force alignment enumeration, gradcheck, hand-computed CE."""

import itertools
import math

import pytest
import torch

from mdlm_bench.train.losses import (
    LOSSES,
    ce_loss,
    masked_spans,
    slack_ctc_loss,
    span_ctc_loss,
)
from mdlm_bench.train.data import mask_batch

SLACK = 0


def brute_force_nll(log_probs: torch.Tensor, target: list, slack: int) -> float:
    """-log sum over every sequence of length N whose slack-deleted form equals target (no merging)."""
    n, v = log_probs.shape
    p = log_probs.double().exp()
    total = 0.0
    for seq in itertools.product(range(v), repeat=n):
        if [s for s in seq if s != slack] == list(target):
            total += math.prod(p[i, s].item() for i, s in enumerate(seq))
    return -math.log(total)


def random_log_probs(s, n, v, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(s, n, v, generator=g, dtype=torch.float64), -1).to(dtype)


@pytest.mark.parametrize("n,target", [(1, [1]), (3, [1]), (4, [2, 2]), (5, [1, 2, 1]), (4, []), (5, [3, 3, 3])])
def test_matches_brute_force(n, target):
    lp = random_log_probs(1, n, 4, seed=n + len(target))
    tgt = torch.tensor([target + [0] * (3 - len(target))])
    nll, feasible = slack_ctc_loss(lp, tgt, torch.tensor([n]), torch.tensor([len(target)]), SLACK)
    assert feasible.all()
    assert nll.item() == pytest.approx(brute_force_nll(lp[0], target, SLACK), rel=1e-5)


def test_batch_of_mixed_lengths_matches_each_alone():
    v = 4
    cases = [(5, [1, 2]), (3, [3, 3, 3]), (6, [2]), (2, [1, 1])]
    n_max = max(n for n, _ in cases)
    lp = random_log_probs(len(cases), n_max, v, seed=7)
    tgt = torch.tensor([t + [0] * (3 - len(t)) for _, t in cases])
    nll, _ = slack_ctc_loss(lp, tgt, torch.tensor([n for n, _ in cases]), torch.tensor([len(t) for _, t in cases]),
                            SLACK)
    for i, (n, t) in enumerate(cases):
        assert nll[i].item() == pytest.approx(brute_force_nll(lp[i, :n], t, SLACK), rel=1e-5)


def test_repeats_are_kept_not_merged():
    # "a a" must be emitted twice; a single 'a' plus slack is not an alignment of it.
    lp = torch.log(torch.tensor([[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]], dtype=torch.float64).clamp_min(1e-300))
    nll, _ = slack_ctc_loss(lp, torch.tensor([[1, 1]]), torch.tensor([2]), torch.tensor([2]), SLACK)
    assert nll.item() == pytest.approx(-math.log(0.25))
    nll1, _ = slack_ctc_loss(lp, torch.tensor([[1, 0]]), torch.tensor([2]), torch.tensor([1]), SLACK)
    assert nll1.item() == pytest.approx(-math.log(0.5))  # a_ or _a


def test_no_room_is_sum_of_per_position_ce():
    lp = random_log_probs(2, 4, 5, seed=3)
    tgt = torch.tensor([[1, 2, 2, 4], [3, 1, 4, 4]])
    nll, _ = slack_ctc_loss(lp, tgt, torch.tensor([4, 4]), torch.tensor([4, 4]), SLACK)
    ce = torch.nn.functional.nll_loss(lp.reshape(-1, 5), tgt.reshape(-1), reduction="none").reshape(2, 4).sum(1)
    torch.testing.assert_close(nll.double(), ce, rtol=1e-6, atol=1e-6)


def test_gradcheck_float64():
    v, n = 4, 5
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(3, n, v, generator=g, dtype=torch.float64, requires_grad=True)
    tgt = torch.tensor([[1, 2, 0], [3, 3, 3], [2, 0, 0]])
    lens = torch.tensor([5, 4, 3])
    tlens = torch.tensor([2, 3, 1])

    def f(x):
        nll, _ = slack_ctc_loss(torch.log_softmax(x, -1), tgt, lens, tlens, SLACK)
        return nll

    assert torch.autograd.gradcheck(f, (logits,), eps=1e-6, atol=1e-5)


def test_infeasible_is_finite_zero_gradient_and_counted():
    logits = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    tgt = torch.tensor([[1, 2, 3, 1], [1, 0, 0, 0]])
    nll, feasible = slack_ctc_loss(torch.log_softmax(logits, -1), tgt, torch.tensor([3, 3]), torch.tensor([4, 1]),
                                   SLACK)
    assert feasible.tolist() == [False, True]
    assert torch.isfinite(nll).all() and nll[0].item() == 0.0
    nll.sum().backward()
    assert torch.all(logits.grad[0] == 0)
    assert logits.grad[1].abs().sum() > 0


def test_bf16_close_to_float32():
    lp32 = random_log_probs(4, 24, 16, seed=5, dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    tgt = torch.randint(1, 16, (4, 20), generator=g)
    lens = torch.tensor([24, 20, 16, 22])
    tlens = torch.tensor([20, 12, 16, 3])
    ref, _ = slack_ctc_loss(lp32, tgt, lens, tlens, SLACK)
    lp16 = lp32.to(torch.bfloat16).requires_grad_()
    out, _ = slack_ctc_loss(lp16, tgt, lens, tlens, SLACK)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=0.2)
    out.sum().backward()
    assert lp16.grad.dtype == torch.bfloat16 and torch.isfinite(lp16.grad.float()).all()


def test_ce_loss_hand_computed():
    # One sample, L=3, V=2. Masked positions 1 and 2; p_mask=0.5; answer length 2.
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [0.0, 0.0]]])
    targets = torch.tensor([[0, 0, 1]])
    mask = torch.tensor([[False, True, True]])
    loss = ce_loss(logits, targets, mask, torch.tensor([0.5]), torch.tensor([2]))
    expected = (-math.log(0.75) - math.log(0.5)) / 0.5 / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # Batch mean over two samples, the second with nothing masked.
    loss2 = ce_loss(logits.repeat(2, 1, 1), targets.repeat(2, 1), torch.stack([mask[0], torch.zeros(3, dtype=bool)]),
                    torch.tensor([0.5, 0.9]), torch.tensor([2, 2]))
    assert loss2.item() == pytest.approx(expected / 2, rel=1e-6)


def test_mask_batch_is_seeded_and_never_masks_prompt():
    resp = torch.zeros(64, 40, dtype=torch.bool)
    resp[:, 10:] = True
    m1, p1 = mask_batch(resp, torch.Generator().manual_seed(3))
    m2, p2 = mask_batch(resp, torch.Generator().manual_seed(3))
    assert torch.equal(m1, m2) and torch.equal(p1, p2)
    assert not m1[:, :10].any()
    assert ((p1 >= 1e-3) & (p1 <= 1)).all()
    frac = m1[:, 10:].float().mean(1)
    assert torch.corrcoef(torch.stack([frac, p1]))[0, 1] > 0.8


def test_masked_spans():
    mask = torch.tensor([[0, 1, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    resp = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]], dtype=torch.bool)
    assert masked_spans(mask, resp).tolist() == [[0, 1, 3], [0, 4, 5], [0, 6, 7], [1, 2, 7]]


def test_span_ctc_matches_per_span_brute_force():
    slack, v = 0, 4
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 6, v, generator=g, dtype=torch.float64)
    targets = torch.tensor([[3, 1, 0, 2, 2, 0], [1, 2, 3, 0, 1, 1]])
    mask = torch.tensor([[0, 1, 1, 1, 0, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    resp = torch.tensor([[0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    p_mask = torch.tensor([0.4, 0.8])
    alen = torch.tensor([5, 4])
    got = span_ctc_loss(logits, targets, mask, p_mask, alen, resp, slack)
    lp = torch.log_softmax(logits, -1)
    ref = (brute_force_nll(lp[0, 1:4], [1, 2], slack) / (0.4 * 5)
           + brute_force_nll(lp[0, 5:6], [], slack) / (0.4 * 5)
           + brute_force_nll(lp[1, 2:6], [3, 1, 1], slack) / (0.8 * 4)) / 2
    assert got.item() == pytest.approx(ref, rel=1e-5)


def test_span_ctc_without_slack_in_targets_and_no_room_equals_ce():
    # Every span has N = U (no slack tokens in the clean canvas), so slack-CTC == CE on the same mask.
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 8, 6, generator=g)
    targets = torch.randint(1, 6, (3, 8), generator=g)
    resp = torch.ones(3, 8, dtype=torch.bool)
    resp[:, :2] = False
    mask, p_mask = mask_batch(resp, torch.Generator().manual_seed(0))
    alen = resp.sum(1)
    a = span_ctc_loss(logits, targets, mask, p_mask, alen, resp, 0)
    b = ce_loss(logits, targets, mask, p_mask, alen)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_registry_names():
    assert list(LOSSES) == ["ce", "slack_ctc"]


# --- alignment band and CE anchor ---------------------------------------------------------------
def brute_force_banded_nll(log_probs: torch.Tensor, target: list, slack: int, band: int, ref: list) -> float:
    """-log sum over the alignments that put target u at a position n with |n - ref[u]| <= band
    (every other position slack), enumerated as the U-subsets of the N positions."""
    n = log_probs.shape[0]
    lp = log_probs.double()
    total = 0.0
    for pos in itertools.combinations(range(n), len(target)):
        if any(abs(p - r) > band for p, r in zip(pos, ref)):
            continue
        chosen = dict(zip(pos, target))
        total += math.exp(sum(lp[i, chosen[i]].item() if i in chosen else lp[i, slack].item() for i in range(n)))
    return -math.log(total)


@pytest.mark.parametrize("band", [1, 2, 4])
@pytest.mark.parametrize("n,target,ref", [(5, [1, 2], [0, 3]), (6, [3, 3, 1], [1, 2, 5]), (7, [2, 1, 1, 3], [0, 1, 2, 3]),
                                          (4, [1], [3]), (3, [1, 2, 3], [0, 1, 2])])
def test_banded_matches_brute_force(band, n, target, ref):
    lp = random_log_probs(1, n, 5, seed=band * 10 + n)
    pad = 4 - len(target)
    nll, _ = slack_ctc_loss(lp, torch.tensor([target + [0] * pad]), torch.tensor([n]), torch.tensor([len(target)]),
                            SLACK, band=band, ref=torch.tensor([ref + [0] * pad]))
    assert nll.item() == pytest.approx(brute_force_banded_nll(lp[0], target, SLACK, band, ref), rel=1e-9)


def test_band_wider_than_span_is_unrestricted_and_banded_gradcheck():
    lp = random_log_probs(1, 6, 4, seed=3)
    args = (torch.tensor([[1, 2, 3]]), torch.tensor([6]), torch.tensor([3]), SLACK)
    free, _ = slack_ctc_loss(lp, *args)
    wide, _ = slack_ctc_loss(lp, *args, band=6, ref=torch.tensor([[0, 2, 4]]))
    tight, _ = slack_ctc_loss(lp, *args, band=1, ref=torch.tensor([[0, 2, 4]]))
    assert wide.item() == pytest.approx(free.item(), rel=1e-12)
    assert tight.item() > free.item()  # fewer alignments, less mass
    x = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda z: slack_ctc_loss(torch.log_softmax(z, -1), *args, band=1,
                                                      ref=torch.tensor([[0, 2, 4]]))[0].sum(), (x,))


def test_span_ctc_band_uses_clean_slots_inside_each_span():
    slack, v = 0, 4
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(1, 7, v, generator=g, dtype=torch.float64)
    targets = torch.tensor([[3, 1, 0, 2, 0, 0, 2]])  # clean canvas; slack = 0
    mask = torch.tensor([[0, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)  # one span: positions 1..5
    resp = torch.ones(1, 7, dtype=torch.bool)
    got = span_ctc_loss(logits, targets, mask, torch.tensor([0.5]), torch.tensor([7]), resp, slack, band=1)
    lp = torch.log_softmax(logits, -1)
    # span tokens [1, 0, 2, 0, 0]: targets [1, 2] at span slots [0, 2]
    ref = brute_force_banded_nll(lp[0, 1:6], [1, 2], slack, 1, [0, 2]) / (0.5 * 7)
    assert got.item() == pytest.approx(ref, rel=1e-6)  # span_ctc_loss accumulates in float32
    assert span_ctc_loss(logits, targets, mask, torch.tensor([0.5]), torch.tensor([7]), resp, slack).item() < got.item()


def test_ce_anchor_is_the_weighted_sum():
    from types import SimpleNamespace

    from mdlm_bench.train.losses import loss_for

    g = torch.Generator().manual_seed(6)
    logits = torch.randn(2, 6, 5, generator=g)
    targets = torch.tensor([[1, 0, 2, 3, 0, 4], [2, 2, 0, 1, 4, 4]])
    resp = torch.ones(2, 6, dtype=torch.bool)
    mask, p_mask = mask_batch(resp, torch.Generator().manual_seed(1))
    batch = {"targets": targets, "mask": mask, "p_mask": p_mask, "answer_lengths": torch.tensor([6, 6]),
             "response_mask": resp}
    ce = ce_loss(logits, targets, mask, p_mask, batch["answer_lengths"])
    ctc = span_ctc_loss(logits, targets, mask, p_mask, batch["answer_lengths"], resp, 0, band=2)
    f = loss_for(SimpleNamespace(loss="slack_ctc", ctc_band=2, ce_weight=0.25))
    assert f(logits, batch, 0).item() == pytest.approx(0.25 * ce.item() + 0.75 * ctc.item(), rel=1e-6)
    assert loss_for(SimpleNamespace(loss="ce", ctc_band=0, ce_weight=0.0))(logits, batch, 0).item() == \
        pytest.approx(ce.item(), rel=1e-6)
