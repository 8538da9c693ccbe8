"""Strings to arrays and arrays to results: all a tagger or classifier does around its network.

Shared by the torch backend (``textrnn.tasks``) and the ONNX one (``textrnn.export.runtime``):
each backend only says how to turn a batch of arrays into emissions or probabilities. Imports
neither torch nor datasets, so an exported model runs on numpy, tokenizers and onnxruntime alone.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import tags as tag_schemes
from .decoding import CRFDecoder, SoftmaxDecoder, lengths_mask
from .subwords import ngram_buckets

Item = Dict[str, Any]
Arrays = Dict[str, np.ndarray]
Decoder = Any  # CRFDecoder or SoftmaxDecoder here, or textrnn.decoding_torch's: anything with decode()
TOKENS_PER_SENTENCE = 32  # padded positions per sentence of batch_size: 8,192 at batch 256
TOKEN_CACHE_SIZE = 200_000  # tokens whose ids a tagger remembers (common words recur in every batch)


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


class SpanReader:
    """``tags.get_spans`` for a whole batch of tag-id paths at once: ``reader(paths, lengths)`` ->
    (rows, starts, ends, types) arrays, sentence by sentence and in order within each, as
    ``get_spans`` finds them (ends exclusive; ``type_names[types]`` the entity types). Array
    lookups in ``tags.chunk_boundaries``'s tables instead of a Python loop over every tag: 0.3
    instead of 2.8 us per CoNLL-2003 sentence. ``extends[type]`` (num_tags,): the tags that would
    continue a span of that type (I-, M-, E-), which the tag after a span must not be."""

    def __init__(self, labels: Sequence[str], scheme: str):
        ends, starts = tag_schemes.chunk_boundaries(labels, scheme)
        self.ends, self.starts = np.array(ends, dtype=bool), np.array(starts, dtype=bool)  # (K + 1, K + 1)
        self.outside = len(labels)
        self.type_names = sorted({label[2:] for label in labels if label != "O"})
        number = {name: i for i, name in enumerate(self.type_names)}
        self.type_of = np.array([number[label[2:]] if label != "O" else -1 for label in labels] + [-1])
        self.extends = np.array([[label[:2] in ("I-", "M-", "E-") and label[2:] == name for label in labels]
                                 for name in self.type_names], dtype=bool).reshape(-1, len(labels))

    def __call__(self, paths: np.ndarray, lengths: np.ndarray) -> Tuple[np.ndarray, ...]:
        batch, seq = paths.shape
        tags = np.full((batch, seq + 1), self.outside, dtype=np.intp)  # (batch, seq + 1): outside past ends
        tags[:, :seq] = np.where(lengths_mask(lengths, seq), paths, self.outside)
        before = np.empty_like(tags)  # (batch, seq + 1): the tag before each
        before[:, 0] = self.outside
        before[:, 1:] = tags[:, :-1]
        rows, starts = np.nonzero(self.starts[before, tags])
        end_rows, ends = np.nonzero(self.ends[before, tags])
        assert np.array_equal(rows, end_rows), "spans must start and end in pairs"
        return rows, starts, ends, self.type_of[tags[rows, starts]]


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


class TaggerFrontend(Frontend):
    """Tokens in, tags (with scores and spans) out; a backend defines ``emission_scores`` and
    ``crf_parameters``."""

    chars: Any = None

    def emission_scores(self, arrays: Arrays) -> np.ndarray:  # pragma: no cover - abstract
        """(batch, seq, num_tags) float32."""
        raise NotImplementedError

    def crf_parameters(self) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:  # pragma: no cover
        """(transitions, start, end) of the CRF, unconstrained, or None for a softmax tagger."""
        raise NotImplementedError

    def decoder(self) -> Decoder:
        """The numpy decoder of this tagger's emissions: Viterbi and marginals under the scheme's
        constraints for a CRF, each token's best tag for softmax."""
        params = self.crf_parameters()
        if params is None:
            return SoftmaxDecoder()
        return CRFDecoder.for_labels(*params, self.labels, self.config.scheme)

    @functools.cached_property
    def span_reader(self) -> SpanReader:
        return SpanReader(self.labels, self.config.scheme)

    def decoding(self) -> Tuple[Callable[[Arrays], Any], Decoder]:
        """(network, decoder) for one prediction call: what turns a batch of arrays into emissions,
        and what decodes them (``decoder.decode(emissions, lengths, scores)``, see
        ``textrnn.decoding.CRFDecoded``). Here numpy on the host; a backend whose network runs on
        a GPU may keep the emissions there and decode them there."""
        return self.emission_scores, self.decoder()

    # strings -> arrays ----------------------------------------------------------------------------
    def encode(self, tokens: Sequence[str]) -> Item:
        if self.chars is None:
            item = self.encode_words(tokens)
        else:  # one cache lookup per token for both its word id and its characters
            cache = self.__dict__.setdefault("_token_cache", {})
            entries = [cache.get(t) or self._token_entry(cache, t) for t in tokens]
            item = self.encode_words(tokens, [e[0] for e in entries])
            item["chars"] = [e[1] for e in entries]
        return self.add_character_features(item, tokens)

    def _token_entry(self, cache: Dict[str, Tuple], token: str) -> Tuple[int, List[int]]:
        entry = (self.words.id(token), self.chars.encode_word(token, self.config.max_word_length))
        if len(cache) < TOKEN_CACHE_SIZE:
            cache[token] = entry
        return entry

    def arrays(self, items: Sequence[Item]) -> Arrays:
        """The word arrays plus ``bigrams`` (batch, seq), ``chars`` and ``char_index`` (see
        ``char_arrays``), and ``lexicon`` (batch, seq, k) codes."""
        if any(not it["words"] for it in items):
            raise ValueError("cannot tag an empty sentence: every sentence needs at least one token")
        out = self.character_arrays(items, self.word_arrays(items))
        if self.chars is not None:
            out["chars"], out["char_index"] = char_arrays(items, out["mask"])
        return out

    # prediction -----------------------------------------------------------------------------------
    def predict(self, sentences: Sequence[Sequence[str]], batch_size: int = 256, with_scores: bool = False):
        """Tags for each sentence (a list of tokens), in input order; with per-token confidences."""
        results = self._decode(sentences, batch_size, scores=with_scores, spans=False)
        tags = [r[0] for r in results]
        return (tags, [r[1] for r in results]) if with_scores else tags

    def predict_entities(self, sentences: Sequence[Sequence[str]], batch_size: int = 256):
        """Per sentence: (tags, token scores, [(label, first, end, span probability)]); end is exclusive."""
        return self._decode(sentences, batch_size, scores=True, spans=True)

    def _decode(self, sentences, batch_size: int, scores: bool, spans: bool) -> List[Tuple]:
        # a datasets Column decodes row by row when iterated: one bulk conversion is ~10x cheaper
        sentences = list(sentences)
        results: List[Optional[Tuple]] = [None] * len(sentences)
        network, decoder = self.decoding()
        batches = self._sentence_batches(sentences, batch_size)
        with self.inference(), gc_paused():
            if getattr(decoder, "on_device", False):
                self._decode_on_device(batches, network, decoder, results, scores, spans)
                return results
            for indices, arrays, emissions in self.network_batches(batches, network):
                lengths = arrays["lengths"]
                decoded = decoder.decode(emissions, lengths, scores)
                found = self._find_spans(decoded, lengths) if spans else None
                self._decode_batch(decoded.paths, decoded.picked, found, indices, lengths, results, scores)
        return results

    def _decode_on_device(self, batches, network, decoder, results: List, scores: bool, spans: bool) -> None:
        """A decoder on the model's device (``textrnn.decoding_torch``) finds the spans there too,
        and a batch's results come back with one wait. Where ``overlap`` is True it runs one batch
        ahead, with no thread: batch i + 1's work is queued on the device before batch i's results
        are read and built (a worker thread would not help on a GPU, see
        ``TaskModel.overlap_network``)."""
        # (a tagger without entity types has no spans to find)
        tables = decoder.span_tables(self.span_reader) if spans and self.span_reader.type_names else None
        pending = None
        for indices, arrays in batches:
            lengths = arrays["lengths"]
            launched = (indices, lengths, decoder.launch(network(arrays), lengths, scores, tables))
            if pending is not None:
                self._collect(pending, results, scores)
            pending = launched
            if not self.overlap:
                self._collect(pending, results, scores)
                pending = None
        if pending is not None:
            self._collect(pending, results, scores)

    def _collect(self, launched, results: List, scores: bool) -> None:
        indices, lengths, pending = launched
        paths, picked, found = pending.result()
        self._decode_batch(paths, picked, found, indices, lengths, results, scores)

    def _sentence_batches(self, sentences: Sequence[Sequence[str]], batch_size: int
                          ) -> Iterator[Tuple[List[int], Arrays]]:
        """(indices, arrays) over length-sorted sentences, each batch encoded as it is reached (so
        that encoding, too, runs beside the network of the batch before)."""
        for indices in length_batches([len(s) for s in sentences], batch_size):
            yield indices, self.arrays([self.encode(sentences[i]) for i in indices])

    def _find_spans(self, decoded, lengths: np.ndarray) -> List[Tuple[int, str, int, int, float]]:
        """(row in the batch, entity type, first token, end token (exclusive), probability) for
        each span of a decoded batch's paths."""
        reader = self.span_reader
        rows, starts, ends, types = reader(decoded.paths, lengths)
        if not len(rows):
            return []
        values = decoded.span_probabilities(rows, starts, ends, reader.extends[types])
        names = reader.type_names
        return [(row, names[typ], first, end, value) for row, typ, first, end, value
                in zip(rows.tolist(), types.tolist(), starts.tolist(), ends.tolist(), values)]

    def _decode_batch(self, paths: np.ndarray, picked: Optional[np.ndarray], found, indices: List[int],
                      lengths: np.ndarray, results: List, scores: bool) -> None:
        """Fill ``results[i]`` with (tags, token scores or None, spans) for one decoded batch: its
        paths, the picked tags' probabilities and its spans (``_find_spans``; None where not asked for)."""
        labels = self.labels
        rows = [path[:n] for path, n in zip(paths.tolist(), lengths.tolist())]
        if not scores:
            for j, path in zip(indices, rows):
                results[j] = ([labels[t] for t in path], None, None)
            return
        for j, path, probs in zip(indices, rows, picked.tolist()):
            results[j] = ([labels[t] for t in path], probs[: len(path)], [])
        for row, name, first, end, value in found or ():
            results[indices[row]][2].append((name, first, end, value))

    def evaluate(self, dataset, batch_size: int = 256, report: bool = False) -> Dict[str, Any]:
        """Entity P/R/F1 (conlleval and strict) against a Dataset with ``tokens`` and ``tags``;
        with ``report``, also seqeval's per-type table as text (one prediction pass for both)."""
        from .training.metrics import entity_report, entity_scores

        names = dataset.features["tags"].feature.names
        gold = [[names[t] for t in row] for row in dataset["tags"]]
        pred = self.predict(dataset["tokens"], batch_size=batch_size)
        scores = entity_scores(gold, pred, self.config.scheme)
        if report:
            scores["report"] = entity_report(gold, pred, self.config.scheme)
        return scores


