"""Word vectors through gensim: load GloVe / word2vec / fastText files, cache them, train new ones,
and build the embedding matrix of a vocabulary with the Ma & Hovy fallbacks.

The only textrnn module that imports gensim, and only inside functions, so that `import textrnn`
and loading a saved model never need it. `subword_vector` reproduces fastText's vectors for
unseen words with numpy alone, for inference without gensim.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import itertools
import logging
import math
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np

from textrnn.errors import ConfigError, DataFormatError
from textrnn.utils import FILE_MODE, default_data_dir

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
FORMATS = ("auto", "glove", "word2vec", "word2vec-binary", "fasttext-vec", "fasttext-bin", "kv")
PICKLE_FORMATS = ("kv",)  # gensim's native files (KeyedVectors.save, model.save) are pickles
PICKLE_SUFFIXES = (".kv", ".model", ".wv", ".pkl", ".pickle")
CACHE_MIN_BYTES = 1 << 20  # below this, parsing is about as fast as hashing: no cache by default
SUBWORD_BUCKETS_MAX = 1_000_000
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")
_DIGIT = re.compile(r"\d")


@dataclass
class Vectors:
    """Pretrained word vectors: ``words[i]`` has the vector ``matrix[i]``."""

    words: list = field(repr=False)
    matrix: np.ndarray = field(repr=False)  # (N, D) float32
    source: str = ""
    cached: bool = False  # True when read from the parse cache instead of the file
    subwords: Optional[dict] = field(default=None, repr=False)  # fastText n-grams, see subword_vector

    def __post_init__(self):
        assert self.matrix.ndim == 2 and self.matrix.shape[0] == len(self.words), self.matrix.shape

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Vectors({len(self):,} x {self.dim} from {self.source}{', cached' if self.cached else ''})"


# ----------------------------------------------------------------------------------------- loading
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
        hit = _read_cache(cache_dir, key, str(path))
        if hit is not None:
            logger.info("loaded %r from the cache %s in %.2f s", hit, cache_dir, time.perf_counter() - start)
            return hit
    vectors = _PARSERS[fmt](path)
    if use_cache:
        _write_cache(cache_dir, key, vectors)
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


def default_cache_dir() -> Path:
    """``$TEXTRNN_CACHE`` or ``~/.cache/textrnn/vectors``."""
    env = os.environ.get("TEXTRNN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "textrnn" / "vectors"


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (about 0.2 s for 70 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


# ------------------------------------------------------------------------------------------- cache
def _read_cache(cache_dir: Path, key: str, source: str) -> Optional[Vectors]:
    npy, txt = cache_dir / f"{key}.npy", cache_dir / f"{key}.words.txt"
    if not (npy.is_file() and txt.is_file()):
        return None
    try:
        matrix = np.load(npy, allow_pickle=False)
        text = txt.read_bytes().decode("utf-8")
    except (OSError, ValueError) as err:
        logger.warning("ignoring the unreadable cache entry %s: %s", npy, err)
        return None
    words = text[:-1].split("\n")  # not splitlines(): words may hold \x85 or \u2028
    if matrix.ndim != 2 or matrix.dtype != np.float32 or matrix.shape[0] != len(words):
        logger.warning("ignoring the inconsistent cache entry %s", npy)
        return None
    return Vectors(words, matrix, source, cached=True)


def _write_cache(cache_dir: Path, key: str, vectors: Vectors) -> None:
    """Words first, matrix last: a reader needs both, and each appears whole (os.replace)."""
    if any("\n" in w for w in vectors.words):
        logger.warning("not caching %r: a word holds a newline", vectors)
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(vectors.words) + "\n").encode("utf-8")
        _atomic_write(cache_dir / f"{key}.words.txt", lambda f: f.write(data))
        _atomic_write(cache_dir / f"{key}.npy", lambda f: np.save(f, vectors.matrix, allow_pickle=False))
    except (OSError, UnicodeEncodeError) as err:
        logger.warning("could not cache the vectors in %s: %s", cache_dir, err)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- the embedding table
@dataclass
class Coverage:
    """How many vocabulary words found a pretrained vector, and by which lookup."""

    types_found: int
    types_total: int
    tokens_found: int
    tokens_total: int
    exact: int
    lowercase: int
    digits: int
    weighted: bool = False  # tokens weighted by training counts
    extra: int = 0  # pretrained rows appended after the vocabulary

    @property
    def token_rate(self) -> float:
        return self.tokens_found / self.tokens_total if self.tokens_total else 0.0

    def __str__(self) -> str:
        what = "train tokens" if self.weighted else "vocabulary types"
        text = (f"embeddings cover {100 * self.token_rate:.1f}% of {what} ({self.types_found:,} / "
                f"{self.types_total:,} types): {self.exact:,} exact, {self.lowercase:,} lowercase, "
                f"{self.digits:,} digit-normalised")
        return text + (f"; {self.extra:,} more pretrained words appended, frozen" if self.extra else "")


@dataclass
class EmbeddingTable:
    """Rows for the vocabulary (trainable), then extra pretrained rows (to keep frozen)."""

    words: list = field(repr=False)
    matrix: np.ndarray = field(repr=False)  # (V, D) float32
    num_trainable: int
    coverage: Coverage


def candidate_keys(word: str, lowercase: bool = True) -> list:
    """The keys tried for ``word``, in order: exact, lowercase, then digits replaced by 0."""
    low = word.lower() if lowercase else word
    keys = [word, low, _DIGIT.sub("0", low)]
    return [k for i, k in enumerate(keys) if k not in keys[:i]]


def build_embedding_matrix(vocab_words: list, vectors: Vectors, *, train_counts: Optional[dict] = None,
                           extra_pretrained: int = 0, lowercase: bool = True, seed: int = 0,
                           scale: Optional[float] = None) -> EmbeddingTable:
    """Copy a pretrained vector into each vocabulary row (row 0 `<pad>` zeros, row 1 `<unk>` random);
    words without one get uniform(-s, s), s = sqrt(3 / D) (Ma & Hovy, 2016) unless ``scale``.
    """
    if len(set(vocab_words)) != len(vocab_words):
        raise ConfigError("vocab_words holds duplicates")
    if extra_pretrained < 0:
        raise ConfigError(f"extra_pretrained must be >= 0, got {extra_pretrained}")
    dim = vectors.dim
    s = math.sqrt(3.0 / dim) if scale is None else scale
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-s, s, (len(vocab_words), dim)).astype(np.float32)  # (V, D)
    index = {}
    for i, w in enumerate(vectors.words):
        index.setdefault(w, i)
    used, kinds = set(), [0, 0, 0]  # exact, lowercase, digit-normalised
    tokens_found = tokens_total = 0
    for row, word in enumerate(vocab_words):
        if row < 2:  # padding and unknown are not words; padding stays zero
            continue
        count = train_counts.get(word, 0) if train_counts is not None else 1
        tokens_total += count
        keys = candidate_keys(word, lowercase)
        hit = next((k for k in keys if k in index), None)
        if hit is None:
            continue
        matrix[row] = vectors.matrix[index[hit]]
        used.add(hit)
        kinds[0 if hit == word else 1 if lowercase and hit == word.lower() else 2] += 1
        tokens_found += count
    if len(vocab_words) > 0:
        matrix[0] = 0.0
    extra_words = _extra_words(vectors.words, set(vocab_words) | used, extra_pretrained)
    if extra_words:
        extra = vectors.matrix[[index[w] for w in extra_words]]  # (E, D)
        matrix = np.concatenate([matrix, extra.astype(np.float32)])
    coverage = Coverage(sum(kinds), max(len(vocab_words) - 2, 0), tokens_found, tokens_total, *kinds,
                        weighted=train_counts is not None, extra=len(extra_words))
    logger.info("%s", coverage)
    return EmbeddingTable(list(vocab_words) + extra_words, matrix, len(vocab_words), coverage)


def _extra_words(pretrained: list, covered: set, limit: int) -> list:
    extra, seen = [], set()
    for w in pretrained:
        if len(extra) >= limit:
            break
        if w not in covered and w not in seen:
            extra.append(w)
            seen.add(w)
    return extra


# ------------------------------------------------------------------------------------------ training
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


# -------------------------------------------------------------------------------- fastText subwords
from .subwords import _ft_hash, _ngrams, subword_vector  # noqa: E402,F401  (gensim-free, for inference)


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


# ------------------------------------------------------------------------------------------ sources
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
