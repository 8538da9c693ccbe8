"""textrnn: bidirectional LSTM/GRU taggers and classifiers, fast on a CPU, native to Hugging Face.

    from textrnn import pipeline
    ner = pipeline("ner", model="runs/conll03-bilstm-crf")
    ner("George Washington went to Washington.")

Names are imported on first use, so ``import textrnn`` (and ``textrnn --help``) stays quick.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "pipeline": "textrnn.pipelines",
    "load_corpus": "textrnn.data",
    "load_model": "textrnn.tasks",
    "SequenceTagger": "textrnn.tasks.tagging",
    "build_tagger": "textrnn.tasks.tagging",
    "train_tagger": "textrnn.tasks.tagging",
    "TextClassifier": "textrnn.tasks.classification",
    "build_classifier": "textrnn.tasks.classification",
    "train_classifier": "textrnn.tasks.classification",
    "TaggerConfig": "textrnn.config",
    "ClassifierConfig": "textrnn.config",
    "TrainingConfig": "textrnn.config",
    "Trainer": "textrnn.training.trainer",
    "TextrnnError": "textrnn.errors",
    "DataFormatError": "textrnn.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'textrnn' has no attribute {name!r}")


def __dir__():
    return __all__
