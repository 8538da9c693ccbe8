"""Small builders shared by the tests: tiny corpora written in code, never the shared data."""
from __future__ import annotations

import math

import pytest

import datasets

from textrnn.utils import default_data_dir

# tests that read the shared corpora skip where they are absent (a clone without ../shared/data)
needs_data = pytest.mark.skipif(not (default_data_dir() / "SHA256SUMS").is_file(),
                                reason="shared corpora not present")

TINY_NER = [
    (["John", "Smith", "lives", "in", "Paris", "."], ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]),
    (["EU", "rejects", "German", "call", "."], ["B-ORG", "O", "B-MISC", "O", "O"]),
    (["Mary", "went", "to", "New", "York", "City"], ["B-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC"]),
    (["The", "UN", "met", "in", "Geneva"], ["O", "B-ORG", "O", "O", "B-LOC"]),
    (["Peter", "likes", "French", "wine", "and", "Berlin"], ["B-PER", "O", "B-MISC", "O", "O", "B-LOC"]),
    (["Reuters", "reported", "it"], ["B-ORG", "O", "O"]),
]
NER_LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]


def tagging_dataset(rows=TINY_NER, labels=NER_LABELS) -> datasets.Dataset:
    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "tags": datasets.Sequence(datasets.ClassLabel(names=labels)),
    })
    return datasets.Dataset.from_dict(
        {"tokens": [r[0] for r in rows], "tags": [[labels.index(t) for t in r[1]] for r in rows]},
        features=features)


TINY_SENTIMENT = [
    ("a wonderful , moving film", "positive"), ("dull and lifeless", "negative"),
    ("I loved every minute", "positive"), ("a tedious mess", "negative"),
    ("这部电影很好看", "positive"), ("这部电影不好看", "negative"),
    ("brilliant acting and a great story", "positive"), ("boring , boring , boring", "negative"),
]


def classification_dataset(rows=TINY_SENTIMENT, labels=("negative", "positive")) -> datasets.Dataset:
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(labels))})
    return datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [labels.index(l) for _, l in rows]},
                                      features=features)


def multilabel_dataset(rows, labels) -> datasets.Dataset:
    features = datasets.Features({"text": datasets.Value("string"),
                                  "labels": datasets.Sequence(datasets.ClassLabel(names=list(labels)))})
    return datasets.Dataset.from_dict(
        {"text": [t for t, _ in rows], "labels": [[labels.index(l) for l in ls] for _, ls in rows]},
        features=features)


# A tagger trained until it tags a fixed vocabulary exactly, so tests can check KNOWN entity offsets
# (anything computed from the model's own output would hold by construction).
ENTITY_WORDS = {"John": "B-PER", "Smith": "I-PER", "Mary": "B-PER", "Paris": "B-LOC", "Berlin": "B-LOC",
                "Reuters": "B-ORG", "张": "B-PER", "三": "I-PER", "北": "B-LOC", "京": "I-LOC"}
_TRAINED_SENTENCES = [
    "John Smith lives in Paris .", "Mary met John Smith in Berlin .", "Reuters reported from Paris .",
    "w w w w w w Reuters reported from Paris .", "Paris and Berlin met Mary", "w w John Smith w w w",
    "张 三 去 了 北 京 。", "Mary w w w w w w w w w Berlin", "in Berlin w w Mary . John Smith",
]


def tags_of(tokens):
    """The gold tags of a sentence made of ENTITY_WORDS and other words (O)."""
    return [ENTITY_WORDS.get(t, "O") for t in tokens]


