"""The classifier contract: padding-exact pooling, multi-label learning, save/load, metrics and plot."""
import itertools
import random

import pytest
import torch

from textrnn.config import TrainingConfig
from textrnn.errors import ConfigError, DataFormatError
from textrnn.modules.pooling import POOLINGS, pooling
from textrnn.tasks.classification import TextClassifier, build_classifier, train_classifier
from textrnn.training.metrics import classification_scores, plot_confusion_matrix
from tests.helpers import TINY_SENTIMENT, classification_dataset, multilabel_dataset

SMALL = dict(word_dim=16, hidden_size=12, dropout=0.0)


@pytest.mark.parametrize("kind", sorted(POOLINGS))
def test_pooling_ignores_padding(kind):
    torch.manual_seed(0)
    pool = pooling(kind, 8)
    states = torch.randn(3, 6, 8)
    lengths = torch.tensor([6, 2, 4])
    mask = torch.arange(6).unsqueeze(0) < lengths.unsqueeze(1)
    garbage = states.masked_fill(~mask.unsqueeze(-1), 1e4)  # what sits in padding must not matter
    batch = pool(garbage, mask)
    for i, n in enumerate(lengths.tolist()):
        alone = pool(states[i:i + 1, :n], torch.ones(1, n, dtype=torch.bool))
        assert torch.allclose(batch[i], alone[0], atol=1e-5)


def assert_batch_equals_single_items(clf):
    """Logits of a padded batch equal each text's logits alone; returns the items and batch logits."""
    clf.model.eval()
    items = [clf.encode(t) for t, _ in TINY_SENTIMENT]
    with torch.no_grad():
        together = clf.model.logits(clf.collate(items))
        for i, item in enumerate(items):
            assert torch.allclose(together[i], clf.model.logits(clf.collate([item]))[0], atol=1e-5)
    return items, together


@pytest.mark.parametrize("kind", sorted(POOLINGS))
def test_padded_batch_gives_same_logits_as_single_items(kind):
    torch.manual_seed(1)
    clf = build_classifier(classification_dataset(), pooling=kind, **SMALL)
    items, together = assert_batch_equals_single_items(clf)


def test_learns_tiny_sentiment_and_round_trips(tmp_path):
    torch.manual_seed(2)
    data = classification_dataset()
    clf = build_classifier(data, **SMALL)
    config = TrainingConfig(max_epochs=40, batch_size=4, optimizer="adam", lr=0.02, metric="accuracy", seed=0)
    result = train_classifier(clf, data, data, config)
    assert result.best_score == 100.0
    folder = clf.save_pretrained(tmp_path / "clf")
    loaded = TextClassifier.from_pretrained(folder)
    texts = [t for t, _ in TINY_SENTIMENT] + ["an unseen sentence entirely"]
    batch = clf.collate([clf.encode(t) for t in texts])
    with torch.no_grad():
        assert torch.equal(clf.model.logits(batch), loaded.model.logits(batch))
    assert loaded.predict(texts) == clf.predict(texts)
    top = loaded.predict(["这部电影很好看"], top_k=None)[0]
    assert [d["label"] for d in top] == ["positive", "negative"] and sum(d["score"] for d in top) == pytest.approx(1)


def test_multilabel_learns_synthetic_rules():
    """Labels are which of three keyword groups a text contains; every combination occurs."""
    rng = random.Random(0)
    groups = {"sport": ["goal", "match", "team"], "money": ["bank", "price", "stock"], "food": ["bread", "soup"]}
    filler = ["the", "a", "today", "news", "report", "about", "and", "some"]
    rows = []
    for combo in itertools.chain.from_iterable(itertools.combinations(groups, k) for k in range(4)):
        for _ in range(12):
            words = rng.sample(filler, 4) + [rng.choice(groups[g]) for g in combo]
            rng.shuffle(words)
            rows.append((" ".join(words), list(combo)))
    labels = list(groups)
    data = multilabel_dataset(rows, labels)
    torch.manual_seed(3)
    clf = build_classifier(data, **SMALL)
    assert clf.config.multi_label
    config = TrainingConfig(max_epochs=30, batch_size=16, optimizer="adam", lr=0.02, metric="micro_f1", seed=0)
    result = train_classifier(clf, data, data, config)
    assert result.best_metrics["micro_f1"] > 98
    predicted = clf.predict(["the goal and the price today", "news about some soup", "a report today"])
    assert [sorted(d["label"] for d in p) for p in predicted] == [["money", "sport"], ["food"], []]


