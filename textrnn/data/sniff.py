"""Tell a corpus file's format from its first lines, for files whose name says nothing
(``eng.train``, ``eng.testa``, ``corpus.txt``).

Tried in order, on up to the first 200 non-blank lines:
1. JSON lines: the first line is a JSON object.
2. CoNLL columns: whitespace-separated columns, as many on each line, the tag column holding
   tags (``O``, ``B-PER``...) on nearly every line; ``bmes`` when every token is one character
   and the tags use M- or S-.
3. TSV: a tab on every line, as many tabs on each.
4. CSV: the csv module reads the same number (two or more) of fields on every row.
Anything else is an error that asks for ``format=``.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from typing import List, Union

from ..errors import DataFormatError
from .text import iter_lines

SAMPLE_LINES = 200
_TAG = re.compile(r"^(O|[BIMES]-\S+)$")
_WS = re.compile(r"[ \t\f\v\r]+")


def _sample(path: str) -> List[str]:
    lines = []
    for _, line in iter_lines(path):
        lines.append(line)
        if sum(1 for x in lines if x.strip()) >= SAMPLE_LINES:
            break
    return lines


def _is_conll(lines: List[str], tag_column: int) -> Union[str, None]:
    """Most lines have the same number (two or more) of whitespace columns, and most of them a
    tag in the tag column; a few odd lines are left for the reader to report with their line."""
    rows = [_WS.split(x.strip(" \t\f\v\r")) for x in lines if x.strip()]
    docstart = sum(1 for r in rows if r[0] == "-DOCSTART-")
    rows = [r for r in rows if r[0] != "-DOCSTART-"]
    if not rows:
        return "conll" if docstart else None
    width, count = Counter(len(r) for r in rows).most_common(1)[0]
    if width < 2 or count < 0.75 * len(rows) or not -width <= tag_column < width:
        return None
    tags = [r[tag_column] for r in rows if len(r) == width]
    if sum(1 for t in tags if _TAG.match(t)) < 0.5 * len(tags):
        return None
    prefixes = {t[0] for t in tags if _TAG.match(t) and t != "O"}
    if all(len(r[0]) == 1 for r in rows) and prefixes & {"M", "S"} and "I" not in prefixes:
        return "bmes"
    return "conll"


def _fields(lines: List[str], delimiter: str) -> Union[int, None]:
    text = "\n".join(lines) + "\n"
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r]
    except csv.Error:
        return None
    widths = {len(r) for r in rows}
    return widths.pop() if len(widths) == 1 and rows and len(rows[0]) >= 2 else None


def sniff_format(path: Union[str, os.PathLike], tag_column: int = -1) -> str:
    """``conll``, ``bmes``, ``csv``, ``tsv`` or ``jsonl``, from the content of the file."""
    path = str(path)
    lines = _sample(path)
    content = [x for x in lines if x.strip()]
    if not content:
        raise DataFormatError(path, None, "the file holds only whitespace")
    try:
        if isinstance(json.loads(content[0]), dict):
            return "jsonl"
    except (ValueError, RecursionError):
        pass
    fmt = _is_conll(lines, tag_column)
    if fmt:
        return fmt
    if all("\t" in x for x in content) and len({x.count("\t") for x in content}) == 1:
        return "tsv"
    if _fields(lines, ",") is not None:
        return "csv"
    raise DataFormatError(path, None, "cannot tell the format from the name or the first lines (not JSON objects, "
                          "CoNLL columns ending in tags, tab- or comma-separated fields); pass format= one of "
                          "conll, bmes, csv, tsv, jsonl")
