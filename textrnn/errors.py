"""Errors that textrnn raises at its public boundaries.

Every error says what was expected and where, so that a user can fix their file without reading
a traceback from deep inside torch, numpy or Arrow.
"""
from __future__ import annotations

from typing import Optional, Union
import os


class TextrnnError(Exception):
    """Base class of every error textrnn raises on purpose."""


class DataFormatError(TextrnnError, ValueError):
    """A corpus, embeddings or model file does not have the expected form.

    ``str(err)`` reads ``path:line: message`` (or ``path: message`` when no line applies), the
    convention of compilers and linters, so editors can jump to the place.
    """

    def __init__(self, path: Union[str, os.PathLike, None], line: Optional[int], message: str):
        self.path = None if path is None else str(path)
        self.line = line
        self.message = message
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class DataCardMismatch(DataFormatError):
    """A named corpus does not match its data card (count or SHA-256): truncated or altered data."""


class ConfigError(TextrnnError, ValueError):
    """A configuration value is out of range or inconsistent with another one."""