def test_classification_scores_and_confusion_png(tmp_path):
    gold = ["pos", "pos", "neg", "neg", "neu"]
    pred = ["pos", "neg", "neg", "neg", "pos"]
    scores = classification_scores(gold, pred, ["neg", "neu", "pos"])
    assert scores["accuracy"] == pytest.approx(60.0)
    assert scores["confusion_matrix"]["matrix"] == [[2, 0, 0], [0, 0, 1], [1, 0, 1]]
    # neg: P 2/3 R 1 F .8; neu: 0; pos: P .5 R .5 F .5 -> macro (80 + 0 + 50) / 3
    assert scores["macro_f1"] == pytest.approx(130 / 3)
    path = tmp_path / "cm.png"
    plot_confusion_matrix(scores["confusion_matrix"], path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    from PIL import Image

    with Image.open(path) as image:
        image.verify()


def test_empty_text_reads_as_one_unknown_word_and_never_fails_the_batch():
    torch.manual_seed(5)
    clf = build_classifier(classification_dataset(), **SMALL)
    texts = ["a wonderful , moving film", "", "   ", "dull and lifeless"]
    together = clf.predict(texts)
    assert together[1] == together[2] == clf.predict(["zzzunknownzzz"])[0]  # one <unk>, as documented
    assert [together[0], together[3]] == clf.predict([texts[0], texts[3]])
    assert clf.encode("") == {"words": [1]}


def test_lone_surrogate_is_replaced_not_an_encoding_error():
    clf = build_classifier(classification_dataset(), **SMALL)
    assert clf.tokenize("bad \ud800 text") == ["bad", "\ufffd", "text"]
    assert len(clf.predict(["\ud800", "good film"])) == 2


def test_pickle_in_place_of_safetensors_is_refused(tmp_path):
    clf = build_classifier(classification_dataset(), **SMALL)
    folder = clf.save_pretrained(tmp_path / "clf")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(DataFormatError, match="pickle files are never loaded"):
        TextClassifier.from_pretrained(folder)


def test_bigram_features_are_padding_exact_and_round_trip(tmp_path):
    torch.manual_seed(4)
    clf = build_classifier(classification_dataset(), bigrams=True, **SMALL)
    assert clf.config.bigram_vocab_size > 2
    items, together = assert_batch_equals_single_items(clf)
    loaded = TextClassifier.from_pretrained(clf.save_pretrained(tmp_path / "bigrams"))
    assert (tmp_path / "bigrams" / "bigram_vocab.json").exists()
    with torch.no_grad():
        assert torch.equal(loaded.model.logits(loaded.collate(items)), together)


def test_word_dropout_turns_tokens_into_unk_in_training_only():
    clf = build_classifier(classification_dataset(), word_dropout=0.5, **SMALL)
    items = [clf.encode(t) for t, _ in TINY_SENTIMENT]
    batch = clf.collate(items)
    seen = []
    clf.model.words.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    clf.model.eval()
    with torch.no_grad():
        clf.model.logits(batch)
    assert torch.equal(seen[-1], batch["words"])  # inference sees every word
    clf.model.train()
    torch.manual_seed(0)
    clf.model.logits(batch)
    dropped = (seen[-1] != batch["words"])
    assert dropped.any() and torch.all(seen[-1][dropped] == 1)  # dropped words became <unk>
    assert torch.all(seen[-1][batch["words"] == 0] == 0)  # padding stays padding
    share = dropped.sum().item() / (batch["words"] > 0).sum().item()
    assert 0.3 < share < 0.7, share


def test_word_dropout_outside_zero_and_one_names_the_flag():
    with pytest.raises(ConfigError, match="--word-dropout"):
        build_classifier(classification_dataset(), word_dropout=1.0, **SMALL)


def test_bigram_vectors_can_start_at_the_scale_of_the_other_vectors():
    data = classification_dataset()
    uniform = build_classifier(data, bigrams=True, **SMALL).model.bigrams.weight  # the default
    bound = (3.0 / uniform.shape[1]) ** 0.5
    assert uniform[1:].abs().max() <= bound and uniform[1:].abs().max() > bound / 2
    assert torch.all(uniform[0] == 0)  # padding
    normal = build_classifier(data, bigrams=True, bigram_init="normal", **SMALL).model.bigrams.weight
    assert normal.abs().max() > 1.0  # torch's N(0, 1)
    with pytest.raises(ConfigError, match="--bigram-init"):
        build_classifier(data, bigrams=True, bigram_init="zeros", **SMALL)


def test_rare_bigrams_share_the_unknown_row():
    data = classification_dataset()
    every = build_classifier(data, bigrams=True, **SMALL)
    frequent = build_classifier(data, bigrams=True, bigram_min_freq=2, **SMALL)
    assert 2 < len(frequent.bigrams) < len(every.bigrams)
    assert frequent.model.config.bigram_vocab_size == len(frequent.bigrams)
    assert 1 in frequent.encode("这部电影很好看")["bigrams"]  # a pair seen once is unknown now
