"""Text classification as a user sees it: raw strings in, labels with scores out.

Raw text is pre-tokenized with character offsets kept (English words and punctuation; Chinese,
Japanese and Korean one character each), so one classifier class serves both languages.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..config import ClassifierConfig, TrainingConfig
from ..frontend import ClassifierFrontend
from ..hub import BIGRAMS_NAME, TOKENIZER_NAME
from ..models.classifier import BiRNNClassifier
from ..vocab import BigramVocab, WordVocab, pre_tokenize
from .base import TaskModel, encode_split, fit, initial_embeddings


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

    def __init__(self, model: BiRNNClassifier, words: WordVocab, bigrams: Optional[BigramVocab] = None):
        self.model = model
        self.words = words
        self.bigrams = bigrams
        self.config: ClassifierConfig = model.config
        self.labels: List[str] = list(model.config.labels)

    def collate_targets(self, items: Sequence[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        return {"labels": torch.tensor([it["labels"] for it in items])} if "labels" in items[0] else {}

    def probability_scores(self, arrays) -> np.ndarray:
        return self.run_module(self.model.probabilities, arrays)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """(texts, num_labels) probabilities, in input order."""
        return torch.from_numpy(self.probabilities(texts, batch_size))

    def vocabularies(self) -> Dict[str, Any]:
        return {TOKENIZER_NAME: self.words, BIGRAMS_NAME: self.bigrams}

    @classmethod
    def _assemble(cls, model: BiRNNClassifier, folder: Path) -> "TextClassifier":
        bigrams = BigramVocab.load(folder / BIGRAMS_NAME) if model.config.bigram_vocab_size else None
        return cls(model, WordVocab.load(folder / TOKENIZER_NAME), bigrams)


def label_column(dataset) -> str:
    return "labels" if "labels" in dataset.column_names else "label"


def balanced_class_weights(rows, num_labels: int, multi_label: bool):
    """Inverse-frequency weights (n / (k * count)); for multi-label, negatives / positives per label."""
    counts = [0] * num_labels
    for row in rows:
        for i in (row if multi_label else [row]):
            counts[i] += 1
    n = len(rows)
    if multi_label:
        return tuple((n - c) / max(c, 1) for c in counts)
    return tuple(n / (num_labels * max(c, 1)) for c in counts)


def build_classifier(train, *, embeddings: Optional[str] = None, extra_pretrained: int = 100_000,
                     lowercase: bool = True, word_dim: int = 100, seed: int = 42, min_freq: int = 1,
                     balanced_weights: bool = False, embeddings_text: Optional[str] = None,
                     freeze_embeddings: bool = False, bigrams: bool = False, **config: Any) -> TextClassifier:
    """A fresh classifier whose vocabulary and labels come from ``train`` (``text`` + ``label(s)``).

    ``embeddings``: a vectors file, ``word2vec``/``fasttext`` to train them with gensim on the
    training texts (characters, for Chinese), or None for random vectors of ``word_dim``.
    """
    sentences = [tokenize(t) for t in train["text"]]
    column = label_column(train)
    feature = train.features[column]
    labels = (feature.feature if column == "labels" else feature).names
    vocab, init, word_dim, num_trainable, subwords, ngrams = initial_embeddings(
        sentences, embeddings, extra_pretrained=extra_pretrained, lowercase=lowercase, word_dim=word_dim,
        seed=seed, min_freq=min_freq, unicode_normalize=True, embeddings_text=embeddings_text,
        freeze=freeze_embeddings)
    pairs = BigramVocab.build(sentences) if bigrams else None
    if pairs is not None:
        config["bigram_vocab_size"] = len(pairs)
    if balanced_weights:
        config["class_weights"] = balanced_class_weights(train[column], len(labels), column == "labels")
    torch.manual_seed(seed)
    cfg = ClassifierConfig(vocab_size=len(vocab), labels=tuple(labels), multi_label=column == "labels",
                           word_dim=word_dim, num_trainable_words=num_trainable, **subwords, **config)
    return TextClassifier(BiRNNClassifier(cfg, init, ngrams), vocab, pairs)


def train_classifier(clf: TextClassifier, train, dev, config: TrainingConfig,
                     output_dir: Optional[str] = None, resume: bool = False, accelerator=None):
    """Train on ``train``, keep the epoch with the best dev ``config.metric`` (accuracy by default)."""
    column = label_column(train)
    num_labels = len(clf.labels)

    def encode_batch(batch):
        encoded = [clf.encode(text) for text in batch["text"]]
        out = {k: [e[k] for e in encoded] for k in encoded[0]}
        if column == "labels":  # multi-hot rows
            labels = [[1.0 if i in set(row) else 0.0 for i in range(num_labels)] for row in batch[column]]
        else:
            labels = batch[column]
        return {**out, "labels": labels}

    signature = hashlib.sha1(clf.words.tokenizer.to_str().encode() + repr(clf.config.to_dict()).encode()
                             + repr(clf.bigrams.bigrams if clf.bigrams else None).encode()).hexdigest()
    import datasets

    label_feature = (datasets.Sequence(datasets.Value("float32")) if column == "labels" else train.features[column])
    items = encode_split(clf, train, encode_batch, signature, {"labels": label_feature})
    return fit(clf, items, lambda: clf.evaluate(dev, batch_size=config.eval_batch_size), config,
               output_dir, resume, accelerator)


def finish_classification_run(clf: TextClassifier, result, test, args, recipe: str,
                              dataset: Optional[str] = None) -> Dict[str, Any]:
    """Save the model, score the test set, write metrics JSON and the confusion-matrix plot beside
    it, drop the resume checkpoint, and print the one JSON line that scripts read."""
    import json
    import time

    from ..hub import write_model_card
    from ..options import training_config
    from ..training.metrics import plot_confusion_matrix
    from ..training.trainer import remove_checkpoint
    from ..utils import atomic_write_text

    out = Path(args.output_dir)
    args_config = training_config(args).to_dict()
    clf.save_pretrained(out)
    start = time.perf_counter()
    test_metrics = clf.evaluate(test)
    seconds = time.perf_counter() - start
    atomic_write_text(out / "test_metrics.json", json.dumps(test_metrics, indent=2) + "\n")
    if "confusion_matrix" in test_metrics:
        plot_confusion_matrix(test_metrics["confusion_matrix"], out / "confusion_matrix.png",
                              title=f"{recipe}: test set")
    results = {
        "recipe": recipe, "rnn": clf.config.rnn, "pooling": clf.config.pooling,
        "embeddings": Path(args.embeddings).name if args.embeddings else None,
        "dev_accuracy": round(result.best_metrics.get("accuracy", float("nan")), 2),
        "dev_macro_f1": round(result.best_metrics.get("macro_f1", float("nan")), 2),
        "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "test_accuracy": round(test_metrics["accuracy"], 2), "test_macro_f1": round(test_metrics["macro_f1"], 2),
        "train_seconds": round(result.train_seconds, 1), "test_texts_per_second": round(len(test) / seconds),
        "seed": args.seed, "output_dir": str(out),
    }
    results["command"] = " ".join(["python"] + sys.argv)  # what to run to get these figures again
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    write_model_card(out, "text-classification", dataset=dataset,
                     metrics={"accuracy": test_metrics["accuracy"], "macro_f1": test_metrics["macro_f1"]},
                     training={**args_config, "embeddings": results["embeddings"]})
    remove_checkpoint(out)
    print(json.dumps(results), flush=True)
    return results
