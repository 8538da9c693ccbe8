"""A classifier's front end: raw text to arrays, probabilities to labels with scores."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .arrays import Arrays, Item, gc_paused
from .base import Frontend


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
