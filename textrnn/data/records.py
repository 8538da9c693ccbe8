"""What the readers return: a scan of a file (counts, labels, tag scheme) and, for small files
read whole, the rows themselves. Kept apart so readers.py and tables.py need not import each other.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ..errors import ConfigError

logger = logging.getLogger("textrnn.data")
LabelNames = Union[Sequence[str], Mapping[str, str], None]


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


@dataclass
class FileScan:
    """The first, streaming pass over one file: everything but the rows.

    ``options`` are the reader options in force (format sniffed, columns resolved), so a second
    pass reads the file the same way. Tagging files carry ``tag_stats`` until
    :func:`textrnn.data.schemes.resolve_schemes` sets ``scheme`` (the file's) and ``target``
    (the rows', after ``convert_to``); classification files carry ``label_counts``.
    """

    path: str
    format: str
    task: str
    options: Dict[str, Any]
    counts: Dict[str, Any] = field(default_factory=dict)
    label_counts: Counter = field(default_factory=Counter)
    tag_stats: Any = None
    scheme: Optional[str] = None
    target: Optional[str] = None
    size: int = 0
    mtime_ns: int = 0

    def label_names(self) -> List[str]:
        """Labels the rows will carry: names (classification) or tags after repair and conversion."""
        if self.task == "tagging":
            return sorted(self.tag_stats.output_tags(self.scheme, self.target))
        return sorted(self.label_counts)


def log_read(path: str, counts: Mapping[str, object]) -> None:
    shown = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if not isinstance(v, dict))
    logger.info("read %s: %s", path, shown)


def columns_needed(*indices: int) -> int:
    """The fewest columns in which the indices (negative from the end) name different columns."""
    if len(set(indices)) < len(indices):
        raise ConfigError(f"two options name the same column {indices[0]}: give each column its own index")
    n = max(i + 1 if i >= 0 else -i for i in indices)
    while len({i % n for i in indices}) < len(indices):
        n += 1
    return n
