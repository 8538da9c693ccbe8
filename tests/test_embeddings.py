"""Tests of textrnn.embeddings: every file format, clear errors, the cache, the lookup fallbacks,
deterministic training and fastText subwords without gensim. Fixtures are tiny files in tmp_path."""
from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from textrnn import embeddings as emb
from textrnn.embeddings import (DataFormatError, Vectors, build_embedding_matrix, fasttext_subword_table,
                                load_vectors, save_vectors, subword_vector, train_word_vectors,
                                vectors_from_source)
from textrnn.utils import default_data_dir

WORDS = ["the", "paris", "Paris", "0000", "cat", "über", "unused"]
MATRIX = (np.arange(len(WORDS) * 4, dtype=np.float32).reshape(-1, 4) / 8 - 1)  # exact in text
CORPUS = [s.split() for s in [
    "the cat sat on the mat", "a dog sat on the log", "the cat saw a dog", "dogs and cats play",
    "paris is a city in france", "berlin is a city in germany", "über alles the cat ran",
    "the quick brown fox jumps over the lazy dog", "a cat and a dog are friends",
] * 4]


def _lines(words=WORDS, matrix=MATRIX):
    return [w + " " + " ".join(repr(float(x)) for x in row) for w, row in zip(words, matrix)]


def _write(path, lines, header=None):
    text = "".join(f"{line}\n" for line in ([header] if header else []) + lines).encode("utf-8")
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(text)
    else:
        path.write_bytes(text)
    return path


@pytest.fixture
def glove(tmp_path):
    return _write(tmp_path / "glove.txt", _lines())


@pytest.fixture(scope="module")
def fasttext_model():
    return train_word_vectors(CORPUS, method="fasttext", dim=8, epochs=3, bucket=1000)


def _check(vectors, words=WORDS, matrix=MATRIX):
    assert vectors.words == words
    assert vectors.matrix.dtype == np.float32 and vectors.matrix.shape == matrix.shape
    np.testing.assert_array_equal(vectors.matrix, matrix)


# ---------------------------------------------------------------------------------------- formats
@pytest.mark.parametrize("name, header, format", [
    ("g.txt", False, "auto"), ("g.txt", False, "glove"), ("g.txt.gz", False, "auto"),
    ("w.txt", True, "auto"), ("w.txt", True, "word2vec"), ("w.txt.gz", True, "auto"),
    ("ft.vec", True, "auto"), ("ft.vec", True, "fasttext-vec"),
])
def test_text_formats_load(tmp_path, name, header, format):
    path = _write(tmp_path / name, _lines(), header=f"{len(WORDS)} 4" if header else None)
    vectors = load_vectors(path, format)
    _check(vectors)
    assert vectors.source == str(path) and not vectors.cached


@pytest.mark.parametrize("name, format", [("w.bin", "auto"), ("w.bin", "word2vec-binary"),
                                          ("w.dat", "auto"), ("w.bin.gz", "auto")])
def test_binary_formats_load(tmp_path, glove, name, format):
    path = tmp_path / name
    save_vectors(load_vectors(glove), path, "word2vec-binary")
    assert emb.sniff_format(path) == "word2vec-binary"
    _check(load_vectors(path, format))


