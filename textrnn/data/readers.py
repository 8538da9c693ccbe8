"""Parsers for corpus files: CoNLL columns and BMES characters (CSV/TSV/JSONL: tables.py).

Every reader streams: :func:`scan_file` reads a file once to check it, count it and collect its
labels (constant memory in its size), and :func:`iter_rows` reads it again to yield the rows,
so a corpus larger than memory loads into Arrow without ever being held in Python lists.
Problems raise :class:`DataFormatError` with the file and the line, so an editor can jump there.
Nothing is dropped silently.
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ..errors import ConfigError, DataFormatError
from .records import FileScan, LabelledFile, TaggedFile, columns_needed, log_read
from .schemes import TagStats, declared_labels, fix_tags, resolve_schemes, tagging_scan
from .tables import jsonl_rows, scan_jsonl, scan_table, table_rows
from .text import check_not_blank, iter_blocks

logger = logging.getLogger("textrnn.data")

FORMATS = ("conll", "bmes", "csv", "tsv", "jsonl")
# Extensions that name a format; any other file (.txt, eng.train, eng.testa...) is recognised by its content.
EXTENSIONS = {".conll": "conll", ".conllu": "conll", ".iob": "conll", ".bio": "conll", ".bmes": "bmes",
              ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
_ASCII_WS = re.compile(r"[ \t\f\v\r]+")
TAGGING_OPTIONS = ("token_column", "tag_column", "scheme", "convert_to", "on_invalid", "label_names")
TABLE_OPTIONS = ("text_column", "label_column", "header", "delimiter", "multi_label", "label_sep", "label_names",
                 "multiline")
JSONL_OPTIONS = ("text_column", "label_column", "token_column", "tag_column", "multi_label", "label_sep",
                 "label_names", "scheme", "convert_to", "on_invalid")


def infer_format(path: Union[str, os.PathLike], tag_column: Union[int, str, None] = None) -> str:
    """The format a file's extension names (``.char.bmes`` -> bmes), else the one its content
    shows (CoNLL columns, BMES characters, CSV, TSV or JSON lines): see :mod:`.sniff`."""
    name = os.path.basename(str(path)).lower()
    for ext, fmt in EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    from .sniff import sniff_format

    return sniff_format(path, tag_column if isinstance(tag_column, int) else -1)


def _check_on_invalid(on_invalid: Optional[str]) -> str:
    on_invalid = on_invalid or "error"
    if on_invalid not in ("error", "repair"):
        raise ConfigError(f"on_invalid must be 'error' or 'repair', got {on_invalid!r}")
    return on_invalid


# --- CoNLL / BMES ------------------------------------------------------------------------------


def _int_column(name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r}: a CoNLL column is a 0-based index (negative from the end)")
    return value


def conll_sentences(path: str, token_column: int, tag_column: int,
                    counts: Dict[str, int]) -> Iterator[Tuple[int, List[str], List[str]]]:
    """``(first_line, tokens, tags)`` per sentence of a whitespace-column file.

    A blank line or a ``-DOCSTART-`` line ends a sentence; both are counted in ``counts``
    (``docstart_lines``, ``extra_blank_lines`` for blank lines that end no sentence). Every line
    must have as many columns as the first one.
    """
    need = columns_needed(token_column, tag_column)
    tokens: List[str] = []
    tags: List[str] = []
    ncols = ncols_line = 0
    docstart = extra_blank = 0
    after_docstart = False
    lineno = 0
    for first, lines in iter_blocks(path):
        for lineno, line in enumerate(lines, first):
            cols = line.split() if line.isascii() else _ASCII_WS.split(line.strip(" \t\f\v\r"))
            if not cols or cols == [""]:
                if tokens:
                    yield lineno - len(tokens), tokens, tags
                    tokens, tags = [], []
                elif not after_docstart:
                    extra_blank += 1
                after_docstart = False
                continue
            if cols[0] == "-DOCSTART-":
                if tokens:
                    yield lineno - len(tokens), tokens, tags
                    tokens, tags = [], []
                docstart += 1
                after_docstart = True
                continue
            after_docstart = False
            if len(cols) != ncols:
                if len(cols) < need:
                    raise DataFormatError(path, lineno, f"expected at least {need} columns, found {len(cols)}")
                if ncols:
                    raise DataFormatError(path, lineno, f"expected {ncols} columns (as on line {ncols_line}), "
                                          f"found {len(cols)}")
                ncols, ncols_line = len(cols), lineno
            tokens.append(cols[token_column])
            tags.append(cols[tag_column])
    if tokens:
        yield lineno + 1 - len(tokens), tokens, tags
    counts.update(docstart_lines=docstart, extra_blank_lines=extra_blank, lines=lineno)


def _scan_conll(path: str, fmt: str, options: Mapping[str, Any]) -> FileScan:
    token_column = _int_column("token_column", options.get("token_column"), 0)
    tag_column = _int_column("tag_column", options.get("tag_column"), -1)
    if token_column == tag_column:
        raise ConfigError(f"token_column={token_column} and tag_column={tag_column} name the same column; "
                          "give the token and the tag columns their own 0-based indices")
    scheme = options.get("scheme") or ("BMES" if fmt == "bmes" else None)
    stats = TagStats(path, scheme, declared_labels(options.get("label_names")))
    counts: Dict[str, int] = {}
    for line, _, tags in conll_sentences(path, token_column, tag_column, counts):
        stats.add(tags, line, True)
    if not stats.sentences:
        raise DataFormatError(path, None, f"no sentences found in {counts['lines']} lines "
                              f"({counts['docstart_lines']} -DOCSTART- lines)")
    opts = {"token_column": token_column, "tag_column": tag_column}
    return tagging_scan(path, fmt, opts, stats, counts)


def finish_tagging_scan(scan: FileScan, scheme: str, target: str) -> None:
    """Record the scheme chosen for a tagging file; count and report repaired sentences."""
    scan.scheme, scan.target = scheme, target
    repaired = scan.tag_stats.repaired(scheme)
    scan.counts["repaired_sentences"] = repaired
    if repaired:
        msg = (f"{scan.path}: repaired {repaired} sentences whose tags were invalid {scheme} "
               f"(first on line {scan.tag_stats.invalid[scheme].line})")
        logger.warning(msg)
        warnings.warn(msg, stacklevel=4)
    log_read(scan.path, scan.counts)


# --- one file, both passes -------------------------------------------------------------------


def scan_file(path: Union[str, os.PathLike], format: Optional[str] = None, **options) -> FileScan:
    """The first pass over one file: check every line, count, collect the labels.

    Tagging files still need :func:`resolve_schemes` (several files agree on one scheme) and
    :func:`finish_tagging_scan` before their rows can be read; :func:`read_file` does both.
    """
    path = str(path)
    check_not_blank(path)
    fmt = (format or infer_format(path, options.get("tag_column"))).lower()
    st = os.stat(path)
    if fmt in ("conll", "bmes"):
        scan = _scan_conll(path, fmt, {k: options.get(k) for k in TAGGING_OPTIONS})
    elif fmt in ("csv", "tsv"):
        scan = scan_table(path, fmt, {k: options.get(k) for k in TABLE_OPTIONS})
    elif fmt == "jsonl":
        scan = scan_jsonl(path, {k: options.get(k) for k in JSONL_OPTIONS})
    else:
        raise ConfigError(f"unknown format {format!r}; expected format= one of {', '.join(FORMATS)}")
    scan.size, scan.mtime_ns = st.st_size, st.st_mtime_ns
    return scan


def iter_rows(scan: FileScan) -> Iterator[Tuple[Any, Any]]:
    """The second pass: ``(tokens, tags)`` in the target scheme, or ``(text, label_or_labels)``."""
    st = os.stat(scan.path)
    if (st.st_size, st.st_mtime_ns) != (scan.size, scan.mtime_ns):
        raise DataFormatError(scan.path, None, "the file changed while it was being read; load it again")
    if scan.format in ("csv", "tsv"):
        yield from table_rows(scan)
    elif scan.format == "jsonl":
        yield from jsonl_rows(scan)
    else:
        counts: Dict[str, int] = {}
        sentences = conll_sentences(scan.path, scan.options["token_column"], scan.options["tag_column"], counts)
        yield from fix_tags(scan, ((tokens, tags) for _, tokens, tags in sentences))


def read_file(path, format: Optional[str] = None, **options) -> Union[TaggedFile, LabelledFile]:
    """Parse one file whole (the format from the extension or the content when None).

    Convenient for small files; ``load_corpus`` streams instead.
    """
    scan = scan_file(path, format, **options)
    if scan.task == "tagging":
        on_invalid = _check_on_invalid(options.get("on_invalid"))
        (scheme, target), = resolve_schemes({"file": scan.tag_stats}, options.get("convert_to"), on_invalid).values()
        finish_tagging_scan(scan, scheme, target)
        rows = list(iter_rows(scan))
        return TaggedFile(scan.path, target, scheme, [r[0] for r in rows], [r[1] for r in rows], scan.counts)
    rows = list(iter_rows(scan))
    return LabelledFile(scan.path, [r[0] for r in rows], [r[1] for r in rows],
                        bool(scan.options.get("multi_label")), scan.counts)
