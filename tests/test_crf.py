"""CRF checked against brute force over every tag sequence (itertools.product), as pytorch-crf does."""
import itertools
import math

import pytest
import torch

from textrnn.modules.crf import CRF, DISALLOWED

LABELS = ["O", "B-X", "I-X", "B-Y", "I-Y"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)  # CRF() draws its initial scores from the global generator


def iob2_constraints():
    """Hand-built IOB2 masks over LABELS: I-T only after B-T or I-T, never first."""
    k = len(LABELS)
    allowed = torch.ones(k, k, dtype=torch.bool)
    for j, to in enumerate(LABELS):
        if to.startswith("I-"):
            for i, frm in enumerate(LABELS):
                allowed[i, j] = frm in ("B-" + to[2:], to)
    start = torch.tensor([not lab.startswith("I-") for lab in LABELS])
    end = torch.ones(k, dtype=torch.bool)
    return allowed, start, end


def random_constraints(k, gen):
    """Random masks that still leave a valid path: tag 0 may start, end and follow itself."""
    allowed = torch.rand(k, k, generator=gen) > 0.4
    allowed[0, 0] = True
    start = torch.rand(k, generator=gen) > 0.4
    end = torch.rand(k, generator=gen) > 0.4
    start[0] = end[0] = True
    return allowed, start, end


def make_crf(k, constrained, seed=0):
    gen = torch.Generator().manual_seed(seed)
    masks = random_constraints(k, gen) if constrained else (None, None, None)
    crf = CRF(k, *masks)
    with torch.no_grad():  # scores wider than the init range make the checks sharper
        for p in crf.parameters():
            p.uniform_(-2, 2, generator=gen)
    return crf


def random_batch(batch, seq, k, lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, seq, k, generator=gen) * 2
    tags = torch.randint(k, (batch, seq), generator=gen)
    mask = torch.arange(seq)[None, :] < torch.tensor(lengths)[:, None]
    return emissions, tags, mask


def path_score(crf, em, path):
    """Score of one path, computed by hand with constraints applied as DISALLOWED."""
    def s(value, ok):
        return value.item() if ok else DISALLOWED
    total = s(crf.start_transitions[path[0]], crf.allowed_start[path[0]]) + em[0, path[0]].item()
    for t in range(1, len(path)):
        total += s(crf.transitions[path[t - 1], path[t]], crf.allowed[path[t - 1], path[t]])
        total += em[t, path[t]].item()
    return total + s(crf.end_transitions[path[-1]], crf.allowed_end[path[-1]])


def brute_force(crf, em, n):
    """All paths of length n with their scores, log Z and per-token marginals."""
    paths = list(itertools.product(range(crf.num_tags), repeat=n))
    scores = torch.tensor([path_score(crf, em, p) for p in paths], dtype=torch.float64)
    log_z = torch.logsumexp(scores, 0)
    probs = torch.exp(scores - log_z)
    marg = torch.zeros(n, crf.num_tags, dtype=torch.float64)
    for p, pr in zip(paths, probs):
        for t, tag in enumerate(p):
            marg[t, tag] += pr
    return paths, scores, log_z.item(), marg


CASES = [(k, seq, constrained) for k in (3, 4) for seq in (1, 2, 4) for constrained in (False, True)]


@pytest.mark.parametrize("k,seq,constrained", CASES)
def test_matches_brute_force(k, seq, constrained):
    crf = make_crf(k, constrained, seed=k * 10 + seq)
    lengths = [seq, max(1, seq - 1), 1]
    emissions, tags, mask = random_batch(3, seq, k, lengths, seed=seq)
    with torch.no_grad():
        llh = crf.log_likelihood(emissions, tags, mask)
        log_z = crf.log_partition(emissions, mask)
        marg = crf.marginals(emissions, mask)
        best_tags, best_scores = crf.viterbi(emissions, mask)
    decoded = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        paths, scores, bf_log_z, bf_marg = brute_force(crf, emissions[b], n)
        gold = tuple(tags[b, :n].tolist())
        tol = dict(rel=1e-5, abs=1e-3)  # DISALLOWED terms are large; float32 keeps ~1e-3 there
        assert log_z[b].item() == pytest.approx(bf_log_z, **tol)
        assert llh[b].item() == pytest.approx(scores[paths.index(gold)].item() - bf_log_z, **tol)
        torch.testing.assert_close(marg[b, :n].double(), bf_marg, atol=1e-5, rtol=1e-4)
        assert marg[b, :n].sum(-1).sub(1).abs().max() < 1e-5
        assert marg[b, n:].abs().sum() == 0
        best = int(scores.argmax())
        assert decoded[b] == list(paths[best])
        assert best_tags[b, :n].tolist() == list(paths[best]) and best_tags[b, n:].eq(0).all()
        assert best_scores[b].item() == pytest.approx(scores[best].item(), **tol)


