"""Monte Carlo ELBO estimator: exact enumeration of the same bound, hand-computed cases, greedy unmasking."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from mdlm_bench.evaluate.likelihood import (
    greedy_matches,
    masked_logits,
    mc_loglikelihood,
    request_seed,
    rolling_windows,
    sample_masks,
    stratified_mask_counts,
)


def exact_bound(model, prompt, target):
    """(1/L) sum_l (L/l) E_{|M|=l}[sum_{j in M} log p(y_j | masked)], every mask pattern enumerated."""
    L, P = len(target), len(prompt)
    by_size = {}
    for size in range(1, L + 1):
        for subset in itertools.combinations(range(L), size):
            x = list(prompt) + [model.mask_id if j in subset else t for j, t in enumerate(target)]
            by_size.setdefault(size, []).append((subset, x))
    total = 0.0
    for size, rows in by_size.items():
        with torch.no_grad():
            logp = F.log_softmax(model.logits(torch.tensor([x for _, x in rows])).float(), -1)
        vals = [sum(float(logp[k, P + j, target[j]]) for j in subset) * L / size
                for k, (subset, _) in enumerate(rows)]
        total += sum(vals) / len(vals)
    return total / L


@pytest.fixture(scope="module")
def sharp_model(tiny_path):
    """The tiny random model with a 10x output head: predictions that depend visibly on what is masked."""
    from mdlm_bench.models import load_model

    m = load_model(tiny_path)
    with torch.no_grad():
        m.model.get_output_embeddings().weight.mul_(10.0)
    return m


class ConstantModel:
    """A stand-in MDLM whose logits ignore the input; records every input it sees."""

    mask_id, pad_id, max_positions = 0, 1, None

    def __init__(self, logits_row):
        self.row = torch.as_tensor(logits_row, dtype=torch.float32)
        self.device = torch.device("cpu")
        self.seen = []

    def logits(self, ids, attn=None, keep_last=None):
        self.seen.append((ids.clone(), attn.clone()))
        n = keep_last or ids.shape[1]
        return self.row.expand(ids.shape[0], n, -1).clone()


def test_stratified_counts_cover_every_count_evenly():
    g = torch.Generator().manual_seed(0)
    for L, n in [(5, 5), (5, 20), (7, 3), (1, 4), (12, 64)]:
        for _ in range(20):
            c = stratified_mask_counts(L, n, g)
            assert c.shape == (n,) and int(c.min()) >= 1 and int(c.max()) <= L
            hist = torch.bincount(c, minlength=L + 1)[1:]
            # a stratified grid gives each count floor or ceil of n/L samples
            assert int(hist.min()) >= n // L and int(hist.max()) <= -(-n // L)


def test_stratified_counts_are_uniform_on_average():
    g = torch.Generator().manual_seed(1)
    L, n = 6, 4  # n < L: which counts appear depends on the random offset
    counts = torch.cat([stratified_mask_counts(L, n, g) for _ in range(3000)])
    hist = torch.bincount(counts, minlength=L + 1)[1:].numpy()
    assert stats.chisquare(hist).pvalue > 1e-4


def test_masks_have_the_drawn_counts_at_uniform_positions():
    g = torch.Generator().manual_seed(2)
    L = 6
    counts = torch.tensor([1, 2, 3, 6, 4] * 800)
    masks = sample_masks(counts, L, g)
    assert torch.equal(masks.sum(-1), counts)
    ones = masks[counts == 1].float().sum(0).numpy()  # where the single masked position falls
    assert stats.chisquare(ones).pvalue > 1e-4


def test_uniform_logits_give_exactly_minus_L_log_V():
    """Every sample is (L/l) * l * (-log V): the L/l weighting makes the estimate exact and noiseless."""
    V, L = 8, 5
    m = ConstantModel(torch.zeros(V))
    (est,) = mc_loglikelihood(m, [([3, 4, 5], [2, 3, 4, 5, 6])], mc_num=16, batch_size=5)
    assert est.mean == pytest.approx(-L * math.log(V), abs=1e-5)
    assert est.std_err == pytest.approx(0.0, abs=1e-6) and est.n == 16


def test_unequal_token_probabilities_average_to_their_sum():
    """With input-independent logits the bound equals sum_j log p(y_j); its estimate must match within MC error."""
    logits = torch.tensor([0.0, 0.0, 2.0, -1.0, 0.5, 1.0])
    logp = F.log_softmax(logits, -1)
    target = [2, 3, 4, 5, 3, 2, 5]
    m = ConstantModel(logits)
    (est,) = mc_loglikelihood(m, [([4], target)], mc_num=512, batch_size=128)
    truth = float(sum(logp[t] for t in target))
    assert abs(est.mean - truth) < 4 * est.std_err
    assert est.std_err > 0


def test_prompt_never_masked_and_only_continuation_scored():
    m = ConstantModel(torch.zeros(10))
    pairs = [([5, 6, 7], [2, 3, 4, 5]), ([8], [9, 2]), ([], [3, 3, 3])]
    ests = mc_loglikelihood(m, pairs, mc_num=8, batch_size=7)
    assert [e.n for e in ests] == [8, 8, 8]
    n_rows = 0
    for ids, attn in m.seen:
        for row, a in zip(ids.tolist(), attn.tolist()):
            real = [t for t, keep in zip(row, a) if keep]
            pair = next(p for p in pairs if len(p[0]) + len(p[1]) == len(real) and real[:len(p[0])] == p[0])
            prompt, target = pair
            tail = real[len(prompt):]
            masked = [k for k, t in enumerate(tail) if t == m.mask_id]
            assert 1 <= len(masked) <= len(target)
            assert all(t == target[k] for k, t in enumerate(tail) if k not in masked)
            n_rows += 1
    assert n_rows == 24


def test_estimate_matches_exact_enumeration_of_the_bound(sharp_model):
    tok = sharp_model.tokenizer
    prompt = tok("copy: abc", add_special_tokens=False)["input_ids"]
    target = tok("abcde", add_special_tokens=False)["input_ids"]
    exact = exact_bound(sharp_model, prompt, target)
    (est,) = mc_loglikelihood(sharp_model, [(prompt, target)], mc_num=1024, batch_size=256, seed=3)
    z = (est.mean - exact) / est.std_err
    assert abs(z) < 4, (est, exact)
    # the check has teeth: scoring all positions at once (no L/l average over mask sizes) is far off
    with torch.no_grad():
        x = torch.tensor([prompt + [sharp_model.mask_id] * len(target)])
        lp = F.log_softmax(sharp_model.logits(x).float(), -1)[0, len(prompt):]
    all_masked = float(sum(lp[j, t] for j, t in enumerate(target)))
    assert abs(all_masked - exact) > 8 * est.std_err


def test_estimate_does_not_depend_on_batch_mates(tiny_model):
    tok = tiny_model.tokenizer
    a = (tok("reverse: ab")["input_ids"], tok("ba")["input_ids"])
    b = (tok("x")["input_ids"], tok("longer target")["input_ids"])
    alone = mc_loglikelihood(tiny_model, [a], mc_num=16, batch_size=16)[0]
    mixed = mc_loglikelihood(tiny_model, [b, a], mc_num=16, batch_size=5)[1]
    assert mixed.mean == pytest.approx(alone.mean, abs=1e-4)
    assert request_seed(0, a[0], a[1]) != request_seed(1, a[0], a[1])


def test_cfg_logits_follow_llada_formula(tiny_model):
    ids = torch.tensor([[10, 11, 12, tiny_model.mask_id, tiny_model.mask_id]])
    attn = torch.ones_like(ids, dtype=torch.bool)
    pmask = torch.tensor([[True, True, True, False, False]])
    got = masked_logits(tiny_model, ids, attn, pmask, keep_last=2, cfg_scale=1.5)
    with torch.no_grad():
        cond = tiny_model.logits(ids)[:, -2:]
        unc = tiny_model.logits(ids.masked_fill(pmask, tiny_model.mask_id))[:, -2:]
    torch.testing.assert_close(got, unc + 2.5 * (cond - unc), rtol=1e-4, atol=1e-4)


def reference_greedy(model, prompt, L):
    """All masked; each step commits the single most confident masked position to its argmax."""
    x = torch.tensor([list(prompt) + [model.mask_id] * L])
    P = len(prompt)
    for _ in range(L):
        with torch.no_grad():
            p = F.softmax(model.logits(x)[0, P:].float(), -1)
        conf, tok = p.max(-1)
        conf[x[0, P:] != model.mask_id] = -1.0
        j = int(conf.argmax())
        x[0, P + j] = tok[j]
    return x[0, P:].tolist()


def test_is_greedy_matches_reference_unmasking(sharp_model):
    tok = sharp_model.tokenizer
    prompts = [tok("copy: xy")["input_ids"], tok("sort: dcba")["input_ids"]]
    greedy = [reference_greedy(sharp_model, p, 4) for p in prompts]
    wrong = [g[:2] + [(g[2] + 1) % 90 + 10] + g[3:] for g in greedy]
    pairs = [(prompts[0], greedy[0]), (prompts[1], greedy[1]), (prompts[0], wrong[0]), (prompts[1], wrong[1]),
             (prompts[0], [])]
    assert greedy_matches(sharp_model, pairs, batch_size=3) == [True, True, False, False, True]


def test_rolling_windows_score_each_token_once_within_the_limit():
    for n, M in [(0, 4), (1, 4), (4, 4), (10, 4), (9, 3), (5, 1)]:
        wins = rolling_windows(n, M)
        scored = [i for _, s, e in wins for i in range(s, e)]
        assert scored == list(range(n))
        assert all(e - c <= M and c <= s < e for c, s, e in wins)
        if wins and n >= M:
            c, s, e = wins[-1]
            assert e - c == M  # the last window is filled with context
