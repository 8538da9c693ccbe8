"""Small builders shared by the tests: tiny corpora written in code, never the shared data."""
from __future__ import annotations

import datasets

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
