"""The torch decoder (used on a GPU) against the numpy one: the same tags, bit for bit, and the
same probabilities to 1e-12; and a tagger's outputs through it against the numpy path."""
import threading

import numpy as np
import pytest
import torch

from textrnn import pipeline
from textrnn import tags as tag_schemes
from textrnn.decoding import CRFDecoder, SoftmaxDecoder
from textrnn.frontend import SpanReader
from textrnn.decoding_torch import Launched, TorchCRFDecoder, TorchSoftmaxDecoder, dense_spans, SpanTables
from textrnn.tasks.tagging import build_tagger
from tests.helpers import TINY_NER, assert_outputs_close, tagging_dataset

TYPES = ["LOC", "PER", "ORG"]
SCHEMES = {
    "IOB2": ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"],
    "BIOES": ["O"] + [f"{p}-{t}" for t in TYPES for p in "BIES"],
    "none": None,  # unconstrained, 5 tags
}
LENGTHS = [[9, 1, 4, 9, 6, 2, 30, 17], [1], [1, 1, 1], [5, 5, 5], [3, 40, 1, 1, 12]]
TOL = 1e-12  # float64 throughout, summed in another order: agreement to rounding


def decoders(scheme: str, seed: int, scale: float = 1.5, whole: bool = False):
    """The numpy and torch decoders of the same random CRF scores (``whole``: whole numbers), and
    the number of tags."""
    labels = SCHEMES[scheme]
    k = len(labels) if labels else 5
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, scale, shape).astype(np.float32) for shape in ((k, k), (k,), (k,))]
    params = [np.round(p) for p in params] if whole else params
    if labels is None:
        return CRFDecoder(*params), TorchCRFDecoder(*(torch.from_numpy(p) for p in params)), k
    return (CRFDecoder.for_labels(*params, labels, scheme),
            TorchCRFDecoder.for_labels(*(torch.from_numpy(p) for p in params), labels, scheme), k)


