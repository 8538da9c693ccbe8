"""Corpora: readers for CoNLL columns, BMES, CSV/TSV/JSONL and hub ids; data-card checks.

``load_corpus`` is the entry point; it returns a ``datasets.DatasetDict`` with ``tokens``/``tags``
(tagging) or ``text``/``label`` (classification), label names in the features, and
``dataset_scheme(split)`` the tag scheme its reader recorded. Readers stream (``scan_file`` checks
and counts a file, ``iter_rows`` yields its rows), so memory does not grow with the corpus.
"""
from .cards import Card, available_cards, card_for, cards_dir, default_data_dir, sha256_file, verify_file
from .loading import dataset_scheme, load_corpus, scan_corpus
from .readers import FORMATS, infer_format, iter_rows, read_file, scan_file
from .records import FileScan, LabelledFile, TaggedFile
from .stats import corpus_statistics, format_statistics, read_report, scan_statistics

__all__ = [
    "FORMATS",
    "Card",
    "FileScan",
    "LabelledFile",
    "TaggedFile",
    "available_cards",
    "card_for",
    "cards_dir",
    "corpus_statistics",
    "dataset_scheme",
    "default_data_dir",
    "format_statistics",
    "infer_format",
    "iter_rows",
    "load_corpus",
    "read_file",
    "read_report",
    "scan_corpus",
    "scan_file",
    "scan_statistics",
    "sha256_file",
    "verify_file",
]
