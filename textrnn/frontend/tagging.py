"""A tagger's front end: tokens to arrays, emissions to tags, token scores and spans with their
probabilities (``SpanReader`` reads the spans of a whole batch at once)."""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .. import tags as tag_schemes
from ..decoding import CRFDecoder, SoftmaxDecoder, lengths_mask
from .arrays import Arrays, Item, char_arrays, gc_paused, length_batches
from .base import Frontend

Decoder = Any  # CRFDecoder or SoftmaxDecoder here, or textrnn.decoding_torch's: anything with decode()
TOKEN_CACHE_SIZE = 200_000  # tokens whose ids a tagger remembers (common words recur in every batch)


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
