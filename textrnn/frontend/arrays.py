"""Arrays from encoded items: padding, batches by length, character tables; and the collector's pause."""
from __future__ import annotations

import contextlib
import gc
import itertools
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..decoding import lengths_mask

Item = Dict[str, Any]
Arrays = Dict[str, np.ndarray]
TOKENS_PER_SENTENCE = 32  # padded positions per sentence of batch_size: 8,192 at batch 256


def padded(rows: Sequence[Sequence[int]], width: Optional[int] = None, fill: int = 0) -> np.ndarray:
    """Rows of ids, right-padded with ``fill`` to ``width`` (default: the longest row), as int64."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max(initial=0)) if width is None else width
    out = np.full((len(rows), width), fill, dtype=np.int64)
    total = int(lengths.sum())
    if total:
        out[lengths_mask(lengths, width)] = np.fromiter(itertools.chain.from_iterable(rows), np.int64, total)
    return out


def padded_codes(rows: Sequence[Sequence[Sequence[int]]], width: int) -> np.ndarray:
    """Per sentence, per token, lexicon codes -> (batch, width, most codes at a token), 0-padded."""
    k = max((len(codes) for row in rows for codes in row), default=0) or 1
    out = np.zeros((len(rows), width, k), dtype=np.int64)
    for b, row in enumerate(rows):
        for t, codes in enumerate(row):
            if codes:
                out[b, t, : len(codes)] = codes
    return out


def length_batches(lengths: Sequence[int], batch_size: int,
                   tokens_per_sentence: int = TOKENS_PER_SENTENCE) -> List[List[int]]:
    """Indices sorted by length (stably), cut into batches of at most ``batch_size`` sentences
    and ``batch_size * tokens_per_sentence`` padded positions: sentences of a batch need little
    padding, and a batch of long sentences is cut smaller so that memory stays bounded (the
    network's buffers grow with batch x longest sentence)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    budget = batch_size * tokens_per_sentence
    batches: List[List[int]] = []
    current: List[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if current and (len(current) == batch_size or (len(current) + 1) * lengths[i] > budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def char_arrays(items: Sequence[Item], mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``chars`` (words, longest word) holds each distinct word of the batch once, in order of
    first use, and ``char_index`` (batch, seq) the row of each position; padding points one past
    the last row.

    Words are told apart by the identity of their id lists: ``CharVocab.encode_word`` hands out
    one cached list per word, so equal words cost nothing to find, and lists that merely look
    alike (as read back from a datasets cache) are kept apart: slower, never wrong."""
    flat = list(itertools.chain.from_iterable(item["chars"] for item in items))
    keys = np.fromiter(map(id, flat), dtype=np.int64, count=len(flat))
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)  # distinct words by first use
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    char_index = np.full(mask.shape, len(order), dtype=np.int64)
    char_index[mask] = rank[inverse.reshape(-1)]
    return padded([flat[i] for i in first[order].tolist()]), char_index


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection while inside (refcounting still frees everything here).

    Inference allocates many small containers that live a while (tokens, offsets, results),
    which triggers CPython's full collections; each walks every object of the process (torch
    alone brings ~250,000) and took 0.13 s of a 0.55 s pipeline call over the CoNLL-2003 test
    set. Nothing here makes reference cycles, so pausing the collector loses nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