def known_entities(pieces, sep=" "):
    """Text built by joining ``pieces`` (tokens) with ``sep``, its entities [(type, start, end, word)]
    and its entity tokens [(tag, index, start, end)], found by position in that construction:
    independent of textrnn's tokenizer and model."""
    text, tokens, spans, open_span = "", [], [], None
    for index, token in enumerate(pieces):
        start = len(text) + (len(sep) if text else 0)
        text = f"{text}{sep}{token}" if text else token
        tag = ENTITY_WORDS.get(token, "O")
        if open_span is not None and not tag.startswith("I-"):
            spans.append(open_span)
            open_span = None
        if tag.startswith("B-"):
            open_span = [tag[2:], start, start + len(token)]
        elif tag.startswith("I-"):
            open_span[2] = start + len(token)
        if tag != "O":
            tokens.append((tag, index, start, start + len(token)))
    if open_span is not None:
        spans.append(open_span)
    return text, [(label, start, end, text[start:end]) for label, start, end in spans], tokens


def train_fixed_tagger(steps: int = 120, seed: int = 0):
    """A small BiLSTM-CRF (no character features) that has learnt ENTITY_WORDS by heart."""
    import torch

    from textrnn.tasks.tagging import build_tagger

    rows = [(s.split(), tags_of(s.split())) for s in _TRAINED_SENTENCES]
    labels = ["O", "B-LOC", "I-LOC", "B-ORG", "B-PER", "I-PER"]
    torch.manual_seed(seed)
    tagger = build_tagger(tagging_dataset(rows, labels), word_dim=16, hidden_size=16, char_encoder="none",
                          dropout=0.0, seed=seed)
    items = [dict(tagger.encode(tokens), tags=[labels.index(t) for t in tags]) for tokens, tags in rows]
    batch = tagger.collate(items)
    optimizer = torch.optim.Adam(tagger.model.parameters(), lr=0.05)
    tagger.model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        tagger.model.loss(batch).backward()
        optimizer.step()
    tagger.model.eval()
    return tagger


def assert_outputs_close(got, expected, tol: float, rel_tol: float = 0.0):
    """Equal structures (dicts, lists, tuples), equal strings and ints, floats within ``tol``
    (absolute) or ``rel_tol`` (relative): pipeline outputs from two paths that round differently."""
    if isinstance(expected, float):
        assert math.isclose(got, expected, rel_tol=rel_tol, abs_tol=tol), (got, expected)
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys()
        for key in expected:
            assert_outputs_close(got[key], expected[key], tol, rel_tol)
    elif isinstance(expected, (list, tuple)):
        assert type(got) is type(expected) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_outputs_close(g, e, tol, rel_tol)
    else:
        assert got == expected


# Chinese characters with a lexicon (tests of SoftLexicon taggers and classifiers, and of their export)
ZH_LABELS = ["O", "B-NAME", "M-NAME", "E-NAME", "S-NAME", "B-ORG", "M-ORG", "E-ORG", "B-LOC", "E-LOC"]
ZH_NER = [
    (list("张三在北京大学读书"), ["B-NAME", "E-NAME", "O", "B-ORG", "M-ORG", "M-ORG", "E-ORG", "O", "O"]),
    (list("李四去北京"), ["B-NAME", "E-NAME", "O", "B-LOC", "E-LOC"]),
    (list("王五在中国人民银行工作"), ["B-NAME", "E-NAME", "O", "B-ORG", "M-ORG", "M-ORG", "M-ORG", "M-ORG",
                                  "E-ORG", "O", "O"]),
    (list("北京大学在北京"), ["B-ORG", "M-ORG", "M-ORG", "E-ORG", "O", "B-LOC", "E-LOC"]),
    (list("张在银行"), ["S-NAME", "O", "O", "O"]),
]
ZH_LEXICON = "北京 50\n北京大学 20\n大学 30\n中国 60\n中国人 10\n国人 5\n人民 40\n银行 25\n人民银行 8\n读书 7\n工作 30\n在 100\n"
ZH_SENTIMENT = [("北京大学很好", "positive"), ("人民银行工作不好", "negative"), ("中国人读书很好", "positive"),
                ("在银行工作不好", "negative"), ("北京很好", "positive"), ("大学不好", "negative")]


def zh_dataset() -> datasets.Dataset:
    return tagging_dataset(ZH_NER, ZH_LABELS)


def zh_sentiment() -> datasets.Dataset:
    return classification_dataset(ZH_SENTIMENT)