def emissions(lengths, k: int, seed: int, scale: float = 3.0, ties: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    em = rng.normal(0, scale, (len(lengths), max(lengths), k)).astype(np.float32)
    return np.round(em) if ties else em  # whole numbers: many equal candidates, the first must win


def spans_of(paths: np.ndarray, lengths, labels, scheme: str, k: int = 5):
    """Every span on the paths, as the front end finds them: (rows, starts, ends, extends). Without
    labels, each tag but 0 is a one-token span, which the same tag after it would extend."""
    found = []
    for b, n in enumerate(lengths):
        tags = [labels[t] for t in paths[b, :n]] if labels else [f"B-{t}" if t else "O" for t in paths[b, :n]]
        found += [(b, first, end, typ)
                  for typ, first, end in tag_schemes.get_spans(tags, scheme if labels else "IOB2")]
    k = len(labels) if labels else k
    extends = np.zeros((len(found), k), dtype=bool)
    for i, (_, _, _, typ) in enumerate(found):
        if labels:
            extends[i] = [label[:2] in ("I-", "E-") and label[2:] == typ for label in labels]
        else:
            extends[i, int(typ)] = True
    rows, starts, ends = (np.array([f[i] for f in found], dtype=np.int64) for i in range(3))
    return rows, starts, ends, extends


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("ties", [False, True])
def test_viterbi_gives_the_numpy_tags_exactly(scheme, ties):
    for seed, lengths in enumerate(LENGTHS):
        # with whole-number scores, equal path scores are common: the first best must win in both
        numpy_decoder, torch_decoder, k = decoders(scheme, seed, whole=ties)
        em = emissions(lengths, k, seed, ties=ties)
        expected = numpy_decoder.viterbi(em, np.array(lengths))
        got = torch_decoder.viterbi(torch.from_numpy(em), np.array(lengths))
        assert got.dtype == torch.int64 and got.tolist() == expected.tolist(), (seed, lengths)
        if SCHEMES[scheme]:
            for row, n in zip(got.tolist(), lengths):
                assert tag_schemes.is_valid([SCHEMES[scheme][t] for t in row[:n]], scheme)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_forward_backward_marginals_and_spans_match_numpy(scheme):
    checked_spans = 0
    for seed, lengths in enumerate(LENGTHS):
        numpy_decoder, torch_decoder, k = decoders(scheme, seed)
        em = emissions(lengths, k, seed + 100)
        n = np.array(lengths)
        alphas, betas = numpy_decoder.forward_backward(em, n)
        state = torch_decoder.forward_backward(torch.from_numpy(em), n)
        # the same conventions at padding, the same -inf where a tag cannot be reached
        for got, expected in zip(state, (alphas, betas)):  # relative to the largest score of the batch
            scale = np.abs(expected[np.isfinite(expected)]).max()
            np.testing.assert_allclose(got.numpy(), expected, rtol=TOL, atol=TOL * scale)
        marginals = numpy_decoder.marginals((alphas, betas), n)
        assert np.abs(torch_decoder.marginals(state, n).numpy() - marginals).max() < TOL
        paths = numpy_decoder.viterbi(em, n)
        rows, starts, ends, extends = spans_of(paths, lengths, SCHEMES[scheme], scheme, k)
        expected = numpy_decoder.span_probabilities(em, n, (alphas, betas), paths, rows, starts, ends, extends)
        got = torch_decoder.span_probabilities(torch.from_numpy(em), n, state, torch.from_numpy(paths),
                                               *map(torch.from_numpy, (rows, starts, ends, extends)))
        assert np.abs(got.numpy() - expected).max(initial=0.0) < TOL
        checked_spans += len(rows)
    assert checked_spans > 20


@pytest.mark.parametrize("scheme", ["IOB2", "BIOES"])
def test_decoded_batches_agree_where_float32_would_not(scheme):
    """Long sentences with large scores (float32 rounds span probabilities by 1e-4 there)."""
    numpy_decoder, torch_decoder, k = decoders(scheme, 5, scale=3.0)
    lengths = np.array([200, 150, 1, 77])
    em = emissions(lengths, k, 6, scale=30.0)
    expected = numpy_decoder.decode(em, lengths, scores=True)
    got = torch_decoder.decode(torch.from_numpy(em), lengths, scores=True)
    assert got.paths.tolist() == expected.paths.tolist()
    assert isinstance(got.picked, np.ndarray) and np.abs(got.picked - expected.picked).max() < 1e-10
    rows, starts, ends, extends = spans_of(expected.paths, lengths.tolist(), SCHEMES[scheme], scheme)
    assert len(rows) > 10
    spans = expected.span_probabilities(rows, starts, ends, extends)
    assert np.abs(np.array(got.span_probabilities(rows, starts, ends, extends)) - spans).max() < 1e-10
    assert max(spans) > 0.5 and min(spans) < 0.5  # a mix of sure and unsure spans was checked


def test_softmax_decoding_matches_numpy():
    lengths = np.array([7, 1, 3, 12])
    labels = SCHEMES["IOB2"]
    em = emissions(lengths, len(labels), 8)
    expected = SoftmaxDecoder().decode(em, lengths, scores=True)
    got = TorchSoftmaxDecoder().decode(torch.from_numpy(em), lengths, scores=True)
    assert got.paths.tolist() == expected.paths.tolist()
    assert np.abs(got.picked - expected.picked).max() < TOL
    rows, starts, ends, extends = spans_of(expected.paths, lengths.tolist(), labels, "IOB2")
    assert len(rows) > 3 and extends.any(axis=1).any()
    np.testing.assert_allclose(got.span_probabilities(rows, starts, ends, extends),
                               expected.span_probabilities(rows, starts, ends, extends), rtol=1e-12, atol=0)
    assert TorchSoftmaxDecoder().decode(torch.from_numpy(em), lengths, scores=False).picked is None


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"expected transitions \(3, 3\)"):
        TorchCRFDecoder(torch.zeros(3, 2), torch.zeros(3), torch.zeros(3))


# through a tagger: the device path forced on the CPU ------------------------------------------
SENTENCES = [tokens for tokens, _ in TINY_NER] + [["Zorblat", "visited", "Parisian", "Genevans"], ["x"]]
TEXTS = ["John Smith lives in Paris.", "EU rejects German call. Mary went to New York City!", "Reuters"]


