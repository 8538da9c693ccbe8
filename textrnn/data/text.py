"""Lines of a UTF-8 file, read in blocks: constant memory, exact line numbers in every error.

Readers iterate over ``(line_number, line)`` instead of holding a whole file, so a corpus larger
than memory reads in the memory of one block. A byte that is not UTF-8 is reported with its line
and column, never with a buffer offset. A BOM at the start is dropped.
"""
from __future__ import annotations

import os
from typing import BinaryIO, Iterator, List, Optional, Tuple, Union

from ..errors import DataFormatError

BLOCK = 1 << 20  # bytes read at a time; a line longer than this is read whole
_BOM = b"\xef\xbb\xbf"


def not_utf8(path: Optional[str], line: int, raw: bytes, err: UnicodeDecodeError) -> DataFormatError:
    """The error for a line whose bytes ``raw`` failed to decode (``err`` from decoding ``raw``)."""
    column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
    line += raw.count(b"\n", 0, err.start)
    return DataFormatError(path, line, f"byte 0x{raw[err.start]:02x} at column {column} is not UTF-8; "
                           "re-encode the file as UTF-8")


def check_not_blank(path: Union[str, os.PathLike]) -> None:
    """Raise DataFormatError when the file is empty or holds only ASCII whitespace."""
    path = str(path)
    with open(path, "rb") as f:
        block = f.read(BLOCK)
        if not block:
            raise DataFormatError(path, None, "the file is empty")
        while block:
            if block.strip():
                return
            block = f.read(BLOCK)
    raise DataFormatError(path, None, "the file holds only whitespace")


def iter_blocks(path: Union[str, os.PathLike], keepends: bool = False) -> Iterator[Tuple[int, List[str]]]:
    """``(number_of_the_first_line, lines)`` for each block of whole lines (see :func:`iter_lines`)."""
    path = str(path)
    with open(path, "rb") as f:
        lineno = 1
        rest = b""
        first = True
        while True:
            block = f.read(BLOCK)
            data = rest + block
            if first:
                first = False
                if data.startswith(_BOM):
                    data = data[len(_BOM):]
            if not block:
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no newline yet: a very long line, keep reading
                    rest = data
                    continue
            chunk, rest = data[:cut], data[cut:]
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as err:
                raise not_utf8(path, lineno, chunk, err) from None
            lines = text.split("\n")
            if lines[-1] == "":
                lines.pop()
            if keepends:
                lines = [line + "\n" for line in lines]
            if lines:
                yield lineno, lines
            lineno += len(lines)
            if not block:
                return


def iter_lines(path: Union[str, os.PathLike], keepends: bool = False) -> Iterator[Tuple[int, str]]:
    """``(line_number, line)`` for each line of a UTF-8 file, numbered from 1.

    Lines are split at ``\\n`` only (a ``\\r`` before it stays, as in the file); with
    ``keepends`` each line keeps its ``\\n`` (what the csv module needs for quoted newlines).
    The newline that ends the last line does not start another one. The file is read in blocks
    of about ``BLOCK`` bytes, so memory does not grow with it.
    """
    for first, lines in iter_blocks(path, keepends):
        yield from enumerate(lines, first)


def decode_lines(stream: BinaryIO, name: Optional[str]) -> Iterator[str]:
    """Lines (without their newline) of a binary stream such as ``sys.stdin.buffer``, one at a
    time so interactive input is answered at once; a non-UTF-8 line raises with its number."""
    for lineno, raw in enumerate(stream, 1):
        if lineno == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise not_utf8(name, lineno, raw, err) from None
        yield line[:-1] if line.endswith("\n") else line
