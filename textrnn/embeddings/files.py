"""Reading vectors files: the format sniffed from the bytes, each format parsed through gensim with
errors that name the file and line, gensim's pickles refused unless trusted, the parse cached."""
from __future__ import annotations

import gzip
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np

from textrnn.errors import ConfigError, DataFormatError

from .cache import default_cache_dir, file_sha256, read_cache, write_cache
from .vectors import Vectors

logger = logging.getLogger("textrnn.embeddings")

PathLike = Union[str, os.PathLike]
FORMATS = ("auto", "glove", "word2vec", "word2vec-binary", "fasttext-vec", "fasttext-bin", "kv")
PICKLE_FORMATS = ("kv",)  # gensim's native files (KeyedVectors.save, model.save) are pickles
PICKLE_SUFFIXES = (".kv", ".model", ".wv", ".pkl", ".pickle")
CACHE_MIN_BYTES = 1 << 20  # below this, parsing is about as fast as hashing: no cache by default
SUBWORD_BUCKETS_MAX = 1_000_000
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")


def load_vectors(path: PathLike, format: str = "auto", *, cache: Optional[bool] = None,
                 cache_dir: Optional[PathLike] = None, trust_pickle: bool = False) -> Vectors:
    """Read a vectors file (GloVe, word2vec text or binary, fastText .vec or .bin, gensim native).

    Text and binary files are parsed once and cached as ``<cache_dir>/<sha256>.npy`` and
    ``.words.txt`` (no pickle either); ``cache=None`` caches files over 1 MiB. Bad files raise
    DataFormatError. gensim's native files (.kv, .model, .wv) are pickles, which can run any code
    they hold: they load only with ``trust_pickle=True``, and the error says how to convert them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such vectors file")
    if format not in FORMATS:
        raise ConfigError(f"unknown vectors format {format!r}; expected one of {', '.join(FORMATS)}")
    fmt = sniff_format(path) if format == "auto" else format
    if fmt in PICKLE_FORMATS:
        _allow_pickle(path, trust_pickle)
    fmt = "word2vec" if fmt == "fasttext-vec" else fmt
    use_cache = path.stat().st_size >= CACHE_MIN_BYTES if cache is None else cache
    use_cache = use_cache and fmt != "fasttext-bin"  # a .bin keeps its n-grams, which the cache lacks
    start = time.perf_counter()
    if use_cache:
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        key = file_sha256(path)
        hit = read_cache(cache_dir, key, str(path))
        if hit is not None:
            logger.info("loaded %r from the cache %s in %.2f s", hit, cache_dir, time.perf_counter() - start)
            return hit
    vectors = _PARSERS[fmt](path)
    if use_cache:
        write_cache(cache_dir, key, vectors)
    logger.info("loaded %r (%s) in %.1f s", vectors, fmt, time.perf_counter() - start)
    return vectors


def sniff_format(path: PathLike) -> str:
    """Guess a file's format: gensim native by name, fastText by magic number, word2vec by header."""
    path = Path(path)
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    if name.endswith(PICKLE_SUFFIXES):
        return "kv"
    head = _read_head(path, 1 << 16)
    if head[:4] == _FASTTEXT_MAGIC:
        return "fasttext-bin"
    if _looks_pickled(head):
        return "kv"
    first, _, rest = head.partition(b"\n")
    if _header_counts(first) is not None:
        return "word2vec-binary" if _looks_binary(rest[:4096]) else "word2vec"
    return "word2vec-binary" if name.endswith(".bin") else "glove"


