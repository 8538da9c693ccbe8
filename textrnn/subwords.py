"""fastText subword vectors without gensim: the n-gram hashing of fastText, in plain Python.

A model initialised from fastText vectors carries the n-gram table in its safetensors; at inference
a word missing from the vocabulary gets the mean of its n-gram rows, as fastText (and gensim's
``ft.wv[word]``) would give it, with no gensim import.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np


def _ft_hash(data: bytes) -> int:
    """fastText's FNV-1a variant, bytes taken as signed chars (gensim's ft_hash_bytes)."""
    h = 2166136261
    for b in data:
        h = ((h ^ (b - 256 if b > 127 else b)) & 0xFFFFFFFF) * 16777619 & 0xFFFFFFFF
    return h


def _ngrams(word: str, min_n: int, max_n: int) -> list:
    """Character n-grams of ``<word>`` as UTF-8 bytes, as fastText's dictionary.cc cuts them."""
    data = f"<{word}>".encode("utf-8")
    out = []
    for i in range(len(data)):
        if data[i] & 0xC0 == 0x80:  # inside a multi-byte character
            continue
        j, n = i, 1
        while j < len(data) and n <= max_n:
            j += 1
            while j < len(data) and data[j] & 0xC0 == 0x80:
                j += 1
            if n >= min_n and not (n == 1 and (i == 0 or j == len(data))):
                out.append(data[i:j])
            n += 1
    return out


def subword_vector(word: str, table: dict) -> np.ndarray:
    """The fastText vector of an out-of-vocabulary word: the mean of its n-gram rows (zeros if none)."""
    ngrams = table["vectors_ngrams"]  # (bucket, D)
    rows = [_ft_hash(g) % table["bucket"] for g in _ngrams(word, table["min_n"], table["max_n"])]
    if not rows:
        return np.zeros(ngrams.shape[1], dtype=np.float32)
    return ngrams[rows].sum(axis=0, dtype=np.float32) / np.float32(len(rows))


@lru_cache(maxsize=200_000)
def ngram_buckets(word: str, min_n: int, max_n: int, bucket: int) -> Tuple[int, ...]:
    """The n-gram table rows of a word (cached: the same words recur across batches)."""
    return tuple(_ft_hash(g) % bucket for g in _ngrams(word, min_n, max_n))
