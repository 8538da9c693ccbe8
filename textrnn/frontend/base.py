"""What taggers and classifiers share around their network: words to ids, arrays, batches, overlap."""
from __future__ import annotations

import contextlib
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..decoding import lengths_mask
from ..subwords import ngram_buckets
from .arrays import Arrays, Item, length_batches, padded, padded_codes


class Frontend:
    """What taggers and classifiers share: words to ids, batches by length, the model's own
    pre-tokenizer, and the inference context of a backend."""

    config: Any
    words: Any  # WordVocab
    labels: List[str]
    bigrams: Any = None  # BigramVocab of a character-level model
    lexicon: Any = None  # textrnn.lexicon.Lexicon of a lexicon-enhanced (Chinese) model
    precision = "fp32"

    def pre_tokenize(self, text: str) -> List[Tuple[str, Tuple[int, int]]]:
        """Tokens with character offsets, by the pre-tokenizer saved with this model."""
        return self.words.pre_tokenize(text)

    def tokens_and_offsets(self, text: str) -> Tuple[Sequence[str], Sequence[Tuple[int, int]]]:
        """``pre_tokenize`` as two sequences: tokens, and their (start, end) character offsets."""
        return self.words.tokens_and_offsets(text)

    def inference(self):
        """The context every prediction runs in (the torch backend: eval mode)."""
        return contextlib.nullcontext()

    # whether a call runs one batch ahead of its Python: the network in a worker thread
    # (``network_batches``), or for a decoder on a GPU the next batch queued there before the last
    # one is read (``TaggerFrontend._decode_on_device``). None: the thread where
    # ``overlap_network`` says it pays, serial on a device (on an H100 ahead was no faster: 23,082 against
    # 23,556 sentences/s, docs/benchmarks.md); True or False forces it
    overlap: Optional[bool] = None

    def overlap_network(self) -> bool:
        """Where the worker thread pays (the default when ``overlap`` is None)."""
        return True

    def encode_words(self, tokens: Sequence[str], ids: Optional[List[int]] = None) -> Item:
        """Word ids, and for unknown words the fastText n-gram rows when the model carries them."""
        ids = self.words.encode(tokens) if ids is None else ids
        item: Item = {"words": ids}
        c = self.config
        if c.subword_buckets:
            normalize = self.words.normalize
            item["oov"] = [[i, *ngram_buckets(normalize(tokens[i]), c.subword_min_n, c.subword_max_n,
                                              c.subword_buckets)] for i, w in enumerate(ids) if w == 1]
        return item

    def word_arrays(self, items: Sequence[Item]) -> Arrays:
        """words (batch, seq), lengths, mask, and the n-gram rows of unknown words if any:
        ``oov_positions`` index the flattened (batch * seq) positions, ``oov_buckets`` (n, width)
        hold their rows, -1 for padding."""
        rows = [it["words"] for it in items]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        words = padded(rows)
        out = {"words": words, "lengths": lengths, "mask": lengths_mask(lengths, words.shape[1])}
        if self.config.subword_buckets:
            seq = words.shape[1]
            oov = [(row * seq + entry[0], entry[1:]) for row, it in enumerate(items) for entry in it["oov"]]
            out["oov_positions"] = np.array([p for p, _ in oov], dtype=np.int64)
            width = max((len(b) for _, b in oov), default=1) or 1
            out["oov_buckets"] = padded([b for _, b in oov], width, fill=-1)
        return out

    def add_character_features(self, item: Item, tokens: Sequence[str]) -> Item:
        """``item`` plus, where the model has them, each token's bigram id and the codes of its
        B/M/E/S lexicon words (character-level models, taggers and classifiers alike)."""
        if self.bigrams is not None:
            item["bigrams"] = self.bigrams.encode(tokens)
        if self.lexicon is not None:
            item["lexicon"] = self.lexicon.codes(tokens)
        return item

    def character_arrays(self, items: Sequence[Item], out: Arrays) -> Arrays:
        """``out`` (the word arrays) plus ``bigrams`` (batch, seq) and ``lexicon`` (batch, seq, k) codes."""
        if self.bigrams is not None:
            out["bigrams"] = padded([it["bigrams"] for it in items], out["words"].shape[1])
        if self.lexicon is not None:
            out["lexicon"] = padded_codes([it["lexicon"] for it in items], out["words"].shape[1])
        return out

    def arrays(self, items: Sequence[Item]) -> Arrays:  # pragma: no cover - abstract
        raise NotImplementedError

    def array_batches(self, items: Sequence[Item], batch_size: int) -> Iterator[Tuple[List[int], Arrays]]:
        """(indices, arrays) over length-sorted items."""
        for indices in length_batches([len(it["words"]) for it in items], batch_size):
            yield indices, self.arrays([items[i] for i in indices])

    def network_batches(self, batches: Iterable[Tuple[List[int], Arrays]], stage: Callable[[Arrays], Any]
                        ) -> Iterator[Tuple[List[int], Arrays, Any]]:
        """(indices, arrays, ``stage(arrays)``) for each of ``batches``, in order; ``stage`` is the
        part that waits, the network. Where ``overlap_network`` (or ``overlap`` forces it) and there
        are several batches, it runs
        one batch ahead in a worker thread (torch and onnxruntime release the GIL), on batch i + 1
        while the caller turns batch i into results and builds the arrays of batch i + 2: 6,100
        instead of 5,100 sentences/s for the int8 CoNLL-2003 pipeline on onnxruntime (2 threads,
        2 cores). torch on every core of a CPU loses by it (6,300 -> 5,200 in bf16): its OpenMP
        threads spin and the third thread slows them."""
        batches = iter(batches)
        first = next(batches, None)
        threaded = self.overlap_network() if self.overlap is None else self.overlap
        second = next(batches, None) if first is not None and threaded else None
        if second is None:  # serial: asked for, or a single batch (a thread pool costs ~170 us)
            for indices, arrays in itertools.chain([first] if first is not None else [], batches):
                yield indices, arrays, stage(arrays)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="textrnn-network") as worker:
            pending = (first[0], first[1], worker.submit(stage, first[1]))
            for indices, arrays in itertools.chain([second], batches):
                running = (indices, arrays, worker.submit(stage, arrays))
                yield pending[0], pending[1], pending[2].result()
                pending = running
            yield pending[0], pending[1], pending[2].result()