class ClassifierFrontend(Frontend):
    """Raw text in, labels with scores out; a backend defines ``probability_scores``."""

    def probability_scores(self, arrays: Arrays) -> np.ndarray:  # pragma: no cover - abstract
        """(batch, num_labels): softmax, or independent sigmoids for multi-label."""
        raise NotImplementedError

    def tokenize(self, text: str) -> List[str]:
        return [token for token, _ in self.pre_tokenize(text)]

    def encode(self, text: str) -> Item:
        """Ids of the text's tokens. A text without any (empty, or only spaces) reads as one
        unknown word, so it gets the model's answer for "nothing it knows" instead of failing
        the batch it came in."""
        tokens = self.tokenize(text)
        if not tokens:
            item: Item = {"words": [1]}
            if self.config.subword_buckets:
                item["oov"] = []
            if self.bigrams is not None:
                item["bigrams"] = [1]
            if self.lexicon is not None:
                item["lexicon"] = [[]]
            return item
        return self.add_character_features(self.encode_words(tokens), tokens)

    def arrays(self, items: Sequence[Item]) -> Arrays:
        return self.character_arrays(items, self.word_arrays(items))

    def probabilities(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """(texts, num_labels) float32 probabilities, in input order."""
        items = [self.encode(t) for t in list(texts)]  # list(): a datasets Column decodes row by row
        out = np.zeros((len(items), len(self.labels)), dtype=np.float32)
        with self.inference(), gc_paused():
            batches = self.array_batches(items, batch_size)
            for indices, _, probs in self.network_batches(batches, self.probability_scores):
                out[indices] = probs
        return out

    def predict(self, texts: Sequence[str], batch_size: int = 256, top_k: Optional[int] = 1):
        """Single-label: the best label (or the ``top_k`` best, ``None`` for all) with its score.
        Multi-label: every label whose probability reaches its threshold."""
        probs = self.probabilities(texts, batch_size)
        thresholds = dict(zip(self.labels, self.config.thresholds or (0.5,) * len(self.labels)))
        results = []
        for row in probs.tolist():
            ranked = sorted(zip(self.labels, row), key=lambda kv: -kv[1])
            if self.config.multi_label:
                results.append([{"label": k, "score": v} for k, v in ranked if v >= thresholds[k]])
            elif top_k == 1:
                results.append({"label": ranked[0][0], "score": ranked[0][1]})
            else:
                results.append([{"label": k, "score": v} for k, v in ranked[:top_k]])
        return results

    def evaluate(self, dataset, batch_size: int = 256) -> Dict[str, Any]:
        """Accuracy, macro-F1, per-class P/R/F1 and the confusion matrix (percent)."""
        from .training.metrics import classification_scores, multilabel_scores

        probs = self.probabilities(dataset["text"], batch_size)
        if self.config.multi_label:
            names = dataset.features["labels"].feature.names
            gold = [{names[i] for i in row} for row in dataset["labels"]]
            limit = np.array(self.config.thresholds or (0.5,) * len(self.labels), dtype=np.float32)
            pred = [{self.labels[i] for i in np.flatnonzero(row >= limit)} for row in probs]
            return multilabel_scores(gold, pred, self.labels)
        names = dataset.features["label"].names
        gold = [names[i] for i in dataset["label"]]
        pred = [self.labels[i] for i in probs.argmax(axis=1).tolist()]
        return classification_scores(gold, pred, self.labels)
