"""The tagger contract (DESIGN habit 8): overfits a tiny set, batch = one at a time, save/load exact."""
import pytest
import torch

from textrnn.config import TrainingConfig
from textrnn.errors import DataFormatError
from textrnn.tasks.tagging import SequenceTagger, build_tagger, train_tagger
from tests.helpers import TINY_NER, tagging_dataset


def make_tagger(**overrides):
    settings = dict(word_dim=16, hidden_size=16, char_dim=8, char_filters=8, dropout=0.0)
    settings.update(overrides)
    return build_tagger(tagging_dataset(), **settings)


@pytest.mark.parametrize("rnn,crf,chars", [("lstm", True, "cnn"), ("gru", False, "lstm"), ("lstm", True, "none")])
def test_overfits_tiny_corpus(rnn, crf, chars):
    torch.manual_seed(0)
    tagger = make_tagger(rnn=rnn, use_crf=crf, char_encoder=chars)
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=60, batch_size=3, optimizer="adam", lr=0.02, clip_norm=5.0, seed=0)
    result = train_tagger(tagger, data, data, config)
    assert result.best_score == 100.0
    assert tagger.predict([t for t, _ in TINY_NER]) == [g for _, g in TINY_NER]


@pytest.mark.parametrize("chars", ["cnn", "lstm"])
def test_batch_equals_one_at_a_time(chars):
    torch.manual_seed(1)
    tagger = make_tagger(char_encoder=chars)
    tagger.model.eval()
    sentences = [t for t, _ in TINY_NER]
    together = tagger.predict(sentences, batch_size=64, with_scores=True)
    alone = [tagger.predict([s], batch_size=1, with_scores=True) for s in sentences]
    assert together[0] == [a[0][0] for a in alone]
    for batch_scores, (_, single_scores) in zip(together[1], alone):
        assert batch_scores == pytest.approx(single_scores[0], abs=1e-5)
    # emissions of one sentence do not depend on the padding its batch needs
    items = [tagger.encode(s) for s in sentences]
    with torch.no_grad():
        batch = tagger.collate(items)
        full = tagger.model.emissions(batch)
        for i, item in enumerate(items):
            one = tagger.model.emissions(tagger.collate([item]))[0]
            assert torch.allclose(full[i, : len(item["words"])], one, atol=1e-5)


def test_save_load_identical_logits(tmp_path):
    torch.manual_seed(2)
    tagger = make_tagger()
    tagger.model.eval()
    folder = tagger.save_pretrained(tmp_path / "model")
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                  "char_vocab.json"}
    loaded = SequenceTagger.from_pretrained(folder)
    batch = tagger.collate([tagger.encode(t) for t, _ in TINY_NER])
    with torch.no_grad():
        assert torch.equal(tagger.model.emissions(batch), loaded.model.emissions(batch))
    assert loaded.predict([["Unseen", "words", "here"]]) == tagger.predict([["Unseen", "words", "here"]])


def test_unknown_architecture_is_refused(tmp_path):
    tagger = make_tagger()
    folder = tagger.save_pretrained(tmp_path / "model")
    text = (folder / "config.json").read_text().replace("birnn-tagger/1", "birnn-tagger/9")
    (folder / "config.json").write_text(text)
    with pytest.raises(DataFormatError, match="unknown architecture 'birnn-tagger/9'"):
        SequenceTagger.from_pretrained(folder)


def test_empty_sentence_is_a_clear_error():
    tagger = make_tagger()
    with pytest.raises(ValueError, match="empty sentence"):
        tagger.predict([[]])


@pytest.mark.parametrize("scheme", ["IOB2", "BIOES", "BMES"])
def test_crf_decoding_never_yields_an_invalid_sequence(scheme):
    """Random weights and emissions pushed toward continuation tags: every path is still valid."""
    from textrnn import tags as tag_schemes

    spans_rows = [[("PER", 0, 2), ("LOC", 4, 5)], [("ORG", 1, 4)], [("LOC", 0, 1), ("PER", 2, 3)]]
    labels = tag_schemes.sort_labels(
        [t for spans in spans_rows for t in tag_schemes.spans_to_tags(spans, 6, scheme)]
        + tag_schemes.spans_to_tags([("ORG", 0, 1), ("ORG", 2, 4)], 6, scheme))
    rows = [([f"w{i}" for i in range(6)], tag_schemes.spans_to_tags(spans, 6, scheme)) for spans in spans_rows]
    torch.manual_seed(3)
    tagger = build_tagger(tagging_dataset(rows, labels), word_dim=8, hidden_size=8, char_encoder="none")
    assert tagger.config.scheme == scheme
    assert set(tagger.labels) <= set(labels)  # a tag that occurs only outside train is no class
    continuation = torch.tensor([label[:2] in ("I-", "M-", "E-") for label in tagger.labels])
    with torch.no_grad():
        tagger.model.proj.bias.copy_(continuation.float() * 5.0)  # tempt it toward invalid paths
    sentences = [[f"w{i}" for i in range(n)] for n in range(1, 30)] * 3
    for tags in tagger.predict(sentences, batch_size=16):
        assert tag_schemes.is_valid(tags, scheme), tags
    # the same temptation without a CRF does produce invalid sequences: the check above has teeth
    torch.manual_seed(3)
    softmax = build_tagger(tagging_dataset(rows, labels), word_dim=8, hidden_size=8, char_encoder="none",
                           use_crf=False)
    with torch.no_grad():
        softmax.model.proj.bias.copy_(continuation.float() * 5.0)
    assert not all(tag_schemes.is_valid(t, scheme) for t in softmax.predict(sentences, batch_size=16))