@pytest.mark.parametrize("reduction", ["sum", "mean", "token_mean", "none"])
def test_forward_reductions_and_gradients(reduction):
    crf = make_crf(5, constrained=False)
    emissions, tags, mask = random_batch(4, 6, 5, [6, 3, 1, 5])
    emissions.requires_grad_(True)
    loss = crf(emissions, tags, mask, reduction=reduction)
    nll = -crf.log_likelihood(emissions, tags, mask)
    expected = {"sum": nll.sum(), "mean": nll.mean(), "token_mean": nll.sum() / 15, "none": nll}[reduction]
    torch.testing.assert_close(loss, expected)
    loss.sum().backward()
    for p in [emissions, *crf.parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert emissions.grad[1, 3:].abs().sum() == 0  # padding gets no gradient


def test_constrained_gradients_finite_and_masked_scores_untouched():
    allowed, start, end = iob2_constraints()
    crf = CRF(len(LABELS), allowed, start, end)
    emissions, _, mask = random_batch(8, 7, 5, [7, 6, 5, 4, 3, 2, 1, 7])
    tags = torch.tensor(crf.decode(emissions, mask)[0]).expand(8, 7)  # a valid path
    crf(emissions, tags, torch.ones_like(mask)).backward()
    assert torch.isfinite(crf.transitions.grad).all()
    assert crf.transitions.grad[~allowed].abs().sum() == 0
    assert crf.start_transitions.grad[~start].abs().sum() == 0


def test_constrained_decoding_respects_iob2():
    allowed, start, end = iob2_constraints()
    crf = CRF(len(LABELS), allowed, start, end)
    lengths = torch.randint(1, 13, (200,), generator=torch.Generator().manual_seed(1)).tolist()
    emissions, _, mask = random_batch(200, 12, 5, lengths, seed=2)
    emissions = emissions * 5  # strong emissions try hard to force illegal paths
    emissions[:, :, [2, 4]] += 3  # and favour I- tags
    with torch.inference_mode():
        paths = crf.decode(emissions, mask)
    seen_i = 0
    for path, n in zip(paths, lengths):
        assert len(path) == n
        assert start[path[0]] and end[path[-1]]
        assert all(allowed[a, b] for a, b in zip(path, path[1:])), [LABELS[t] for t in path]
        seen_i += sum(t in (2, 4) for t in path)
    assert seen_i > 0  # the constraint shapes paths, it does not just forbid I- tags


def test_batch_equals_one_at_a_time():
    crf = make_crf(6, constrained=True, seed=3)
    lengths = [9, 1, 4, 9, 6]
    emissions, tags, mask = random_batch(5, 9, 6, lengths, seed=4)
    emissions[~mask] = 1e4  # garbage in the padding must not leak
    with torch.no_grad():
        paths = crf.decode(emissions, mask)
        llh = crf.log_likelihood(emissions, tags, mask)
        marg = crf.marginals(emissions, mask)
        for b, n in enumerate(lengths):
            one = emissions[b:b + 1, :n]
            assert crf.decode(one) == [paths[b]]
            torch.testing.assert_close(crf.log_likelihood(one, tags[b:b + 1, :n])[0], llh[b])
            torch.testing.assert_close(crf.marginals(one)[0], marg[b, :n])


def test_padding_tags_may_be_ignore_index_and_masks_may_be_uint8():
    crf = make_crf(4, constrained=False)
    emissions, tags, mask = random_batch(3, 5, 4, [5, 2, 3])
    expected = crf.log_likelihood(emissions, tags, mask)
    padded = tags.masked_fill(~mask, -100)
    torch.testing.assert_close(crf.log_likelihood(emissions, padded, mask.byte()), expected)


def test_half_precision_emissions_are_computed_in_float32():
    allowed, start, end = iob2_constraints()
    crf = CRF(5, allowed, start, end)
    emissions, tags, mask = random_batch(2, 10, 5, [10, 7])
    assert torch.isfinite(crf.log_partition(emissions.half(), mask)).all()
    assert crf.viterbi(emissions.bfloat16(), mask)[1].dtype == torch.float32


def test_state_dict_holds_only_parameters_and_constraints_come_from_constructor():
    allowed, start, end = iob2_constraints()
    crf = CRF(5, allowed, start, end)
    state = crf.state_dict()
    assert set(state) == {"transitions", "start_transitions", "end_transitions"}
    again = CRF(5, allowed, start, end)
    again.load_state_dict(state)
    emissions, _, mask = random_batch(3, 6, 5, [6, 4, 2])
    assert again.decode(emissions, mask) == crf.decode(emissions, mask)
    assert crf.constrained and not CRF(5).constrained


def test_init_range():
    crf = CRF(33)
    for p in crf.parameters():
        assert p.abs().max() <= 0.1


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda c: c.decode(torch.randn(2, 3, 7)), "expected last dimension of emissions is 9, got 7"),
        (lambda c: c.decode(torch.randn(2, 3)), "emissions must have dimension of 3"),
        (lambda c: c.decode(torch.randn(2, 0, 9)), "at least one timestep"),
        (lambda c: c.decode(torch.randn(2, 3, 9), torch.tensor([[0, 1, 1], [1, 1, 0]]).bool()),
         "mask of the first timestep must all be on"),
        (lambda c: c.decode(torch.randn(2, 3, 9), torch.tensor([[1, 0, 1], [1, 1, 0]]).bool()),
         "mask must be left-aligned"),
        (lambda c: c.marginals(torch.randn(2, 3, 9), torch.ones(2, 4, dtype=torch.bool)),
         r"dimensions of emissions and mask must match, got \(2, 3\) and \(2, 4\)"),
        (lambda c: c(torch.randn(2, 3, 9), torch.zeros(2, 4, dtype=torch.long)),
         r"dimensions of emissions and tags must match, got \(2, 3\) and \(2, 4\)"),
        (lambda c: c(torch.randn(2, 3, 9), torch.full((2, 3), 9)), r"tags must be in \[0, 9\)"),
        (lambda c: c(torch.randn(2, 3, 9), torch.zeros(2, 3, dtype=torch.long), reduction="avg"),
         "invalid reduction"),
    ],
)
def test_validation_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(CRF(9))