def outputs(tagger):
    return {"tags": tagger.predict(SENTENCES, batch_size=3),
            "scores": tagger.predict(SENTENCES, batch_size=3, with_scores=True),
            "entities": tagger.predict_entities(SENTENCES, batch_size=3),
            "pipeline": pipeline("ner", model=tagger, batch_size=2)(TEXTS, aggregation="simple")}




@pytest.mark.parametrize("crf", [True, False])
def test_a_tagger_decoding_with_torch_gives_the_numpy_outputs(crf, monkeypatch):
    torch.manual_seed(0)
    tagger = build_tagger(tagging_dataset(), word_dim=16, hidden_size=16, char_dim=8, char_filters=8,
                          dropout=0.0, use_crf=crf)
    with torch.no_grad():
        tagger.model.proj.weight.mul_(8.0)  # sharper emissions: random weights still tag entities
    expected = outputs(tagger)
    assert sum(len(spans) for _, _, spans in expected["entities"]) > 3
    events = []
    decoder_class = TorchCRFDecoder if crf else TorchSoftmaxDecoder
    launch, result = decoder_class.launch, Launched.result
    monkeypatch.setattr(decoder_class, "launch", lambda self, *a: events.append("L") or launch(self, *a))
    monkeypatch.setattr(Launched, "result", lambda self: events.append("R") or result(self))
    tagger.device_decoding = True
    got = outputs(tagger)
    assert events, "the torch decoder was not used"
    assert "".join(events) == "LR" * (len(events) // 2)  # serial by default: each batch read before the next
    assert_outputs_close(got, expected, 1e-12)
    events.clear()
    tagger.overlap = True  # one batch ahead: batch i + 1 is queued before batch i is read
    try:
        assert_outputs_close(outputs(tagger), expected, 1e-12)
    finally:
        tagger.overlap = None
    assert "LLR" in "".join(events) and events.count("L") == events.count("R")
    assert threading.active_count() == 1 or all(not t.name.startswith("textrnn-network")
                                                for t in threading.enumerate())
    tagger.device_decoding = None
    on_the_cpu = tagger.decoding()[1]
    assert type(on_the_cpu).__name__ == ("CRFDecoder" if crf else "SoftmaxDecoder")


@pytest.mark.parametrize("scheme", ["IOB2", "BIOES"])
def test_spans_found_on_the_device_are_the_span_readers(scheme):
    """``dense_spans`` (no host round trip) finds the spans SpanReader finds, on any tag sequence."""
    labels = SCHEMES[scheme]
    reader = SpanReader(labels, scheme)
    tables = SpanTables(reader)
    rng = np.random.default_rng(0)
    for lengths in LENGTHS * 20:
        seq = max(lengths)
        paths = rng.integers(0, len(labels), size=(len(lengths), seq))  # valid or not
        paths[np.arange(seq)[None, :] >= np.array(lengths)[:, None]] = 0
        rows, starts, ends, types = reader(paths, np.array(lengths))
        is_start, end, typ = (t.numpy() for t in dense_spans(tables, torch.from_numpy(paths), torch.tensor(lengths)))
        found_rows, found_starts = np.nonzero(is_start)
        assert found_rows.tolist() == rows.tolist() and found_starts.tolist() == starts.tolist()
        assert end[found_rows, found_starts].tolist() == ends.tolist()
        assert typ[found_rows, found_starts].tolist() == types.tolist()


@pytest.mark.parametrize("crf", [True, False])
def test_a_tagger_without_entity_types_finds_no_spans_on_either_path(crf):
    rows = [(tokens, ["O"] * len(tokens)) for tokens, _ in TINY_NER]
    torch.manual_seed(0)
    tagger = build_tagger(tagging_dataset(rows, labels=["O"]), word_dim=8, hidden_size=8, char_dim=4,
                          char_filters=4, use_crf=crf)
    expected = tagger.predict_entities(SENTENCES, batch_size=3)
    assert expected and all(spans == [] for _, _, spans in expected)
    tagger.device_decoding = True
    for overlap in (None, True):
        tagger.overlap = overlap
        assert_outputs_close(tagger.predict_entities(SENTENCES, batch_size=3), expected, 1e-12)
