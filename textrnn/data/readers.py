"""Parsers for corpus files: CoNLL columns and BMES characters (CSV/TSV/JSONL: tables.py).

Each parser reads one file into plain Python lists (fast: CoNLL-2003 train in well under a second)
and counts what it read and what it skipped. Problems raise :class:`DataFormatError` with the
file and the line, so an editor can jump there. Nothing is dropped silently.
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Union

from .. import tags as T
from ..errors import ConfigError, DataFormatError

logger = logging.getLogger("textrnn.data")

FORMATS = ("conll", "bmes", "csv", "tsv", "jsonl")
EXTENSIONS = {".conll": "conll", ".txt": "conll", ".iob": "conll", ".bio": "conll", ".bmes": "bmes",
              ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
LabelNames = Union[Sequence[str], Mapping[str, str], None]
_ASCII_WS = re.compile(r"[ \t\f\v\r]+")


@dataclass
class TaggedFile:
    """Sentences of one tagging file; ``tags`` are in ``scheme`` (after any conversion)."""

    path: str
    scheme: str
    source_scheme: str
    tokens: List[List[str]]
    tags: List[List[str]]
    counts: Dict[str, int] = field(default_factory=dict)

    task = "tagging"

    def labels(self) -> set:
        return {t for sent in self.tags for t in sent}


@dataclass
class LabelledFile:
    """Texts of one classification file; ``labels`` are label names (lists when multi-label)."""

    path: str
    texts: List[str]
    labels: List[Union[str, List[str]]]
    multi_label: bool
    counts: Dict[str, object] = field(default_factory=dict)

    task = "classification"

    def label_set(self) -> set:
        if self.multi_label:
            return {name for names in self.labels for name in names}
        return set(self.labels)


def infer_format(path: Union[str, os.PathLike]) -> str:
    """The format named by a file's extension (``.char.bmes`` -> bmes, ``.txt`` -> conll)."""
    name = os.path.basename(str(path)).lower()
    for ext, fmt in EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    raise ConfigError(f"{path}: cannot tell the format from the extension; pass format= one of {', '.join(FORMATS)}")


