"""Inference edge cases: each model tokenizes with its own saved pre-tokenizer, odd text never
fails a batch, and segments cover long documents exactly."""
import random
import threading

import pytest
import torch
from tokenizers import pre_tokenizers

from textrnn import load_model, pipeline
from textrnn import vocab as vocab_module
from textrnn.pipelines.ner import segments
from textrnn.tasks.classification import build_classifier
from textrnn.tasks.tagging import build_tagger
from tests.helpers import classification_dataset, tagging_dataset


@pytest.fixture(scope="module")
def tagger():
    torch.manual_seed(0)
    return build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_dim=4, char_filters=4)


def test_a_saved_model_keeps_its_own_pre_tokenizer(tmp_path, monkeypatch):
    """A model saved with another pattern tokenizes by it, whatever the module-level one says."""
    text = "U.S.-led talks (in Paris) ended."
    default = [t for t, _ in vocab_module.pre_tokenize(text)]
    tagger = build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_encoder="none")
    tagger.words.tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    folder = tagger.save_pretrained(tmp_path / "whitespace")
    loaded = load_model(folder)
    assert [t for t, _ in loaded.pre_tokenize(text)] == text.split() != default
    assert list(loaded.tokens_and_offsets(text)[0]) == text.split()
    # today's pattern changing does not reach a loaded model
    monkeypatch.setattr(vocab_module, "_PRE_TOKENIZER", pre_tokenizers.Split(" ", "removed"))
    reloaded = load_model(folder)
    assert [t for t, _ in reloaded.pre_tokenize(text)] == text.split()
    tokens = [e["word"] for e in pipeline("ner", model=reloaded)(text, aggregation="none")]
    assert set(tokens) <= set(text.split())


def test_a_default_model_tokenizes_as_the_module_pattern(tmp_path):
    torch.manual_seed(1)
    model = build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_encoder="none")
    loaded = load_model(model.save_pretrained(tmp_path / "default"))
    text = "U.S. troops (3,000 of them) left on 12:30 -- said Smith's aide. 北京"
    assert loaded.pre_tokenize(text) == vocab_module.pre_tokenize(text)


def test_plain_ascii_text_is_split_as_tokenizers_splits_it():
    """The Python path for plain ASCII text (``vocab._ASCII_TOKEN``) against tokenizers itself, on
    every string of one or two characters over its alphabet and on random longer ones (checked
    once: every string of up to three characters, and of four to six over "aZ09.-,:/'! \\t(_")."""
    by_tokenizers = vocab_module._PRE_TOKENIZER.pre_tokenize_str
    alphabet = [chr(c) for c in range(32, 127)] + ["\t", "\n", "\r", "\x0b", "\x0c"]
    rng = random.Random(0)
    texts = alphabet + [a + b for a in alphabet for b in alphabet]
    texts += ["".join(rng.choice("aZ09.-,:/' " if rng.random() < 0.7 else alphabet)
                      for _ in range(rng.randint(3, 30))) for _ in range(3000)]
    texts += ["U.S. troops (3,000 of them) left on 12:30 -- said Smith's aide.", "e-mail x-1-2 a.b.c. 1.2.3 ''s A.B"]
    vocab = vocab_module.WordVocab.from_words(["smith"])
    assert vocab._plain_ascii

    def as_columns(pieces):
        return [[p[0] for p in pieces], [p[1] for p in pieces]]

    for text in texts:
        assert vocab_module._NOT_PLAIN_ASCII.search(text) is None  # the Python path is the one checked
        assert vocab_module.pre_tokenize(text) == by_tokenizers(text), repr(text)
        assert list(map(list, vocab.tokens_and_offsets(text))) == as_columns(by_tokenizers(text)), repr(text)
    for text in ["Smith’s café", "a\x1fb c", "北京 U.S.", "x\u00a0y", "\x85z", ""]:  # tokenizers' own path
        assert vocab_module._NOT_PLAIN_ASCII.search(text) is not None or not text
        assert vocab_module.pre_tokenize(text) == by_tokenizers(text)
        assert list(map(list, vocab.tokens_and_offsets(text))) == as_columns(by_tokenizers(text))


def test_lone_surrogates_are_tagged_not_an_encoding_error(tagger):
    ner = pipeline("ner", model=tagger)
    text = "Mary \ud800 met John\udfff in Paris ."
    for aggregation in ("simple", "none"):
        for e in ner(text, aggregation=aggregation):
            assert text[e["start"]:e["end"]] == e["word"]
    tokens = [t for t, _ in tagger.pre_tokenize(text)]
    assert "\ufffd" in tokens and len(tokens) == len(vocab_module.pre_tokenize(vocab_module.without_surrogates(text)))
    assert len(tagger.predict([["\ud800", "Paris"]])[0]) == 2  # pre-tokenized input too


def test_empty_and_blank_texts_do_not_fail_a_batch():
    torch.manual_seed(2)
    clf = pipeline("sentiment-analysis", model=build_classifier(classification_dataset(), word_dim=8, hidden_size=8))
    out = clf(["", "good film", " \n\t", "\ud800"])
    assert len(out) == 4 and all(set(d) == {"label", "score"} for d in out)
    assert out[0] == out[2]


def test_segments_are_exact_and_bounded():
    rng = random.Random(0)
    for _ in range(200):
        tokens = [rng.choice(["w", "w", "w", ".", "!"]) for _ in range(rng.randrange(0, 40))]
        limit = rng.randrange(1, 8)
        spans = segments(tokens, limit)
        assert [i for a, b in spans for i in range(a, b)] == list(range(len(tokens)))  # cover, in order
        assert all(0 < b - a <= limit for a, b in spans)
        for a, b in spans:  # a segment ends at a sentence end, at the limit, or at the end
            assert tokens[b - 1] in (".", "!") or b - a == limit or b == len(tokens)
            assert not any(t in (".", "!") for t in tokens[a:b - 1])
    with pytest.raises(ValueError, match="max_tokens"):
        segments(["w"], 0)


@pytest.mark.parametrize("overlap", [True, False])
def test_errors_come_through_the_worker_thread_and_leave_no_thread_behind(tagger, overlap, monkeypatch):
    """The network one batch ahead in a worker thread, or not: an empty sentence, or a network that
    fails on its second batch, raises the caller's error, with the same results as serial otherwise."""
    sentences = [["John", "lives", "in", "Paris"], ["x"] * 3, ["EU", "rejects"], ["a"] * 7] * 5
    tagger.overlap = overlap
    try:
        before = threading.active_count()
        assert tagger.predict_entities(sentences, batch_size=3) == \
            _serial(tagger, lambda: tagger.predict_entities(sentences, batch_size=3))
        with pytest.raises(ValueError, match="cannot tag an empty sentence"):
            tagger.predict(sentences + [[]], batch_size=3)
        network, calls = tagger.emission_scores, []

        def failing(arrays):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("the network failed on batch 2")
            return network(arrays)

        monkeypatch.setattr(tagger, "emission_scores", failing)
        with pytest.raises(RuntimeError, match="failed on batch 2"):
            tagger.predict(sentences, batch_size=3)
        assert threading.active_count() == before
    finally:
        tagger.overlap = None


def _serial(tagger, call):
    saved, tagger.overlap = tagger.overlap, False
    try:
        return call()
    finally:
        tagger.overlap = saved