def _looks_pickled(head: bytes) -> bool:
    """Pickle protocol 2-5 starts with PROTO (0x80) and its number; protocol 4+ with a FRAME next."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _allow_pickle(path: Path, trust_pickle: bool) -> None:
    """Refuse a pickle unless trusted, saying how to convert it; warn when it is trusted."""
    if not trust_pickle:
        safe = path.with_suffix(".txt")
        raise DataFormatError(path, None, (
            "a gensim native file (a pickle), and loading a pickle can run any code it holds, so it is "
            "not loaded by default. Convert it once to a safe format, where you trust it: "
            f"`textrnn embeddings convert {path} --output {safe} --trust-pickle` (or in Python: "
            f"KeyedVectors.load('{path}').save_word2vec_format('{safe}')); "
            "or, if you trust this file, pass trust_pickle=True (--trust-pickle)"))
    warnings.warn(f"{path}: unpickling a gensim native file (trust_pickle=True): this runs any code the "
                  "file holds. Convert it to word2vec text once to avoid this (textrnn embeddings convert)",
                  UserWarning, stacklevel=3)


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _read_head(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        raw = f.read(2)
    if raw == b"\x1f\x8b" and not path.name.lower().endswith(".gz"):
        raise DataFormatError(path, None, "the file is gzip-compressed but its name does not end in .gz")
    try:
        with _open_bytes(path) as f:
            head = f.read(size)
    except (OSError, EOFError) as err:
        raise DataFormatError(path, None, f"cannot decompress the file: {err}") from None
    if not head.strip():
        raise DataFormatError(path, None, "the file is empty; expected one word and its vector per line")
    return head


def _header_counts(line: bytes) -> Optional[tuple]:
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _looks_binary(chunk: bytes) -> bool:
    if b"\0" in chunk:
        return True
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.reason != "unexpected end of data"  # a character cut by the chunk's end is fine
    return False


def _from_kv(kv, source: str) -> Vectors:
    words = [w if isinstance(w, str) else str(w) for w in kv.index_to_key]
    return Vectors(words, np.ascontiguousarray(kv.vectors, dtype=np.float32), source)


def _parse_text(path: Path, header: bool) -> Vectors:
    from gensim.models import KeyedVectors

    first = _read_head(path, 1 << 16).partition(b"\n")[0]
    shown = first[:60].decode("utf-8", "replace")
    if header and _header_counts(first) is None:
        raise DataFormatError(path, 1, f"expected a header 'COUNT DIM' (e.g. '400000 50'), found {shown!r}; "
                                       "for GloVe files (no header) use format='glove'")
    if not header and _header_counts(first) is not None:
        raise DataFormatError(path, 1, f"found a word2vec header {shown!r}; use format='word2vec'")
    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=not header)
    except (ValueError, EOFError, TypeError, IndexError, OverflowError) as err:
        raise _diagnose_text(path, header, err) from None
    if len(kv) == 0:
        raise DataFormatError(path, None, "the file holds no vectors")
    return _from_kv(kv, str(path))


def _diagnose_text(path: Path, header: bool, err: Exception) -> DataFormatError:
    """Find the line that made gensim fail; the scan runs only after a failure."""
    dim, lineno, expected = None, 0, None
    with _open_bytes(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
                if "\0" in text:
                    raise UnicodeDecodeError("utf-8", raw, raw.index(b"\0"), len(raw), "NUL byte")
            except UnicodeDecodeError as bad:
                return DataFormatError(path, lineno, f"not UTF-8 text (byte {bad.start}); is this a binary "
                                                     "file? use format='word2vec-binary' or 'fasttext-bin'")
            parts = text.rstrip().split(" ")
            if header and lineno == 1:
                expected, dim = _header_counts(raw)
                continue
            if parts == [""]:
                return DataFormatError(path, lineno, f"empty line; expected a word and {dim or 'its'} values")
            values = parts[1:]
            dim = len(values) if dim is None else dim
            if dim == 0:
                return DataFormatError(path, lineno, f"expected a word and its values separated by spaces, "
                                                     f"found {text[:40]!r}")
            if len(values) != dim:
                message = f"expected {dim} values after the word, found {len(values)}"
                return DataFormatError(path, lineno, message)
            for k, value in enumerate(values, 1):
                try:
                    float(value)
                except ValueError:
                    what = "empty (two spaces in a row?)" if value == "" else f"not a number: {value!r}"
                    return DataFormatError(path, lineno, f"value {k} after the word {parts[0]!r} is {what}")
    found = lineno - 1 if header else lineno
    if expected is not None and found < expected:
        return DataFormatError(path, None, f"the header says {expected} vectors but the file has {found}")
    return DataFormatError(path, None, f"cannot read the vectors: {type(err).__name__}: {err}")


def _parse_word2vec_binary(path: Path) -> Vectors:
    from gensim.models import KeyedVectors

    first = _read_head(path, 1 << 16).partition(b"\n")[0]
    if _header_counts(first) is None:
        raise DataFormatError(path, 1, "expected a word2vec binary header 'COUNT DIM'; not a word2vec "
                                       "binary file (nor a fastText .bin, whose magic number is missing)")
    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=True)
    except (ValueError, EOFError, TypeError, IndexError) as err:
        raise DataFormatError(path, None, f"damaged word2vec binary file: {err}") from None
    return _from_kv(kv, str(path))


def _parse_fasttext_bin(path: Path) -> Vectors:
    from gensim.models.fasttext import load_facebook_vectors

    if _read_head(path, 4)[:4] != _FASTTEXT_MAGIC:
        raise DataFormatError(path, None, "not a fastText .bin file (its magic number is missing)")
    try:
        kv = load_facebook_vectors(str(path))
    except Exception as err:  # struct, assertion and numpy errors from a damaged file
        message = f"damaged fastText .bin file: {type(err).__name__}: {err}"
        raise DataFormatError(path, None, message) from None
    vectors = _from_kv(kv, str(path))
    if kv.bucket <= SUBWORD_BUCKETS_MAX:
        vectors.subwords = fasttext_subword_table(kv)
    return vectors


def _parse_native(path: Path) -> Vectors:
    from gensim.models import KeyedVectors
    from gensim.utils import SaveLoad

    try:  # a pickle: load_vectors lets only trusted files reach this
        obj = SaveLoad.load(str(path))
    except Exception as err:
        raise DataFormatError(path, None, f"not a gensim model or KeyedVectors file: {err}") from None
    kv = getattr(obj, "wv", obj)
    if not isinstance(kv, KeyedVectors):
        message = f"expected gensim KeyedVectors or a model, found {type(obj).__name__}"
        raise DataFormatError(path, None, message)
    return _from_kv(kv, str(path))


_PARSERS = {
    "glove": lambda p: _parse_text(p, header=False),
    "word2vec": lambda p: _parse_text(p, header=True),
    "word2vec-binary": _parse_word2vec_binary,
    "fasttext-bin": _parse_fasttext_bin,
    "kv": _parse_native,
}


def fasttext_subword_table(model, num_buckets_max: int = SUBWORD_BUCKETS_MAX) -> dict:
    """The n-gram settings and the full (bucket, D) n-gram matrix of a FastText model or its vectors."""
    wv = getattr(model, "wv", model)
    if not hasattr(wv, "vectors_ngrams"):
        raise ConfigError(f"expected a gensim FastText model or FastTextKeyedVectors, "
                          f"got {type(wv).__name__}")
    if wv.bucket > num_buckets_max:
        raise ConfigError(f"the model has {wv.bucket:,} n-gram buckets, over num_buckets_max="
                          f"{num_buckets_max:,}; train with a smaller `bucket` or raise the limit")
    return {"min_n": int(wv.min_n), "max_n": int(wv.max_n), "bucket": int(wv.bucket),
            "vectors_ngrams": np.asarray(wv.vectors_ngrams, dtype=np.float32)}  # (bucket, D)
