"""Labels and tag schemes travel with the data: the model's classes come from train only, unknown
gold labels are counted out loud at evaluation, and the scheme the reader recorded is the model's."""
import logging

import pytest
import torch

from textrnn import tags as T
from textrnn.config import TrainingConfig
from textrnn.data import load_corpus
from textrnn.tasks.classification import build_classifier, train_classifier
from textrnn.tasks.tagging import build_tagger, train_tagger
from tests.helpers import TINY_NER

TAGGER = dict(word_dim=8, hidden_size=8, char_dim=4, char_filters=4, dropout=0.0)


def conll(rows, scheme="IOB2"):
    return "\n\n".join("\n".join(f"{t} {g}" for t, g in zip(tokens, T.convert(tags, "IOB2", scheme)))
                       for tokens, tags in rows) + "\n"


def test_labels_seen_only_in_the_test_file_are_no_classes_and_are_counted(tmp_path, caplog):
    (tmp_path / "train.csv").write_text("text,label\ngood film,pos\nbad film,neg\nfine film,pos\n")
    (tmp_path / "test.csv").write_text("text,label\ngood,pos\nso so,meh\nmeh film,meh\n")
    corpus = load_corpus({"train": tmp_path / "train.csv", "test": tmp_path / "test.csv"})
    assert corpus["train"].features["label"].names == ["meh", "neg", "pos"]  # the files' union ...
    clf = build_classifier(corpus["train"], word_dim=8, hidden_size=8)
    assert clf.labels == ["neg", "pos"]  # ... but the model knows what it was trained on
    train_classifier(clf, corpus["train"], corpus["train"], TrainingConfig(max_epochs=1, batch_size=2,
                                                                           metric="accuracy"))
    with caplog.at_level(logging.WARNING):
        scores = clf.evaluate(corpus["test"])
    assert scores["unknown_labels"] == {"meh": 2}
    assert "test.csv holds labels the model was not trained on: meh (2)" in caplog.text
    assert scores["accuracy"] <= 100 / 3 + 1e-9  # the two "meh" rows can only be wrong


def test_entity_types_seen_only_in_the_test_file_are_counted(tmp_path, caplog):
    rows = [r for r in TINY_NER if "B-ORG" not in r[1]]
    (tmp_path / "train.txt").write_text(conll(rows))
    (tmp_path / "test.txt").write_text(conll(TINY_NER))
    corpus = load_corpus({"train": tmp_path / "train.txt", "test": tmp_path / "test.txt"})
    tagger = build_tagger(corpus["train"], **TAGGER)
    assert "B-ORG" not in tagger.labels
    with caplog.at_level(logging.WARNING):
        scores = tagger.evaluate(corpus["test"])
    assert scores["unknown_entities"] == {"ORG": 3}
    assert "entity types the model was not trained on: ORG (3)" in caplog.text


def test_the_scheme_the_reader_recorded_is_the_models(tmp_path):
    (tmp_path / "train.txt").write_text(conll(TINY_NER, "BIOES"))
    tagger = build_tagger(load_corpus(tmp_path / "train.txt")["train"], **TAGGER)
    assert tagger.config.scheme == "BIOES"
    assert tagger.model.crf.constrained


def test_an_iob2_model_scores_a_bioes_file_as_the_same_spans(tmp_path):
    (tmp_path / "iob2.txt").write_text(conll(TINY_NER))
    (tmp_path / "bioes.txt").write_text(conll(TINY_NER, "BIOES"))
    iob2 = load_corpus(tmp_path / "iob2.txt")["train"]
    torch.manual_seed(0)
    tagger = build_tagger(iob2, **TAGGER)
    train_tagger(tagger, iob2, iob2, TrainingConfig(max_epochs=3, batch_size=2, optimizer="adam", lr=0.05))
    same = tagger.evaluate(iob2)
    converted = tagger.evaluate(load_corpus(tmp_path / "bioes.txt")["train"])
    assert converted["f1"] == pytest.approx(same["f1"]) and converted["strict_f1"] == pytest.approx(same["strict_f1"])


def test_the_logged_training_loss_is_per_text_once(tmp_path):
    """The classifier's loss was divided by the batch size twice in the logs: now it is the mean loss
    per text, the same whatever the batch size (ln 2 for an untrained two-label classifier)."""
    import json

    from tests.helpers import classification_dataset

    data = classification_dataset()
    for batch_size in (1, 8):
        torch.manual_seed(0)
        clf = build_classifier(data, word_dim=8, hidden_size=8)
        with torch.no_grad():
            clf.model.out.weight.zero_()
            clf.model.out.bias.zero_()
        config = TrainingConfig(max_epochs=1, batch_size=batch_size, lr=1e-12, optimizer="sgd", metric="accuracy")
        train_classifier(clf, data, data, config, output_dir=tmp_path / str(batch_size))
        record = json.loads((tmp_path / str(batch_size) / "metrics.jsonl").read_text().splitlines()[0])
        assert record["train_loss"] == pytest.approx(0.6931, abs=1e-3)
