"""Vectors from gensim: Word2Vec / FastText trained on the user's text, files written (whole or not at
all) and converted to safe formats, and the vectors a run starts from."""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from textrnn.errors import ConfigError, DataFormatError
from textrnn.utils import FILE_MODE, default_data_dir

from .files import PathLike, _from_kv, fasttext_subword_table, load_vectors
from .vectors import Vectors

logger = logging.getLogger("textrnn.embeddings")


def train_word_vectors(sentences: Iterable[list], method: str = "word2vec", dim: int = 100, window: int = 5,
                       min_count: int = 1, epochs: int = 10, seed: int = 0, workers: int = 1, sg: int = 1,
                       **options: Any):
    """Train gensim Word2Vec or FastText (skip-gram by default) and return the model.

    With ``workers=1`` the result depends only on ``seed`` (gensim 4 draws its initial vectors from
    numpy's generator seeded by it, not from Python's salted ``hash``). FastText gets
    ``bucket=200_000`` unless ``options`` says otherwise, to keep its n-gram table small.
    """
    from gensim.models import FastText, Word2Vec

    if method not in ("word2vec", "fasttext"):
        raise ConfigError(f"unknown method {method!r}; expected 'word2vec' or 'fasttext'")
    if iter(sentences) is sentences:  # a generator would run dry: gensim iterates several times
        sentences = list(sentences)
    # a restartable iterable (a corpus streamed from disk) stays one: it is never all in memory
    first = list(itertools.islice(iter(sentences), 100))
    if not any(first):
        raise DataFormatError(None, None, "no sentences to train word vectors on")
    if any(isinstance(s, str) for s in first):
        raise DataFormatError(None, None, "sentences must be lists of tokens, not strings; split them first")
    cls = FastText if method == "fasttext" else Word2Vec
    if method == "fasttext":
        options.setdefault("bucket", 200_000)
    start = time.perf_counter()
    model = cls(sentences, vector_size=dim, window=window, min_count=min_count, epochs=epochs, seed=seed,
                workers=workers, sg=sg, **options)
    logger.info("trained %s: %d words x %d on %d sentences in %.1f s", method, len(model.wv), dim,
                model.corpus_count, time.perf_counter() - start)
    return model


def save_vectors(model_or_vectors, path: PathLike, format: str = "word2vec") -> None:
    """Write vectors as word2vec text ("word2vec", ".gz" works), "word2vec-binary", "glove", a fastText
    "fasttext-bin" (a FastText model only) or gensim native "kv" (a full model keeps training state;
    a pickle, which textrnn loads only with trust_pickle=True). Each file but "kv" (whose large
    arrays go to side files named after it) is written whole or not at all.
    """
    from gensim.models.fasttext import FastText, save_facebook_model

    path = str(path)
    obj = model_or_vectors
    if format == "fasttext-bin":
        if not isinstance(obj, FastText):
            raise ConfigError(f"format='fasttext-bin' needs a gensim FastText model, "
                              f"got {type(obj).__name__}")
        _write_whole(path, lambda tmp: save_facebook_model(obj, tmp))
        return
    if format == "kv":
        (obj if hasattr(obj, "wv") else _to_kv(obj)).save(path)
        return
    kv = _to_kv(obj)
    if format in ("word2vec", "fasttext-vec", "word2vec-binary", "glove"):
        _write_whole(path, lambda tmp: kv.save_word2vec_format(tmp, binary=format == "word2vec-binary",
                                                               write_header=format != "glove"))
    else:
        raise ConfigError(f"cannot save format {format!r}; expected word2vec, word2vec-binary, glove, "
                          "fasttext-bin or kv")


def _write_whole(path: str, write) -> None:
    """``write(tmp)`` to a temporary name beside ``path`` (ending like it: gensim compresses by the
    .gz suffix), then one rename."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                               suffix=".part" + (".gz" if target.name.lower().endswith(".gz") else ""))
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def convert_vectors(source: PathLike, output: PathLike, format: str = "word2vec", *,
                    trust_pickle: bool = False) -> Vectors:
    """Rewrite a vectors file in a safe format (word2vec text by default): above all a gensim
    native pickle, converted once where it is trusted, so later runs never unpickle it."""
    if format not in ("word2vec", "word2vec-binary", "glove"):
        raise ConfigError(f"cannot convert to {format!r}; expected word2vec, word2vec-binary or glove")
    vectors = load_vectors(source, cache=False, trust_pickle=trust_pickle)
    save_vectors(vectors, output, format)
    return vectors


def _to_kv(obj):
    from gensim.models import KeyedVectors

    if isinstance(obj, Vectors):
        kv = KeyedVectors(obj.dim, dtype=np.float32)
        kv.add_vectors(obj.words, obj.matrix)
        return kv
    return obj.wv if hasattr(obj, "wv") else obj


def vectors_from_source(spec: Optional[str], *, corpus_sentences: Optional[Iterable[list]] = None,
                        trust_pickle: bool = False, **train_options: Any) -> Optional[Vectors]:
    """Vectors for a run: a file path (or a name under the data folder), vectors trained on
    ``corpus_sentences`` ("word2vec", "fasttext"), or None for random embeddings ("random", None).
    ``trust_pickle``: also load gensim native files, which are pickles (see load_vectors).
    """
    if spec is None or spec == "random":
        logger.info("no pretrained vectors: embeddings start random")
        return None
    if spec in ("word2vec", "fasttext"):
        if corpus_sentences is None:
            raise ConfigError(f"embeddings {spec!r} are trained on the corpus, but no corpus_sentences given")
        model = train_word_vectors(corpus_sentences, method=spec, **train_options)
        vectors = _from_kv(model.wv, f"{spec} trained on {model.corpus_count:,} sentences")
        if spec == "fasttext":
            vectors.subwords = fasttext_subword_table(model)
        return vectors
    return load_vectors(resolve_vectors_path(spec), trust_pickle=trust_pickle)


def resolve_vectors_path(spec: PathLike) -> Path:
    """``spec`` itself if it exists, else the file of that name in the data folder or a folder in it."""
    path = Path(spec).expanduser()
    if path.exists():
        return path
    data = default_data_dir()
    for candidate in [data / path, *(d / path for d in sorted(data.glob("*")) if d.is_dir())]:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{spec}: no such vectors file (looked here and under {data}); "
                            "expected a path, 'word2vec', 'fasttext' or 'random'")