def test_constructor_validation():
    with pytest.raises(ValueError, match="invalid number of tags"):
        CRF(0)
    with pytest.raises(ValueError, match=r"expected allowed of shape \(3, 3\), got \(3, 4\)"):
        CRF(3, allowed=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="allowed_start must be a bool tensor"):
        CRF(3, allowed_start=torch.ones(3))


def test_marginals_sharpen_with_confident_emissions():
    crf = CRF(3)
    emissions = torch.zeros(1, 4, 3)
    emissions[0, :, 1] = 20.0
    marg = crf.marginals(emissions)
    assert marg[0, :, 1].min() > 1 - 1e-6
    assert math.isclose(marg.sum().item(), 4.0, rel_tol=1e-6)


@pytest.mark.parametrize("constrained", [False, True])
def test_span_probabilities_equal_brute_force(constrained):
    """P(tags on a span = path, and the next tag does not extend it), summed over all sequences."""
    torch.manual_seed(7)
    K, T = 3, 4
    allowed = torch.rand(K, K) > 0.3 if constrained else None
    if allowed is not None:
        allowed[:, 0] = True  # keep tag 0 reachable so every sentence has some valid path
    crf = CRF(K, allowed=allowed)
    emissions = torch.randn(2, T, K)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    spans = [(0, 1, [1, 2], [2]), (0, 0, [0], []), (1, 1, [2, 2], [1]), (1, 2, [1], [0, 2]), (0, 3, [2], [1])]
    got = crf.span_probabilities(emissions, mask, spans)
    for (b, first, path, stop_not), value in zip(spans, got):
        n = int(mask[b].sum())
        total, hit = 0.0, 0.0
        for seq in itertools.product(range(K), repeat=n):
            tags = torch.tensor([list(seq) + [0] * (T - n)])
            p = crf.log_likelihood(emissions[b:b + 1], tags, mask[b:b + 1]).exp().item()
            total += p
            nxt = first + len(path)
            if list(seq[first:nxt]) == list(path) and (nxt >= n or seq[nxt] not in stop_not):
                hit += p
        assert total == pytest.approx(1.0, abs=1e-4)
        assert value == pytest.approx(hit, abs=1e-5)
