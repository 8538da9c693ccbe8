"""Tag schemes: spans against seqeval, validity against an independent definition, CRF transitions
by brute force, conversions that keep spans."""
import itertools
import random

import numpy as np
import pytest
from seqeval.metrics.sequence_labeling import get_entities

from textrnn import tags as T
from textrnn.data.cards import default_data_dir

CONLL_TRAIN = default_data_dir() / "conll2003" / "train.txt"
needs_conll = pytest.mark.skipif(not CONLL_TRAIN.is_file(), reason="shared CoNLL-2003 data not present")


def conll_sentences(path):
    """Tag sequences of a CoNLL file, read directly (not through textrnn's reader)."""
    sentences, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.split()
            if not cols or cols[0] == "-DOCSTART-":
                if current:
                    sentences.append(current)
                current = []
                continue
            current.append(cols[-1])
    if current:
        sentences.append(current)
    return sentences


@pytest.fixture(scope="module")
def conll_train_tags():
    return conll_sentences(CONLL_TRAIN)


def seqeval_spans(tags):
    return [(typ, start, end + 1) for typ, start, end in get_entities(list(tags))]


LABELS = {
    "IOB1": ["O", "B-A", "I-A", "B-B", "I-B"],
    "IOB2": ["O", "B-A", "I-A", "B-B", "I-B"],
    "BIOES": ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B", "E-B", "S-B"],
    "BMES": ["O", "B-A", "M-A", "E-A", "S-A", "B-B", "M-B", "E-B", "S-B"],
}


def all_sequences(labels, max_len):
    for n in range(1, max_len + 1):
        yield from itertools.product(labels, repeat=n)


# --- spans ----------------------------------------------------------------------------------


@needs_conll
def test_iob2_spans_equal_seqeval_on_every_conll2003_train_sentence(conll_train_tags):
    assert len(conll_train_tags) == 14041
    for tags in conll_train_tags:
        assert T.get_spans(tags, "IOB2") == seqeval_spans(tags), tags


def test_spans_equal_seqeval_on_invalid_sequences_too():
    rng = random.Random(0)
    for scheme in ("IOB2", "BIOES"):
        for _ in range(3000):
            tags = [rng.choice(LABELS[scheme]) for _ in range(rng.randint(0, 9))]
            assert T.get_spans(tags, scheme) == seqeval_spans(tags), tags


@pytest.mark.parametrize("scheme", sorted(LABELS))
def test_a_batch_of_tag_ids_gives_get_spans_spans(scheme):
    """frontend.SpanReader (chunk_boundaries' tables over a whole batch) against get_spans: every
    sequence of up to 4 tags, and random longer ones, valid or not, ragged, junk past the ends."""
    from textrnn.frontend import SpanReader

    labels = LABELS[scheme]
    reader = SpanReader(labels, scheme)
    rng = np.random.default_rng(0)
    ids = [list(seq) for seq in all_sequences(range(len(labels)), 4 if len(labels) < 6 else 3)]
    ids += [rng.integers(0, len(labels), rng.integers(1, 30)).tolist() for _ in range(500)]
    for first in range(0, len(ids), 256):
        rows = ids[first:first + 256]
        lengths = np.array([len(r) for r in rows])
        paths = rng.integers(0, len(labels), (len(rows), lengths.max()))
        for b, row in enumerate(rows):
            paths[b, :len(row)] = row
        expected = [(b, typ, start, end) for b, row in enumerate(rows)
                    for typ, start, end in T.get_spans([labels[t] for t in row], scheme)]
        got_rows, starts, ends, types = reader(paths, lengths)
        got = [(b, reader.type_names[t], s, e)
               for b, t, s, e in zip(*(x.tolist() for x in (got_rows, types, starts, ends)))]
        assert got == expected
    assert reader.extends[reader.type_names.index("A")].tolist() == [l[:2] in ("I-", "M-", "E-") and l[2:] == "A"
                                                                      for l in labels]


