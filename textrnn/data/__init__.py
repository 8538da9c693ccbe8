"""Corpora: readers for CoNLL columns, BMES, CSV/TSV/JSONL and hub ids; data-card checks.

``load_corpus`` is the entry point; it returns a ``datasets.DatasetDict`` with ``tokens``/``tags``
(tagging) or ``text``/``label`` (classification), label names in the features.
"""
from .cards import Card, available_cards, card_for, cards_dir, default_data_dir, sha256_file, verify_file
from .loading import load_corpus
from .readers import FORMATS, LabelledFile, TaggedFile, infer_format, read_file
from .stats import corpus_statistics, format_statistics, read_report

__all__ = [
    "FORMATS",
    "Card",
    "LabelledFile",
    "TaggedFile",
    "available_cards",
    "card_for",
    "cards_dir",
    "corpus_statistics",
    "default_data_dir",
    "format_statistics",
    "infer_format",
    "load_corpus",
    "read_file",
    "read_report",
    "sha256_file",
    "verify_file",
]