def read_text(path: Union[str, os.PathLike]) -> str:
    """A file's text; a non-UTF-8 byte or an empty file raises DataFormatError with the line."""
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    if not data.strip():
        raise DataFormatError(path, None, "the file is empty" if not data else "the file holds only whitespace")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataFormatError(
            path, line, f"byte 0x{data[err.start]:02x} at column {column} is not UTF-8; re-encode the file as UTF-8"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _lines(text: str) -> List[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another one
    return lines


def _columns_needed(*indices: int) -> int:
    """The fewest columns in which the indices (negative from the end) name different columns."""
    n = max(i + 1 if i >= 0 else -i for i in indices)
    while len({i % n for i in indices}) < len(indices):
        n += 1
    return n


# --- tagging ---------------------------------------------------------------------------------


def read_conll(
    path: Union[str, os.PathLike],
    *,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: Optional[str] = None,
    convert_to: Optional[str] = None,
    on_invalid: str = "error",
    label_names: LabelNames = None,
) -> TaggedFile:
    """Read whitespace-separated columns, one token per line, a blank line between sentences.

    ``-DOCSTART-`` lines end a sentence and are counted (``docstart_lines``), as are blank lines
    that end no sentence (``extra_blank_lines``). Every line must have as many columns as the
    first one. BMES files (a character and its tag) are the two-column case.
    """
    path = str(path)
    lines = _lines(read_text(path))
    need = _columns_needed(token_column, tag_column)
    sentences_tokens: List[List[str]] = []
    sentences_tags: List[List[str]] = []
    first_lines: List[int] = []
    first_seen: Dict[str, int] = {}
    tokens: List[str] = []
    tags: List[str] = []
    ncols = ncols_line = 0
    docstart = extra_blank = 0
    after_docstart = False
    for lineno, line in enumerate(lines, 1):
        cols = line.split() if line.isascii() else _ASCII_WS.split(line.strip(" \t\f\v\r"))
        if not cols or cols == [""]:
            if tokens:
                sentences_tokens.append(tokens), sentences_tags.append(tags), first_lines.append(lineno - len(tokens))
                tokens, tags = [], []
            elif not after_docstart:
                extra_blank += 1
            after_docstart = False
            continue
        if cols[0] == "-DOCSTART-":
            if tokens:
                sentences_tokens.append(tokens), sentences_tags.append(tags), first_lines.append(lineno - len(tokens))
                tokens, tags = [], []
            docstart += 1
            after_docstart = True
            continue
        after_docstart = False
        if len(cols) != ncols:
            if len(cols) < need:
                raise DataFormatError(path, lineno, f"expected at least {need} columns, found {len(cols)}")
            if ncols:
                raise DataFormatError(path, lineno, f"expected {ncols} columns (as on line {ncols_line}), found {len(cols)}")
            ncols, ncols_line = len(cols), lineno
        tag = cols[tag_column]
        if tag not in first_seen:
            first_seen[tag] = lineno
        tokens.append(cols[token_column])
        tags.append(tag)
    if tokens:
        sentences_tokens.append(tokens), sentences_tags.append(tags), first_lines.append(len(lines) + 1 - len(tokens))
    if not sentences_tokens:
        raise DataFormatError(path, None, f"no sentences found in {len(lines)} lines ({docstart} -DOCSTART- lines)")
    counts = {"docstart_lines": docstart, "extra_blank_lines": extra_blank}
    return finish_tagging(path, sentences_tokens, sentences_tags, first_lines, first_seen, counts,
                          scheme=scheme, convert_to=convert_to, on_invalid=on_invalid, label_names=label_names)


def finish_tagging(path, tokens, tags, first_lines, first_seen, counts, *, scheme, convert_to, on_invalid,
                   label_names, token_lines: bool = True) -> TaggedFile:
    """Check tags (form, declared set, scheme), repair or convert, and count.

    ``first_lines[i]`` is the line of sentence i; with ``token_lines`` token k sits on line
    ``first_lines[i] + k`` (CoNLL), otherwise the whole sentence is on that line (JSON lines).
    """
    if on_invalid not in ("error", "repair"):
        raise ConfigError(f"on_invalid must be 'error' or 'repair', got {on_invalid!r}")
    declared = set(label_names) if label_names is not None else None
    if scheme is None:
        _check_tags(path, first_seen, None, None)
        scheme = _infer_scheme(tags, set(first_seen))
        logger.info("%s: no tag scheme given; read the tags as %s", path, scheme)
    scheme = T.normalize_scheme(scheme)
    _check_tags(path, first_seen, scheme, declared)
    repaired, first_repaired = 0, None
    for i, sent in enumerate(tags):
        bad = T.find_invalid(sent, scheme)
        if bad is None:
            continue
        line = first_lines[i] + (bad if token_lines else 0)
        if on_invalid == "error":
            prev = sent[bad - 1] if bad > 0 else None
            if T.can_follow(prev, sent[bad], scheme):
                what = f"tag {sent[bad]!r} may not end a sentence in {scheme}"
            else:
                where = f"after {prev!r}" if prev else "at the start of a sentence"
                what = f"tag {sent[bad]!r} {where} is invalid in {scheme}"
            raise DataFormatError(path, line, f"{what}; fix the file, or pass on_invalid='repair' to read it "
                                  "as conlleval does")
        tags[i] = T.repair(sent, scheme)
        repaired += 1
        first_repaired = first_repaired or line
    if repaired:
        msg = f"{path}: repaired {repaired} sentences whose tags were invalid {scheme} (first on line {first_repaired})"
        logger.warning(msg)
        warnings.warn(msg, stacklevel=3)
    types: Dict[str, int] = {}
    for sent in tags:
        for typ, _, _ in T.get_spans(sent, scheme):
            types[typ] = types.get(typ, 0) + 1
    source_scheme = scheme
    if convert_to is not None:
        target = T.normalize_scheme(convert_to)
        if target != scheme:
            tags = [T.convert(sent, scheme, target) for sent in tags]
        scheme = target
    counts = {"sentences": len(tokens), "tokens": sum(map(len, tokens)), "entities": sum(types.values()),
              "entity_types": dict(sorted(types.items())), **counts, "repaired_sentences": repaired}
    _log_read(path, counts)
    return TaggedFile(path, scheme, source_scheme, tokens, tags, counts)


def _check_tags(path: str, first_seen: Mapping[str, int], scheme: Optional[str], declared: Optional[set]) -> None:
    for tag, line in first_seen.items():
        try:
            T.parse_tag(tag, scheme)
        except ValueError as err:
            raise DataFormatError(path, line, str(err)) from None
        if declared is not None and tag not in declared:
            raise DataFormatError(path, line, f"tag {tag!r} is not in the declared label set {sorted(declared)}")


def _infer_scheme(sentences: List[List[str]], labels: set) -> str:
    scheme = T.infer_scheme(labels)
    if scheme == "IOB2" and not all(T.is_valid(s, "IOB2") for s in sentences) \
            and all(T.is_valid(s, "IOB1") for s in sentences):
        return "IOB1"
    return scheme


def _log_read(path: str, counts: Mapping[str, object]) -> None:
    shown = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if not isinstance(v, dict))
    logger.info("read %s: %s", path, shown)


def read_file(path, format: Optional[str] = None, **options) -> Union[TaggedFile, LabelledFile]:
    """Parse one file with the reader its format names (inferred from the extension when None)."""
    from .tables import read_jsonl, read_table

    fmt = (format or infer_format(path)).lower()
    if fmt in ("conll", "bmes"):
        keys = ("token_column", "tag_column", "scheme", "convert_to", "on_invalid", "label_names")
        opts = {k: options[k] for k in keys if options.get(k) is not None}
        if fmt == "bmes":
            opts.setdefault("scheme", "BMES")
        return read_conll(path, **opts)
    if fmt in ("csv", "tsv"):
        keys = ("text_column", "label_column", "header", "delimiter", "multi_label", "label_sep", "label_names")
        return read_table(path, format=fmt, **{k: options[k] for k in keys if options.get(k) is not None})
    if fmt == "jsonl":
        keys = ("text_column", "label_column", "multi_label", "label_sep", "label_names", "scheme", "convert_to",
                "on_invalid")
        opts = {k: options[k] for k in keys if options.get(k) is not None}
        for key in ("token_column", "tag_column"):
            if isinstance(options.get(key), str):
                opts[key] = options[key]
        return read_jsonl(path, **opts)
    raise ConfigError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