@pytest.mark.parametrize("scheme, tags, spans", [
    ("IOB2", ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"], [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]),
    ("IOB2", ["O", "I-PER", "I-PER", "I-LOC"], [("PER", 1, 3), ("LOC", 3, 4)]),  # lenient: I- after O starts
    ("IOB1", ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"], [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5),
                                                                 ("ORG", 5, 6)]),
    ("BIOES", ["S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "S-LOC"], [("PER", 0, 1), ("LOC", 1, 4), ("LOC", 5, 6)]),
    ("BMES", ["B-ORG", "M-ORG", "M-ORG", "E-ORG", "S-NAME"], [("ORG", 0, 4), ("NAME", 4, 5)]),
    ("IOB2", [], []),
])
def test_get_spans_examples(scheme, tags, spans):
    assert T.get_spans(tags, scheme) == spans


# --- validity -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme, tags, index", [
    ("IOB2", ["O", "I-PER"], 1),
    ("IOB2", ["B-PER", "I-LOC"], 1),
    ("IOB2", ["B-PER", "I-PER", "O"], None),
    ("IOB1", ["B-PER"], 0),
    ("IOB1", ["I-PER", "B-LOC"], 1),
    ("IOB1", ["I-PER", "B-PER", "I-PER"], None),
    ("BIOES", ["B-PER", "I-PER", "O"], 2),
    ("BIOES", ["O", "B-PER"], 1),  # may not end a sentence
    ("BIOES", ["B-PER", "E-LOC"], 1),
    ("BMES", ["B-ORG", "M-ORG", "E-ORG"], None),
    ("BMES", ["B-ORG", "M-ORG"], 1),
])
def test_find_invalid_examples(scheme, tags, index):
    assert T.find_invalid(tags, scheme) == index
    assert T.is_valid(tags, scheme) == (index is None)


@pytest.mark.parametrize("scheme", T.SCHEMES)
def test_valid_means_canonical_encoding_of_its_spans(scheme):
    """Independent definition: a sequence is valid iff it is the scheme's encoding of its spans."""
    for tags in all_sequences(LABELS[scheme], 4):
        canonical = T.spans_to_tags(T.get_spans(tags, scheme), len(tags), scheme)
        assert T.is_valid(tags, scheme) == (canonical == list(tags)), tags


@pytest.mark.parametrize("scheme", T.SCHEMES)
def test_allowed_transitions_brute_force(scheme):
    labels = list(LABELS[scheme])
    random.Random(1).shuffle(labels)  # order must not matter
    allowed, start, end = T.allowed_transitions(labels, scheme)
    assert len(allowed) == len(labels) and all(len(row) == len(labels) for row in allowed)
    index = {label: i for i, label in enumerate(labels)}
    n_valid = 0
    for tags in all_sequences(labels, 4):
        ids = [index[t] for t in tags]
        obeys = start[ids[0]] and end[ids[-1]] and all(allowed[i][j] for i, j in zip(ids, ids[1:]))
        assert obeys == T.is_valid(tags, scheme), tags
        n_valid += obeys
    assert 0 < n_valid < sum(len(labels) ** n for n in range(1, 5))


def test_allowed_transitions_known_entries():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    allowed, start, end = T.allowed_transitions(labels, "IOB2")
    assert start == [True, True, False, True, False]
    assert end == [True] * 5
    assert allowed[0][2] is False and allowed[1][2] is True and allowed[3][2] is False
    _, start1, _ = T.allowed_transitions(labels, "IOB1")
    assert start1 == [True, False, True, False, True]


# --- conversion and repair ------------------------------------------------------------------


@needs_conll
def test_conversions_round_trip_on_conll2003(conll_train_tags):
    for tags in conll_train_tags[:3000]:
        spans = T.get_spans(tags, "IOB2")
        iob1 = T.convert(tags, "IOB2", "IOB1")
        iob2 = T.convert(iob1, "IOB1", "IOB2")
        bioes = T.convert(iob2, "IOB2", "BIOES")
        bmes = T.convert(bioes, "BIOES", "BMES")
        assert iob2 == tags
        assert T.convert(T.convert(bmes, "BMES", "BIOES"), "BIOES", "IOB2") == tags
        for seq, scheme in ((iob1, "IOB1"), (bioes, "BIOES"), (bmes, "BMES")):
            assert T.is_valid(seq, scheme) and T.get_spans(seq, scheme) == spans


