"""The embedding matrix of a vocabulary: each word's pretrained vector found through the Ma & Hovy
fallbacks (exact, lowercase, digits as 0), the rest random, extra pretrained rows appended."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from textrnn.errors import ConfigError

from .vectors import Vectors

logger = logging.getLogger("textrnn.embeddings")

_DIGIT = re.compile(r"\d")


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