# ------------------------------------------------------------------------------ pickles run code
class _Payload:
    """Unpickling this creates ``marker``: what a crafted vectors file would do with a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(path, marker):
    import pickle

    path.write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    return path


@pytest.mark.parametrize("name", ["vectors.kv", "vectors.model", "vectors.wv", "vectors.pkl", "vectors.bin",
                                  "vectors.txt", "vectors.kv.gz"])
def test_a_crafted_pickle_is_refused_and_never_runs(tmp_path, name):
    marker = tmp_path / "pwned"
    path = _crafted(tmp_path / name, marker)
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(path.read_bytes()))
    for load in (lambda: load_vectors(path), lambda: load_vectors(path, "kv"),
                 lambda: vectors_from_source(str(path))):
        with pytest.raises(DataFormatError) as info:
            load()
        assert not marker.exists(), "the pickle ran"
        if not name.endswith((".bin", ".txt")) or "pickle" in info.value.message:
            message = info.value.message
            assert "pickle" in message and "trust_pickle=True" in message
            assert "textrnn embeddings convert" in message and "save_word2vec_format" in message


def test_trusted_gensim_native_files_load_with_a_warning_and_convert(tmp_path, glove, capsys):
    from textrnn.cli import main

    native = tmp_path / "w.kv"
    save_vectors(load_vectors(glove), native, "kv")
    assert emb.sniff_format(native) == "kv"
    with pytest.raises(DataFormatError, match="pickle"):
        load_vectors(native)
    with pytest.warns(UserWarning, match="unpickling"):
        _check(load_vectors(native, trust_pickle=True))
    with pytest.warns(UserWarning, match="unpickling"):
        _check(vectors_from_source(str(native), trust_pickle=True))
    out = tmp_path / "w.txt"
    assert main(["embeddings", "convert", str(native), "--output", str(out)]) == 2
    assert "pickle" in capsys.readouterr().err and not out.exists()
    with pytest.warns(UserWarning, match="unpickling"):
        assert main(["embeddings", "convert", str(native), "--output", str(out), "--trust-pickle"]) == 0
    _check(load_vectors(out))  # word2vec text, loaded without trust
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_parse_cache_is_not_a_pickle(tmp_path, glove):
    """A cache entry replaced by a pickled object array is ignored, never unpickled."""
    cache = tmp_path / "cache"
    load_vectors(glove, cache=True, cache_dir=cache)
    marker = tmp_path / "pwned"
    key = emb.file_sha256(glove)
    payload = np.empty(len(WORDS), dtype=object)
    payload[0] = _Payload(marker)
    np.save(cache / f"{key}.npy", payload, allow_pickle=True)
    again = load_vectors(glove, cache=True, cache_dir=cache)
    assert not marker.exists() and not again.cached
    _check(again)
    assert np.load(cache / f"{key}.npy", allow_pickle=False).dtype == np.float32  # rewritten as numbers


@pytest.mark.parametrize("format", ["word2vec", "glove"])
def test_save_round_trip(tmp_path, glove, format):
    path = tmp_path / "out.txt.gz"
    save_vectors(load_vectors(glove), path, format)
    _check(load_vectors(path))


def test_fasttext_bin_loads_with_subwords(tmp_path, fasttext_model):
    path = tmp_path / "ft.bin"
    save_vectors(fasttext_model, path, "fasttext-bin")
    assert emb.sniff_format(path) == "fasttext-bin"
    vectors = load_vectors(path)
    assert vectors.words == fasttext_model.wv.index_to_key
    np.testing.assert_allclose(vectors.matrix, fasttext_model.wv.vectors, rtol=1e-5, atol=1e-7)
    for word in ["catz", "Parisian"]:
        np.testing.assert_allclose(subword_vector(word, vectors.subwords), fasttext_model.wv[word],
                                   rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------------- errors
def _error(path, format="auto"):
    with pytest.raises(DataFormatError) as info:
        load_vectors(path, format)
    return info.value


def test_wrong_dimension_names_the_line(tmp_path):
    lines = _lines()
    lines[2] = lines[2].rsplit(" ", 1)[0]
    err = _error(_write(tmp_path / "glove.txt", lines))
    assert (err.line, err.message) == (3, "expected 4 values after the word, found 3")
    assert str(err) == f"{tmp_path / 'glove.txt'}:3: expected 4 values after the word, found 3"
    err = _error(_write(tmp_path / "w2v.txt.gz", lines, header="7 4"))
    assert (err.line, err.message) == (4, "expected 4 values after the word, found 3")


def test_too_many_values_and_blank_line(tmp_path):
    lines = _lines()
    lines[1] += " 0.5"
    assert _error(_write(tmp_path / "a.txt", lines)).message == "expected 4 values after the word, found 5"
    err = _error(_write(tmp_path / "b.txt", _lines()[:2] + [""] + _lines()[2:]))
    assert err.line == 3 and "empty line" in err.message


@pytest.mark.parametrize("name", ["empty.txt", "empty.txt.gz", "blank.txt"])
def test_empty_file(tmp_path, name):
    path = _write(tmp_path / name, ["", ""] if name == "blank.txt" else [])
    assert "empty" in _error(path).message
    assert "empty" in _error(path, "glove").message


def test_binary_given_as_text(tmp_path, glove):
    path = tmp_path / "vectors.bin"
    save_vectors(load_vectors(glove), path, "word2vec-binary")
    err = _error(path, "word2vec")
    assert err.line == 2 and "not UTF-8" in err.message
    noise = tmp_path / "noise.txt"
    noise.write_bytes(bytes(range(256)) * 4)
    err = _error(noise)
    assert err.line == 1 and "binary" in err.message


def test_non_numeric_value(tmp_path):
    lines = _lines()
    lines[3] = "0000 0.1 abc 0.3 0.4"
    err = _error(_write(tmp_path / "glove.txt", lines))
    assert err.line == 4 and err.message == "value 2 after the word '0000' is not a number: 'abc'"


def test_header_mismatches(tmp_path):
    err = _error(_write(tmp_path / "short.txt", _lines(), header="9 4"))
    assert "header says 9 vectors but the file has 7" in err.message
    assert _error(_write(tmp_path / "w.txt", _lines(), header="7 4"), "glove").line == 1
    err = _error(_write(tmp_path / "g.txt", _lines()), "word2vec")
    assert err.line == 1 and "format='glove'" in err.message
    assert "not a fastText" in _error(_write(tmp_path / "g.bin", _lines()), "fasttext-bin").message


def test_gzip_without_gz_name(tmp_path):
    path = tmp_path / "glove.txt"
    _write(tmp_path / "x.gz", _lines()).rename(path)
    assert "gzip" in _error(path).message


# ------------------------------------------------------------------------------------------ cache
def test_cache_hit_gives_the_same_vectors(tmp_path, glove, monkeypatch):
    cache = tmp_path / "cache"
    first = load_vectors(glove, cache=True, cache_dir=cache)
    key = emb.file_sha256(glove)
    assert not first.cached and sorted(p.name for p in cache.iterdir()) == [f"{key}.npy", f"{key}.words.txt"]

    def no_parsing(path):
        raise AssertionError("parsed the file despite the cache")

    monkeypatch.setitem(emb._PARSERS, "glove", no_parsing)
    second = load_vectors(glove, cache=True, cache_dir=cache)
    assert second.cached
    _check(second)
    monkeypatch.setenv("TEXTRNN_CACHE", str(cache))
    assert load_vectors(glove, cache=True).cached
    with pytest.raises(AssertionError):
        load_vectors(glove, cache=False)


def test_cache_ignores_a_damaged_entry(tmp_path, glove):
    cache = tmp_path / "cache"
    load_vectors(glove, cache=True, cache_dir=cache)
    (cache / f"{emb.file_sha256(glove)}.words.txt").write_text("the\ncat\n")
    again = load_vectors(glove, cache=True, cache_dir=cache)
    assert not again.cached
    _check(again)
    assert load_vectors(glove, cache=True, cache_dir=cache).cached  # rewritten whole


def test_small_files_are_not_cached_by_default(tmp_path, glove, monkeypatch):
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path / "cache"))
    load_vectors(glove)
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------ embedding table
def _vectors():
    return Vectors(list(WORDS), MATRIX.copy(), "test")


def test_lookup_fallbacks_and_coverage():
    vocab = ["<pad>", "<unk>", "The", "Paris", "PARIS", "1999", "Über", "dog", "cat"]
    counts = {"The": 10, "Paris": 3, "PARIS": 1, "1999": 2, "Über": 1, "dog": 4, "cat": 5}
    table = build_embedding_matrix(vocab, _vectors(), train_counts=counts)
    row = {w: i for i, w in enumerate(WORDS)}
    expect = {"The": "the", "Paris": "Paris", "PARIS": "paris", "1999": "0000", "Über": "über",
              "cat": "cat"}
    for i, word in enumerate(vocab):
        if word in expect:
            np.testing.assert_array_equal(table.matrix[i], MATRIX[row[expect[word]]])
    np.testing.assert_array_equal(table.matrix[0], 0)
    s = math.sqrt(3 / 4)
    for i in (1, vocab.index("dog")):
        assert np.all(np.abs(table.matrix[i]) <= s) and np.any(table.matrix[i] != 0)
    cov = table.coverage
    assert (cov.exact, cov.lowercase, cov.digits) == (2, 3, 1)
    assert (cov.types_found, cov.types_total, cov.tokens_found, cov.tokens_total) == (6, 7, 22, 26)
    assert str(cov) == ("embeddings cover 84.6% of train tokens (6 / 7 types): "
                        "2 exact, 3 lowercase, 1 digit-normalised")
    assert table.num_trainable == len(vocab) and table.words == vocab
    assert table.matrix.dtype == np.float32 and table.matrix.shape == (len(vocab), 4)


def test_no_lowercase_and_scale_and_seed():
    vocab = ["<pad>", "<unk>", "The", "Paris", "12", "dog"]
    table = build_embedding_matrix(vocab, _vectors(), lowercase=False, scale=0.01, seed=3)
    cov = table.coverage
    assert (cov.exact, cov.lowercase, cov.digits, cov.tokens_total) == (1, 0, 0, 4)
    assert "of vocabulary types" in str(cov)
    assert np.abs(table.matrix[[1, 2, 4, 5]]).max() <= 0.01
    again = build_embedding_matrix(vocab, _vectors(), lowercase=False, scale=0.01, seed=3)
    np.testing.assert_array_equal(table.matrix, again.matrix)
    other = build_embedding_matrix(vocab, _vectors(), lowercase=False, scale=0.01, seed=4)
    assert not np.array_equal(table.matrix[1], other.matrix[1])


def test_extra_pretrained_appends_in_order_and_skips_covered():
    vocab = ["<pad>", "<unk>", "THE", "cat", "dog"]
    table = build_embedding_matrix(vocab, _vectors(), extra_pretrained=3)
    # "the" is covered through "THE" and "cat" is in the vocabulary: the next three in file order
    assert table.words == vocab + ["paris", "Paris", "0000"]
    assert table.num_trainable == len(vocab) and table.coverage.extra == 3
    np.testing.assert_array_equal(table.matrix[len(vocab):], MATRIX[[1, 2, 3]])
    everything = build_embedding_matrix(vocab, _vectors(), extra_pretrained=100)
    assert everything.words[len(vocab):] == ["paris", "Paris", "0000", "über", "unused"]
    np.testing.assert_array_equal(everything.matrix[:len(vocab)], table.matrix[:len(vocab)])


def test_bad_vocabulary():
    with pytest.raises(ValueError, match="duplicates"):
        build_embedding_matrix(["<pad>", "<unk>", "a", "a"], _vectors())
    with pytest.raises(ValueError, match="extra_pretrained"):
        build_embedding_matrix(["<pad>", "<unk>"], _vectors(), extra_pretrained=-1)


# ------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("method", ["word2vec", "fasttext"])
def test_training_is_deterministic(method):
    kwargs = dict(method=method, dim=8, epochs=2, seed=7, bucket=1000) if method == "fasttext" else \
        dict(method=method, dim=8, epochs=2, seed=7)
    a = train_word_vectors(iter(CORPUS), **kwargs)  # a generator is fine: it is read once
    b = train_word_vectors(CORPUS, **kwargs)
    assert a.wv.index_to_key == b.wv.index_to_key and "cat" in a.wv
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    c = train_word_vectors(CORPUS, **{**kwargs, "seed": 8})
    assert not np.array_equal(a.wv.vectors, c.wv.vectors)


def test_training_rejects_bad_input():
    with pytest.raises(DataFormatError, match="no sentences"):
        train_word_vectors([])
    with pytest.raises(DataFormatError, match="lists of tokens"):
        train_word_vectors(["the cat sat"])
    with pytest.raises(ValueError, match="unknown method"):
        train_word_vectors(CORPUS, method="glove")


def test_subword_vector_equals_gensim_for_unseen_words(fasttext_model):
    table = fasttext_subword_table(fasttext_model)
    assert (table["min_n"], table["max_n"], table["bucket"]) == (3, 6, 1000)
    assert table["vectors_ngrams"].shape == (1000, 8)
    for word in ["catdog", "Parisians", "xyzzy", "überall", "日本語の", "naïveté", "ab"]:
        assert word not in fasttext_model.wv.key_to_index
        np.testing.assert_allclose(subword_vector(word, table), fasttext_model.wv[word], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="buckets"):
        fasttext_subword_table(fasttext_model, num_buckets_max=999)


def test_ft_hash_matches_gensim():
    from gensim.models.fasttext_inner import ft_hash_bytes

    for text in ["<the>", "über", "日本", "", "\x7f\x80"]:
        data = text.encode("utf-8")
        assert emb._ft_hash(data) == ft_hash_bytes(data)


def test_vectors_from_source(tmp_path, glove, monkeypatch):
    assert vectors_from_source(None) is None and vectors_from_source("random") is None
    _check(vectors_from_source(str(glove)))
    monkeypatch.setenv("TEXTRNN_DATA_DIR", str(tmp_path))
    _check(vectors_from_source("glove.txt"))
    with pytest.raises(FileNotFoundError, match="no such vectors file"):
        vectors_from_source("missing.txt")
    with pytest.raises(ValueError, match="corpus_sentences"):
        vectors_from_source("word2vec")
    w2v = vectors_from_source("word2vec", corpus_sentences=CORPUS, dim=6, epochs=1)
    assert w2v.dim == 6 and "cat" in w2v.words and w2v.subwords is None and "trained" in w2v.source
    ft = vectors_from_source("fasttext", corpus_sentences=CORPUS, dim=6, epochs=1, bucket=500)
    assert ft.subwords["vectors_ngrams"].shape == (500, 6)


def test_import_textrnn_does_not_load_gensim():
    import subprocess
    import sys

    code = "import sys, textrnn, textrnn.embeddings; assert 'gensim' not in sys.modules, 'gensim loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -------------------------------------------------------------------------------------- real data
@pytest.mark.slow
def test_real_glove(tmp_path):
    path = default_data_dir() / "glove" / "glove.6B.50d.txt.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    first = load_vectors(path, cache_dir=tmp_path)
    assert first.matrix.shape == (400_000, 50) and first.matrix.dtype == np.float32
    assert first.words[0] == "the" and not first.cached
    second = load_vectors(path, cache_dir=tmp_path)
    assert second.cached and second.words == first.words
    np.testing.assert_array_equal(second.matrix, first.matrix)
    vocab = ["<pad>", "<unk>", "The", "1999", "Washington"]
    table = build_embedding_matrix(vocab, second, extra_pretrained=10)
    assert table.coverage.types_found == 3 and table.words[5:8] == [",", ".", "of"]  # "the" is covered