def test_iob1_to_iob2_to_bioes_to_iob2_keeps_spans():
    rng = random.Random(2)
    for _ in range(2000):
        tags = [rng.choice(LABELS["IOB1"]) for _ in range(rng.randint(1, 8))]
        if not T.is_valid(tags, "IOB1"):
            continue
        iob2 = T.convert(tags, "IOB1", "IOB2")
        back = T.convert(T.convert(iob2, "IOB2", "BIOES"), "BIOES", "IOB2")
        assert back == iob2
        assert T.get_spans(back, "IOB2") == T.get_spans(tags, "IOB1")


def test_convert_examples_and_bmes_rename():
    assert T.convert(["I-PER", "I-PER", "B-PER", "O"], "IOB1", "IOB2") == ["B-PER", "I-PER", "B-PER", "O"]
    assert T.convert(["B-PER", "I-PER", "I-PER", "O", "B-LOC"], "IOB2", "BIOES") == \
        ["B-PER", "I-PER", "E-PER", "O", "S-LOC"]
    assert T.convert(["B-X", "I-X", "E-X", "S-Y"], "BIOES", "BMES") == ["B-X", "M-X", "E-X", "S-Y"]
    assert T.convert(["B-X", "M-X", "E-X"], "bmes", "IOBES") == ["B-X", "I-X", "E-X"]


@pytest.mark.parametrize("scheme", T.SCHEMES)
def test_repair_gives_a_valid_sequence_with_the_conlleval_spans(scheme):
    rng = random.Random(3)
    for _ in range(2000):
        tags = [rng.choice(LABELS[scheme]) for _ in range(rng.randint(1, 7))]
        fixed = T.repair(tags, scheme)
        assert T.is_valid(fixed, scheme), (tags, fixed)
        assert T.get_spans(fixed, scheme) == T.get_spans(tags, scheme)
        if T.is_valid(tags, scheme):
            assert fixed == list(tags)
    assert T.repair(["O", "I-PER", "I-PER"], "IOB2") == ["O", "B-PER", "I-PER"]
    assert T.repair(["B-ORG", "M-ORG"], "BMES") == ["B-ORG", "E-ORG"]


# --- labels ---------------------------------------------------------------------------------


def test_sort_labels():
    labels = ["S-PER", "I-LOC", "O", "E-PER", "B-PER", "B-LOC", "M-PER", "B-LOC"]
    assert T.sort_labels(labels) == ["O", "B-LOC", "I-LOC", "B-PER", "M-PER", "E-PER", "S-PER"]


@pytest.mark.parametrize("tag, scheme, fragment", [
    ("X-PER", "IOB2", "prefix X-"),
    ("B-", "IOB2", "type after B- is empty"),
    ("PER", "IOB2", "expected O or PREFIX-TYPE"),
    ("E-PER", "IOB2", "not one of B-, I- in IOB2"),
    ("M-PER", "BIOES", "not one of B-, I-, E-, S- in BIOES"),
    ("I-PER", "BMES", "not one of B-, M-, E-, S- in BMES"),
])
def test_malformed_tags_raise_clear_value_errors(tag, scheme, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        T.get_spans(["O", tag], scheme)
    assert repr(tag) in str(info.value)
    with pytest.raises(ValueError):
        T.allowed_transitions(["O", tag], scheme)


def test_scheme_names_and_bad_spans():
    assert T.normalize_scheme("bio") == "IOB2" and T.normalize_scheme("iobes") == "BIOES"
    with pytest.raises(ValueError, match="unknown tag scheme 'BILOU'"):
        T.normalize_scheme("BILOU")
    with pytest.raises(ValueError, match="overlaps"):
        T.spans_to_tags([("A", 0, 2), ("B", 1, 3)], 3, "IOB2")
    assert T.infer_scheme(["O", "B-X", "M-X"]) == "BMES"
    assert T.infer_scheme(["O", "B-X", "S-X"]) == "BIOES"
    assert T.can_follow(None, "I-X", "IOB2") is False and T.can_follow("B-X", None, "BIOES") is False
