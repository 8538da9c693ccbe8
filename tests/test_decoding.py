"""The numpy CRF decoder against the torch CRF module and against brute force."""
import itertools
import math

import numpy as np
import pytest
import torch

from textrnn import tags as tag_schemes
from textrnn.decoding import CRFDecoder
from textrnn.models.tagger import crf_constraints
from textrnn.modules.crf import CRF

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def pair(seed: int, constrained: bool = True, k: int = 5):
    """A torch CRF with random scores and the numpy decoder of the same scores."""
    torch.manual_seed(seed)
    constraints = crf_constraints(LABELS, "IOB2") if constrained else (None,) * 3
    crf = CRF(k, *constraints)
    with torch.no_grad():
        for p in (crf.transitions, crf.start_transitions, crf.end_transitions):
            p.normal_(0, 1.5)
    masks = [None if c is None else c.numpy() for c in constraints]
    decoder = CRFDecoder(*(p.detach().numpy() for p in (crf.transitions, crf.start_transitions,
                                                          crf.end_transitions)), *masks)
    return crf, decoder


def batch(seed: int, lengths, k: int = 5, scale: float = 3.0):
    torch.manual_seed(seed)
    emissions = torch.randn(len(lengths), max(lengths), k) * scale
    lengths = torch.tensor(lengths)
    mask = torch.arange(emissions.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
    return emissions, lengths, mask


@pytest.mark.parametrize("constrained", [True, False])
def test_viterbi_equals_the_torch_module_exactly(constrained):
    crf, decoder = pair(0, constrained)
    for seed in range(5):
        emissions, lengths, mask = batch(seed, [9, 1, 4, 9, 6, 2, 30, 17])
        paths = decoder.viterbi(emissions.numpy(), lengths.numpy())
        expected, _ = crf.viterbi(emissions, mask)
        assert paths.tolist() == expected.tolist()
    if constrained:
        for row, n in zip(paths.tolist(), lengths.tolist()):
            assert tag_schemes.is_valid([LABELS[t] for t in row[:n]], "IOB2")


def test_viterbi_finds_the_brute_force_best_path():
    crf, decoder = pair(1, constrained=False, k=3)
    emissions, lengths, mask = batch(2, [5, 3], k=3)
    paths = decoder.viterbi(emissions.numpy(), lengths.numpy())
    for b, n in enumerate(lengths.tolist()):
        best = max(itertools.product(range(3), repeat=n),
                   key=lambda seq: crf.log_likelihood(emissions[b:b + 1, :n], torch.tensor([seq])).item())
        assert paths[b, :n].tolist() == list(best) and (paths[b, n:] == 0).all()


def test_marginals_and_partition_match_the_torch_module():
    crf, decoder = pair(3)
    emissions, lengths, mask = batch(4, [12, 3, 7, 1])
    alphas, betas = decoder.forward_backward(emissions.numpy(), lengths.numpy())
    marginals = decoder.marginals((alphas, betas), lengths.numpy())
    expected = crf.marginals(emissions, mask).detach().double().numpy()
    assert np.abs(marginals - expected).max() < 1e-5
    assert np.allclose(marginals.sum(axis=2), mask.numpy())
    log_z = np.log(np.exp(alphas[:, 0] + betas[:, 0]).sum(axis=1))
    assert np.allclose(log_z, crf.log_partition(emissions, mask).detach().double().numpy(), atol=1e-4)


def test_forward_backward_is_exact_where_float32_rounds():
    """Long sentences with large scores: float64 agrees with itself in log space to 1e-9."""
    crf, decoder = pair(5)
    emissions, lengths, mask = batch(6, [200, 150], scale=30.0)
    alphas, betas = decoder.forward_backward(emissions.numpy(), lengths.numpy())
    per_position = np.log(np.exp(alphas + betas - (alphas + betas).max(axis=2, keepdims=True)).sum(axis=2)) \
        + (alphas + betas).max(axis=2)  # log Z, computed at every position
    for b, n in enumerate(lengths.tolist()):
        assert np.ptp(per_position[b, :n]) < 1e-9 * abs(per_position[b, 0])


@pytest.mark.parametrize("constrained", [False, True])
def test_span_probabilities_equal_brute_force_and_the_torch_module(constrained):
    torch.manual_seed(7)
    k, seq = 3, 4
    allowed = torch.rand(k, k) > 0.3 if constrained else None
    if allowed is not None:
        allowed[:, 0] = True  # keep tag 0 reachable so every sentence has some valid path
    crf = CRF(k, allowed=allowed)
    decoder = CRFDecoder(crf.transitions.detach().numpy(), crf.start_transitions.detach().numpy(),
                         crf.end_transitions.detach().numpy(), None if allowed is None else allowed.numpy())
    emissions = torch.randn(2, seq, k)
    lengths = torch.tensor([4, 3])
    mask = torch.arange(seq).unsqueeze(0) < lengths.unsqueeze(1)
    paths = np.array([[0, 1, 2, 2], [0, 2, 2, 0]])
    spans = [(0, 1, 3, [2]), (0, 0, 1, []), (1, 1, 3, [1]), (1, 2, 3, [0, 2]), (0, 3, 4, [1])]
    extends = np.zeros((len(spans), k), dtype=bool)
    for i, (_, _, _, stop_not) in enumerate(spans):
        extends[i, stop_not] = True
    state = decoder.forward_backward(emissions.numpy(), lengths.numpy())
    got = decoder.span_probabilities(emissions.numpy(), lengths.numpy(), state, paths,
                                     *(np.array([s[i] for s in spans]) for i in range(3)), extends)
    torch_spans = [(b, first, paths[b, first:end].tolist(), stop) for b, first, end, stop in spans]
    assert got.tolist() == pytest.approx(crf.span_probabilities(emissions, mask, torch_spans), abs=1e-5)
    for (b, first, end, stop_not), value in zip(spans, got):
        n, total, hit = int(lengths[b]), 0.0, 0.0
        for tags in itertools.product(range(k), repeat=n):
            p = math.exp(crf.log_likelihood(emissions[b:b + 1, :n], torch.tensor([tags])).item())
            total += p
            if list(tags[first:end]) == paths[b, first:end].tolist() and (end >= n or tags[end] not in stop_not):
                hit += p
        assert total == pytest.approx(1.0, abs=1e-4)
        assert value == pytest.approx(hit, abs=1e-5)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"expected transitions \(3, 3\)"):
        CRFDecoder(np.zeros((3, 2)), np.zeros(3), np.zeros(3))
