"""Readers for classification files (CSV, TSV) and JSON lines (classification or tagging)."""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Dict, List, Mapping, Optional, Union

from ..errors import ConfigError, DataFormatError
from .readers import (LabelNames, LabelledFile, TaggedFile, _columns_needed, _lines, _log_read, finish_tagging,
                      read_text)


# --- classification --------------------------------------------------------------------------


def read_table(
    path: Union[str, os.PathLike],
    *,
    format: str = "csv",
    text_column: Union[str, int] = "text",
    label_column: Union[str, int] = "label",
    header: Optional[bool] = None,
    delimiter: Optional[str] = None,
    multi_label: bool = False,
    label_sep: Optional[str] = None,
    label_names: LabelNames = None,
) -> LabelledFile:
    """Read a CSV or TSV file of texts and labels.

    ``header=None`` takes the first row as a header when the columns are named and the row
    holds those names. Without a header, columns are 0-based indices. TSV fields are not quoted.
    """
    path = str(path)
    text = read_text(path)
    delim = delimiter or ("\t" if format == "tsv" else ",")
    quoting = csv.QUOTE_NONE if format == "tsv" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, quoting=quoting)
    rows = []
    start = 1
    for row in reader:
        rows.append((start, row))
        start = reader.line_num + 1
    if header is None:
        named = [c for c in (text_column, label_column) if isinstance(c, str)]
        header = bool(named) and bool(rows) and all(c in [x.strip() for x in rows[0][1]] for c in named)
        if named and not header:
            found = rows[0][1] if rows else []
            missing = [c for c in named if c not in found][0]
            raise DataFormatError(path, 1, f"no column named {missing!r} in the header row; columns found: {found}; "
                                  "name the columns with text_column=/label_column= (names, or 0-based indices "
                                  "with header=False)")
    names = [x.strip() for x in rows[0][1]] if header else None
    ti = _column_index(path, text_column, names)
    li = _column_index(path, label_column, names)
    records = [(line, [row[ti] if ti < len(row) else None, row[li] if li < len(row) else None], len(row))
               for line, row in (rows[1:] if header else rows) if row and any(c.strip() for c in row)]
    blank = len(rows) - bool(header) - len(records)
    return _finish_labelled(path, records, _columns_needed(ti, li), (text_column, label_column), blank,
                            multi_label=multi_label, label_sep=label_sep, label_names=label_names)


def _column_index(path: str, column: Union[str, int], names: Optional[List[str]]) -> int:
    if isinstance(column, int):
        return column
    if names is None:
        raise ConfigError(f"{path}: column {column!r} is a name, but the file is read without a header; "
                          "pass a 0-based index")
    if column not in names:
        raise DataFormatError(path, 1, f"no column named {column!r} in the header row; columns found: {names}")
    return names.index(column)


def read_jsonl(
    path: Union[str, os.PathLike],
    *,
    text_column: str = "text",
    label_column: str = "label",
    token_column: str = "tokens",
    tag_column: str = "tags",
    multi_label: bool = False,
    label_sep: Optional[str] = None,
    label_names: LabelNames = None,
    **tagging,
) -> Union[LabelledFile, TaggedFile]:
    """Read one JSON object per line: ``{"text": ..., "label": ...}``, or ``{"tokens": [...],
    "tags": [...]}`` for tagging (chosen by the keys of the first object)."""
    path = str(path)
    objects = []
    lines = _lines(read_text(path))
    blank = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            blank += 1
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, lineno, f"invalid JSON: {err.msg} at column {err.colno}") from None
        if not isinstance(obj, dict):
            raise DataFormatError(path, lineno, f"expected a JSON object, found {type(obj).__name__}")
        objects.append((lineno, obj))
    if not objects:
        raise DataFormatError(path, None, "no JSON objects found")
    first = objects[0][1]
    if text_column not in first and token_column in first:
        return _jsonl_tagging(path, objects, token_column, tag_column, blank, label_names, tagging)
    records = []
    for lineno, obj in objects:
        for key in (text_column, label_column):
            if key not in obj:
                raise DataFormatError(path, lineno, f"no key {key!r} in this object; keys found: {sorted(obj)}")
        label = obj[label_column]
        label = label if isinstance(label, list) else ("" if label is None else str(label))
        records.append((lineno, [obj[text_column], label], 2))
    return _finish_labelled(path, records, 2, (text_column, label_column), blank,
                            multi_label=multi_label, label_sep=label_sep, label_names=label_names)


def _jsonl_tagging(path, objects, token_column, tag_column, blank, label_names, options) -> TaggedFile:
    tokens, tags, lines, first_seen = [], [], [], {}
    for lineno, obj in objects:
        toks, tgs = obj.get(token_column), obj.get(tag_column)
        if not isinstance(toks, list) or not isinstance(tgs, list):
            raise DataFormatError(path, lineno, f"expected lists under {token_column!r} and {tag_column!r}; "
                                  f"keys found: {sorted(obj)}")
        if len(toks) != len(tgs) or not toks:
            raise DataFormatError(path, lineno, f"expected as many tags as tokens (at least one), "
                                  f"found {len(toks)} tokens and {len(tgs)} tags")
        for tag in tgs:
            first_seen.setdefault(str(tag), lineno)
        tokens.append([str(t) for t in toks]), tags.append([str(t) for t in tgs]), lines.append(lineno)
    counts = {"docstart_lines": 0, "extra_blank_lines": blank}
    return finish_tagging(path, tokens, tags, lines, first_seen, counts, label_names=label_names,
                          token_lines=False, scheme=options.get("scheme"), convert_to=options.get("convert_to"),
                          on_invalid=options.get("on_invalid", "error"))


def _finish_labelled(path, records, need, columns, blank, *, multi_label, label_sep, label_names) -> LabelledFile:
    """Check each ``(line, [text, label], n_columns)`` record; map raw labels to names."""
    mapping = dict(label_names) if isinstance(label_names, Mapping) else None
    declared = list(mapping) if mapping is not None else (list(label_names) if label_names is not None else None)
    texts, labels = [], []
    counts: Dict[str, int] = {}
    sep = label_sep or ","
    for line, (text, raw), ncols in records:
        if ncols < need:
            raise DataFormatError(path, line, f"expected at least {need} columns, found {ncols}")
        if not isinstance(text, str) or not text.strip():
            raise DataFormatError(path, line, f"empty text in column {columns[0]!r}")
        if multi_label:
            raws = raw if isinstance(raw, list) else [r.strip() for r in raw.split(sep)]
            raws = [str(r) for r in raws if str(r).strip()]
        else:
            raws = [raw.strip()]
            if not raws[0]:
                raise DataFormatError(path, line, f"missing label: column {columns[1]!r} is empty")
        for r in raws:
            if declared is not None and r not in declared:
                raise DataFormatError(path, line, f"label {r!r} is not in the declared label set {declared}")
        names = [mapping[r] if mapping is not None else r for r in raws]
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        texts.append(text)
        labels.append(names if multi_label else names[0])
    if not texts:
        raise DataFormatError(path, None, "no examples found (only a header or blank lines)")
    stats = {"documents": len(texts), "labels": dict(sorted(counts.items())), "blank_lines": blank}
    if multi_label:
        stats["documents_without_labels"] = sum(1 for names in labels if not names)
    _log_read(path, stats)
    return LabelledFile(path, texts, labels, multi_label, stats)


