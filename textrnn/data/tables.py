"""Readers for classification files (CSV, TSV) and JSON lines (classification or tagging).

CSV is parsed strictly: a closing quote must be followed by the delimiter or the end of the
line, and a quote must close before the file ends, so an unbalanced quote is an error at its
line instead of a row silently swallowed. Quoted fields may span lines (RFC 4180), except when
two or more of the physical lines inside one record each read as a complete record on their own
(the right number of columns and a known label): that is rows merged by a stray quote, refused
unless ``multiline=True`` says fields really span lines like that.
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ..errors import ConfigError, DataFormatError
from .records import FileScan, columns_needed, log_read
from .schemes import TagStats, declared_labels, fix_tags, tagging_scan
from .text import iter_lines

# Longest CSV/TSV field, in characters: far above any real document (the csv module's default,
# 131,072, is not), low enough that a quote left open cannot read a whole corpus into one field.
MAX_FIELD = 1 << 24


def _allow_long_fields() -> None:
    if csv.field_size_limit() < MAX_FIELD:
        csv.field_size_limit(MAX_FIELD)


# --- CSV / TSV ---------------------------------------------------------------------------------


class _Feed:
    """Lines for the csv module, keeping those of the record being parsed (to check merges)."""

    def __init__(self, path: str):
        self.lines = iter_lines(path, keepends=True)
        self.record: List[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.lines)[1]
        self.record.append(line)
        return line


def _dialect(fmt: str, delimiter: Optional[str]) -> Dict[str, Any]:
    delim = delimiter or ("\t" if fmt == "tsv" else ",")
    if len(delim) != 1:
        raise ConfigError(f"delimiter={delimiter!r}: expected one character")
    return {"delimiter": delim, "quoting": csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL, "strict": True}


def table_records(path: str, fmt: str, delimiter: Optional[str]) -> Iterator[Tuple[int, List[str], List[str]]]:
    """``(line, cells, physical_lines)`` per record; csv errors become file:line errors."""
    _allow_long_fields()
    feed = _Feed(path)
    reader = csv.reader(feed, **_dialect(fmt, delimiter))
    start = 1
    while True:
        feed.record = []
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise _csv_error(path, start, reader.line_num, str(err)) from None
        yield start, row, feed.record
        start = reader.line_num + 1


def _csv_error(path: str, start: int, end: int, message: str) -> DataFormatError:
    if "field larger than field limit" in message:
        return DataFormatError(path, start, f"a field longer than {MAX_FIELD:,} characters starts in the record on "
                               "this line (a quote that never closes?)")
    span = f"a quoted field opened on this line and closed on line {end}" if end > start else "a closing quote"
    if "expected after" in message:
        return DataFormatError(path, start, f"{span} is followed by more text instead of the delimiter: an "
                               "unbalanced quote? (a quote inside a quoted field is written twice: \"\")")
    if "unexpected end of data" in message:
        return DataFormatError(path, start, "a quote opened in the record on this line never closes (an unbalanced "
                               "quote? a quote inside a quoted field is written twice: \"\")")
    return DataFormatError(path, start, f"malformed CSV: {message}")


def _column(path: str, spec: Union[str, int], names: Optional[List[str]]) -> int:
    """A 0-based index from an index, a digit string (an index unless the header has that name) or a name."""
    if isinstance(spec, bool):
        raise ConfigError(f"{spec!r} is not a column: expected a name or a 0-based index")
    if isinstance(spec, int):
        return spec
    if names is not None and spec in names:
        return names.index(spec)
    if re.fullmatch(r"-?\d+", spec.strip()):
        return int(spec)
    if names is None:
        raise ConfigError(f"{path}: column {spec!r} is a name, but the file is read without a header; "
                          "pass a 0-based index (text_column=0, label_column=1)")
    raise DataFormatError(path, 1, f"no column named {spec!r} in the header row; columns found: {names}")


def _specs(options: Mapping[str, Any]) -> Tuple[Any, Any]:
    """The text and label columns as given (names or indices), defaults filled in."""
    text, label = options.get("text_column"), options.get("label_column")
    return ("text" if text is None else text, "label" if label is None else label)


def _layout(path: str, options: Mapping[str, Any], first: List[str]) -> Tuple[bool, int, int]:
    """Whether the first row is a header, and the text and label column indices."""
    columns = list(_specs(options))
    header = options.get("header")
    found = [x.strip() for x in first]
    named = [c for c in columns if isinstance(c, str) and not re.fullmatch(r"-?\d+", c.strip())]
    if header is None:
        header = bool(named) and all(c in found for c in named) or \
            (not named and any(isinstance(c, str) and c in found for c in columns))
        if named and not header:
            missing = [c for c in named if c not in found][0]
            raise DataFormatError(path, 1, f"no column named {missing!r} in the header row; columns found: {first}; "
                                  "name the columns with text_column=/label_column= (names, or 0-based indices "
                                  "with header=False)")
    names = found if header else None
    ti, li = (_column(path, c, names) for c in columns)
    if ti == li:
        raise ConfigError(f"text_column={columns[0]!r} and label_column={columns[1]!r} name the same column {ti}; "
                          "give the text and the label their own columns")
    return bool(header), ti, li


def scan_table(path: str, fmt: str, options: Mapping[str, Any]) -> FileScan:
    check = _LabelCheck(path, options)
    header = ti = li = need = None
    expected = 0
    blank = 0
    suspects: List[Tuple[int, int, List[Tuple[int, str]]]] = []  # multi-line records that may be merged rows
    for line, row, physical in table_records(path, fmt, options.get("delimiter")):
        if header is None:
            header, ti, li = _layout(path, options, row)
            need = columns_needed(ti, li)
            check.columns = _specs(options)
            expected = len(row)
            if header:
                continue
        if not row or not any(c.strip() for c in row):
            blank += 1
            continue
        if len(physical) > 1 and not options.get("multiline") and fmt == "csv":
            suspect = _merge_suspect(line, physical, expected, li, options.get("delimiter") or ",")
            if suspect:
                suspects.append(suspect)
        check.record(line, row[ti] if ti < len(row) else None, row[li] if li < len(row) else None, len(row), need)
    _check_merged(path, suspects, check.known)
    if header is None:
        raise DataFormatError(path, None, "no rows found")
    if not check.documents:
        raise DataFormatError(path, None, "no examples found (only a header or blank lines)")
    opts = {"header": header, "text_column": ti, "label_column": li, "delimiter": options.get("delimiter"),
            **check.options(), "columns": check.columns}
    return check.scan(fmt, opts, {"blank_lines": blank})


def _merge_suspect(start: int, physical: List[str], expected: int, li: int, delim: str):
    """The lines of a multi-line record that have the columns of a whole record, with their label
    cell, when there are two or more (else None: one such line is a normal multi-line field)."""
    cands = []
    for k, line in enumerate(physical):
        cells = line.rstrip("\r\n").split(delim)
        if len(cells) == expected and li < len(cells):
            cands.append((start + k, cells[li].strip().strip('"')))
    return (start, start + len(physical) - 1, cands) if len(cands) > 1 else None


def _check_merged(path: str, suspects, known) -> None:
    """Refuse a record in which two or more physical lines each read as a whole record (the
    right columns and a label seen elsewhere): rows merged by a stray quote."""
    for start, end, cands in suspects:
        whole = [line for line, label in cands if label in known]
        if len(whole) > 1:
            raise DataFormatError(path, start, f"lines {start} to {end} were read as one record by a quoted field, "
                                  f"though lines {', '.join(map(str, whole))} each read as a record of their own: "
                                  "an unbalanced quote? (or pass multiline=True if fields really span lines "
                                  "like this)")


def table_rows(scan: FileScan) -> Iterator[Tuple[str, Any]]:
    opts = scan.options
    check = _LabelCheck(scan.path, opts)
    check.columns = opts["columns"]
    ti, li = opts["text_column"], opts["label_column"]
    first = True
    n = 0
    for line, row, _ in table_records(scan.path, scan.format, opts.get("delimiter")):
        if first and opts["header"]:
            first = False
            continue
        first = False
        if not row or not any(c.strip() for c in row):
            continue
        n += 1
        yield check.record(line, row[ti] if ti < len(row) else None, row[li] if li < len(row) else None, len(row), 0)
    _same_count(scan, n)


def _same_count(scan: FileScan, n: int) -> None:
    if n != scan.counts["documents"]:
        raise DataFormatError(scan.path, None, f"read {n} examples, {scan.counts['documents']} before: the file "
                              "changed while it was being read; load it again")


# --- labels ------------------------------------------------------------------------------------


class _LabelCheck:
    """Checks each ``(text, raw label)`` record and maps raw labels to names; counts them."""

    def __init__(self, path: str, options: Mapping[str, Any]):
        self.path = path
        names = options.get("label_names")
        self.mapping = dict(names) if isinstance(names, Mapping) else None
        self.declared = list(self.mapping) if self.mapping is not None else (list(names) if names is not None else None)
        self.multi = bool(options.get("multi_label"))
        self.sep = options.get("label_sep") or ","
        self.counts: Counter = Counter()
        self.known = set(self.declared or ())
        self.columns: Tuple[Any, Any] = ("text", "label")
        self.label_names = names
        self.documents = self.without_labels = self.characters = 0

    def record(self, line: int, text, raw, ncols: int, need: int) -> Tuple[str, Any]:
        if ncols < need:
            raise DataFormatError(self.path, line, f"expected at least {need} columns, found {ncols}")
        if not isinstance(text, str) or not text.strip():
            raise DataFormatError(self.path, line, f"empty text in column {self.columns[0]!r}")
        if self.multi:
            raws = raw if isinstance(raw, list) else [r.strip() for r in (raw or "").split(self.sep)]
            raws = [str(r) for r in raws if str(r).strip()]
        else:
            raws = [(raw or "").strip()]
            if not raws[0]:
                raise DataFormatError(self.path, line, f"missing label: column {self.columns[1]!r} is empty")
        for r in raws:
            if r not in self.known:
                if self.declared is not None:
                    raise DataFormatError(self.path, line, f"label {r!r} is not in the declared label set "
                                          f"{self.declared}")
                self.known.add(r)
        names = [self.mapping[r] for r in raws] if self.mapping is not None else raws
        self.documents += 1
        self.characters += len(text)
        self.counts.update(names)
        if self.multi:
            self.without_labels += not names
        return text, (names if self.multi else names[0])

    def options(self) -> Dict[str, Any]:
        return {"multi_label": self.multi, "label_sep": self.sep, "label_names": self.label_names}

    def scan(self, fmt: str, opts: Dict[str, Any], extra: Dict[str, int]) -> FileScan:
        counts: Dict[str, Any] = {"documents": self.documents, "labels": dict(sorted(self.counts.items())), **extra,
                                  "characters": self.characters}
        if self.multi:
            counts["documents_without_labels"] = self.without_labels
        log_read(self.path, counts)
        return FileScan(self.path, fmt, "classification", opts, counts, label_counts=Counter(self.counts))


# --- JSON lines --------------------------------------------------------------------------------


def json_objects(path: str, counts: Dict[str, int]) -> Iterator[Tuple[int, dict]]:
    blank = 0
    for lineno, line in iter_lines(path):
        if not line.strip():
            blank += 1
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, lineno, f"invalid JSON: {err.msg} at column {err.colno}") from None
        except RecursionError:
            raise DataFormatError(path, lineno, "invalid JSON: nested too deeply") from None
        if not isinstance(obj, dict):
            raise DataFormatError(path, lineno, f"expected a JSON object, found {_json_type(obj)}")
        yield lineno, obj
    counts["blank_lines"] = blank


def _json_type(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true or false", type(None): "null"}.get(
        type(value), "a number")


def _jsonl_task(path: str, options: Mapping[str, Any]) -> str:
    for _, obj in json_objects(path, {}):
        text, tokens = options.get("text_column") or "text", options.get("token_column") or "tokens"
        return "tagging" if text not in obj and tokens in obj else "classification"
    raise DataFormatError(path, None, "no JSON objects found")


def _jsonl_keys(options: Mapping[str, Any]) -> Dict[str, str]:
    keys = {"text_column": "text", "label_column": "label", "token_column": "tokens", "tag_column": "tags"}
    out = {}
    for key, default in keys.items():
        value = options.get(key)
        out[key] = default if value is None else str(value)
    return out


def _jsonl_sentences(path: str, keys: Mapping[str, str], counts) -> Iterator[Tuple[int, List[str], List[str]]]:
    tk, gk = keys["token_column"], keys["tag_column"]
    for lineno, obj in json_objects(path, counts):
        toks, tgs = obj.get(tk), obj.get(gk)
        if not isinstance(toks, list) or not isinstance(tgs, list):
            raise DataFormatError(path, lineno, f"expected lists under {tk!r} and {gk!r}; keys found: {sorted(obj)}")
        if len(toks) != len(tgs) or not toks:
            raise DataFormatError(path, lineno, f"expected as many tags as tokens (at least one), "
                                  f"found {len(toks)} tokens and {len(tgs)} tags")
        for value in toks + tgs:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise DataFormatError(path, lineno, f"expected strings in {tk!r} and {gk!r}, found "
                                      f"{_json_type(value)}")
        yield lineno, [str(t) for t in toks], [str(t) for t in tgs]


def _jsonl_labelled(path: str, keys: Mapping[str, str], check: "_LabelCheck", counts) -> Iterator[Tuple[str, Any]]:
    tk, lk = keys["text_column"], keys["label_column"]
    for lineno, obj in json_objects(path, counts):
        for key in (tk, lk):
            if key not in obj:
                raise DataFormatError(path, lineno, f"no key {key!r} in this object; keys found: {sorted(obj)}")
        text, label = obj[tk], obj[lk]
        if isinstance(label, list) and check.multi:
            if not all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in label):
                raise DataFormatError(path, lineno, f"expected a list of label strings under {lk!r}")
        elif isinstance(label, (dict, list)):
            raise DataFormatError(path, lineno, f"expected a label string or number under {lk!r}, found "
                                  f"{_json_type(label)}" + (" (pass multi_label=True for lists)" if isinstance(
                                      label, list) else ""))
        else:
            label = "" if label is None else str(label)
        if not isinstance(text, str):
            raise DataFormatError(path, lineno, f"expected a string under {tk!r}, found {_json_type(text)}")
        yield check.record(lineno, text, label, 2, 2)


def scan_jsonl(path: str, options: Mapping[str, Any]) -> FileScan:
    keys = _jsonl_keys(options)
    task = _jsonl_task(path, options)
    counts: Dict[str, int] = {}
    if task == "tagging":
        stats = TagStats(path, options.get("scheme"), declared_labels(options.get("label_names")))
        for line, _, tags in _jsonl_sentences(path, keys, counts):
            stats.add(tags, line, False)
        return tagging_scan(path, "jsonl", {"keys": keys, "task": task},
                             stats, {"extra_blank_lines": counts.get("blank_lines", 0)})
    check = _LabelCheck(path, options)
    check.columns = (keys["text_column"], keys["label_column"])
    for _ in _jsonl_labelled(path, keys, check, counts):
        pass
    return check.scan("jsonl", {"keys": keys, "task": task, **check.options()}, {"blank_lines": counts["blank_lines"]})


def jsonl_rows(scan: FileScan) -> Iterator[Tuple[Any, Any]]:
    keys = scan.options["keys"]
    if scan.options["task"] == "tagging":
        yield from fix_tags(scan, ((toks, tags) for _, toks, tags in _jsonl_sentences(scan.path, keys, {})))
        return
    check = _LabelCheck(scan.path, scan.options)
    check.columns = (keys["text_column"], keys["label_column"])
    n = 0
    for row in _jsonl_labelled(scan.path, keys, check, {}):
        n += 1
        yield row
    _same_count(scan, n)
