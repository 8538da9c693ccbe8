"""Text classification as a user sees it: raw strings in, labels with scores out.

Raw text is pre-tokenized with character offsets kept (English words and punctuation; Chinese,
Japanese and Korean one character each), so one classifier class serves both languages.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..config import ClassifierConfig, TrainingConfig
from ..frontend import ClassifierFrontend
from ..hub import BIGRAMS_NAME, LEXICON_NAME, TOKENIZER_NAME
from ..lexicon import Lexicon, load_model_lexicon
from ..models.classifier import BiRNNClassifier
from ..modules.embedding import check_bigram_init, init_bigrams_
from ..vocab import BigramVocab, WordVocab, pre_tokenize
from ..errors import DataFormatError
from .base import (TaskModel, TokenStream, encode_dataset, initial_embeddings, label_index, lexicon_features,
                   shard_map, warn_unknown)
from .tagging import dataset_path


ARCHITECTURE = "birnn-classifier/1"


def tokenize(text: str) -> List[str]:
    return [token for token, _ in pre_tokenize(text)]


class TextClassifier(TaskModel, ClassifierFrontend):
    """``clf.predict(["A stirring, funny film."])`` -> ``[{"label": "positive", "score": 0.93}]``.

    Strings to arrays and labels come from ``ClassifierFrontend`` (shared with the ONNX
    backend); this class runs the torch module on the arrays."""

    architecture = ARCHITECTURE
    task = "text-classification"
    config_class = ClassifierConfig
    model_class = BiRNNClassifier

    def __init__(self, model: BiRNNClassifier, words: WordVocab, bigrams: Optional[BigramVocab] = None,
                 lexicon: Optional[Lexicon] = None):
        self.model = model
        self.words = words
        self.bigrams = bigrams
        self.lexicon = lexicon
        self.config: ClassifierConfig = model.config
        self.labels: List[str] = list(model.config.labels)

    def collate_targets(self, items: Sequence[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        return {"labels": torch.tensor([it["labels"] for it in items])} if "labels" in items[0] else {}

    def probability_scores(self, arrays) -> np.ndarray:
        return self.run_module(self.model.probabilities, arrays)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """(texts, num_labels) probabilities, in input order."""
        return torch.from_numpy(self.probabilities(texts, batch_size))

    def evaluate(self, dataset, batch_size: int = 256, accelerator=None) -> Dict[str, Any]:
        """Accuracy, macro-F1, per-class P/R/F1 and the confusion matrix (percent). Under several
        processes each predicts its share and all score the gathered predictions. Gold labels the
        model was never trained on are counted, with a warning, as errors."""
        from ..training.metrics import classification_scores, multilabel_scores

        texts = dataset["text"][:]
        rows = shard_map(lambda part: self.predict_proba(part, batch_size).tolist(), texts, accelerator)
        probs = torch.tensor(rows, dtype=torch.float32).view(len(texts), len(self.labels))
        where = dataset_path(dataset)
        if self.config.multi_label:
            names = dataset.features["labels"].feature.names
            gold = [{names[i] for i in row} for row in dataset["labels"][:]]
            warn_unknown("labels", dict(Counter(n for g in gold for n in g if n not in self.labels)), where)
            limit = torch.tensor(self.config.thresholds or (0.5,) * len(self.labels))
            pred = [{self.labels[i] for i in torch.nonzero(row >= limit).flatten().tolist()} for row in probs]
            return multilabel_scores(gold, pred, self.labels)
        names = dataset.features["label"].names
        gold = [names[i] for i in dataset["label"][:]]
        unknown = dict(Counter(g for g in gold if g not in self.labels))
        warn_unknown("labels", unknown, where)
        pred = [self.labels[i] for i in probs.argmax(dim=1).tolist()]
        scores = classification_scores(gold, pred, self.labels)
        if unknown:
            scores["unknown_labels"] = unknown
        return scores

    def encode_for_training(self, dataset):
        """Labelled rows as model inputs, in a (memory-mapped) Arrow table with a ``length`` column."""
        return encode_for_training(self, dataset)

    def vocabularies(self) -> Dict[str, Any]:
        return {TOKENIZER_NAME: self.words, BIGRAMS_NAME: self.bigrams, LEXICON_NAME: self.lexicon}

    @classmethod
    def _assemble(cls, model: BiRNNClassifier, folder: Path) -> "TextClassifier":
        bigrams = BigramVocab.load(folder / BIGRAMS_NAME) if model.config.bigram_vocab_size else None
        return cls(model, WordVocab.load(folder / TOKENIZER_NAME), bigrams, load_model_lexicon(folder, model.config))


def label_column(dataset) -> str:
    return "labels" if "labels" in dataset.column_names else "label"


def balanced_class_weights(counts: Sequence[int], n: int, multi_label: bool):
    """Inverse-frequency weights (n / (k * count)) from per-label counts over ``n`` examples; for
    multi-label, negatives / positives per label."""
    k = len(counts)
    if multi_label:
        return tuple((n - c) / max(c, 1) for c in counts)
    return tuple(n / (k * max(c, 1)) for c in counts)


def build_classifier(train, *, embeddings: Optional[str] = None, extra_pretrained: int = 100_000,
                     lowercase: bool = True, word_dim: int = 100, seed: int = 42, min_freq: int = 1,
                     balanced_weights: bool = False, embeddings_text: Optional[str] = None,
                     freeze_embeddings: bool = False, bigrams: bool = False, trust_pickle: bool = False,
                     bigram_init: str = "uniform", bigram_min_freq: int = 1, lexicon: Optional[str] = None,
                     lexicon_weighting: str = "frequency", lexicon_vectors: str = "word2vec",
                     **config: Any) -> TextClassifier:
    """A fresh classifier whose vocabulary and labels come from ``train`` (``text`` + ``label(s)``),
    read in batches. The labels are those that occur in ``train``, in the order of its features.

    ``embeddings``: a vectors file, ``word2vec``/``fasttext`` to train them with gensim on the
    training texts (characters, for Chinese), or None for random vectors of ``word_dim``.
    ``bigram_init``: how bigram vectors start (``textrnn.modules.embedding.init_bigrams_``);
    bigrams seen fewer than ``bigram_min_freq`` times share the unknown row.
    ``lexicon``: ``jieba`` or a file of ``WORD [FREQUENCY]`` lines; each token then also sees the
    B/M/E/S sets of the lexicon words matching there, as a lexicon tagger does (``build_tagger``).
    """
    check_bigram_init(bigram_init)
    sentences = TokenStream(train, "text", tokenize=tokenize)
    column = label_column(train)
    multi = column == "labels"
    feature = train.features[column]
    names = (feature.feature if multi else feature).names
    counts = Counter(i for row in TokenStream(train, column) for i in (row if multi else [row]))
    labels = [name for i, name in enumerate(names) if counts[i]]
    words = initial_embeddings(
        sentences, embeddings, extra_pretrained=extra_pretrained, lowercase=lowercase, word_dim=word_dim,
        seed=seed, min_freq=min_freq, unicode_normalize=True, embeddings_text=embeddings_text,
        freeze=freeze_embeddings, trust_pickle=trust_pickle)
    pairs = BigramVocab.build(sentences, min_freq=bigram_min_freq) if bigrams else None
    if pairs is not None:
        config["bigram_vocab_size"] = len(pairs)
    lex, lexicon_init = None, None
    if lexicon:
        lex, lexicon_init = lexicon_features(lexicon, sentences, config, weighting=lexicon_weighting,
                                             vectors=lexicon_vectors, embeddings_text=embeddings_text, seed=seed)
    if balanced_weights:
        config["class_weights"] = balanced_class_weights([counts[names.index(n)] for n in labels],
                                                         len(train), multi)
    torch.manual_seed(seed)
    cfg = ClassifierConfig(labels=tuple(labels), multi_label=multi, **words.config(), **config)
    model = BiRNNClassifier(cfg, words.matrix, words.ngrams, lexicon_init)
    if model.bigrams is not None:
        init_bigrams_(model.bigrams, bigram_init)
    return TextClassifier(model, words.vocab, pairs, lex)


def encode_for_training(clf: TextClassifier, dataset):
    """The labelled texts as model inputs in an Arrow table (see ``encode_dataset``)."""
    import datasets

    column = label_column(dataset)
    feature = dataset.features[column]
    names = (feature.feature if column == "labels" else feature).names
    index = label_index(names, clf.labels)
    num_labels = len(clf.labels)

    def encode_batch(batch):
        encoded = [clf.encode(text) for text in batch["text"]]
        out = {k: [e[k] for e in encoded] for k in encoded[0]}
        if column == "labels":  # multi-hot rows over the model's labels
            labels = [[0.0] * num_labels for _ in batch[column]]
            for row, ids in zip(labels, batch[column]):
                for i in ids:
                    if index[i] >= 0:
                        row[index[i]] = 1.0
        else:
            labels = [index[i] for i in batch[column]]
            if any(i < 0 for i in labels):
                unknown = sorted({names[i] for i in batch[column] if index[i] < 0})
                raise DataFormatError(dataset_path(dataset), None, f"training labels {unknown} are not among "
                                      f"the model's labels ({', '.join(clf.labels)})")
        return {**out, "labels": labels}

    signature = hashlib.sha1(clf.words.tokenizer.to_str().encode() + repr(clf.config.to_dict()).encode()
                             + repr(clf.bigrams.bigrams if clf.bigrams else None).encode()
                             + "\n".join(clf.lexicon.words if clf.lexicon else []).encode()).hexdigest()
    label_feature = datasets.Sequence(datasets.Value("float32")) if column == "labels" else datasets.Value("int32")
    features = {"labels": label_feature}
    if clf.lexicon is not None:
        features["lexicon"] = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))
    return encode_dataset(clf, dataset, encode_batch, signature, features)


def train_classifier(clf: TextClassifier, train, dev, config: TrainingConfig,
                     output_dir: Optional[str] = None, resume: bool = False, accelerator=None):
    """Train on ``train``, keep the epoch with the best dev ``config.metric`` (accuracy by default)."""
    from ..runs import train_model

    return train_model(clf, train, dev, config, output_dir=output_dir, resume=resume, accelerator=accelerator)
