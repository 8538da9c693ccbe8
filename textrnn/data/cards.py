"""Data cards: what each named corpus (and word-vector file) should look like, and the checks.

A card is ``data_cards/<name>.md``: YAML front matter that ``huggingface_hub.DatasetCard`` reads
(pretty_name, license, language, task_categories...) plus a ``textrnn:`` block with the folder,
format, reader options, label names and, per split, the file, its SHA-256 and expected counts.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..errors import ConfigError, DataCardMismatch, DataFormatError

REPO_ROOT = Path(__file__).resolve().parents[2]
_HASHES: Dict[Tuple[str, int, int], str] = {}
_CARDS: Dict[Tuple[str, int], "Card"] = {}


def cards_dir() -> Path:
    """``$TEXTRNN_DATA_CARDS``, else ``<repo root>/data_cards``."""
    return Path(os.environ.get("TEXTRNN_DATA_CARDS") or REPO_ROOT / "data_cards")


def default_data_dir(data_dir: Union[str, os.PathLike, None] = None) -> Path:
    """``data_dir``, else ``$TEXTRNN_DATA_DIR``, else ``<repo root>/../shared/data``."""
    return Path(data_dir or os.environ.get("TEXTRNN_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")


@dataclass(frozen=True)
class FileSpec:
    """One file a card lists: its name in the card's folder, SHA-256 and expected counts."""

    file: str
    sha256: Optional[str] = None
    counts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Card:
    """A parsed data card. ``data`` is the whole YAML front matter as a dict."""

    name: str
    path: Path
    data: Mapping[str, Any]

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.data.get("textrnn") or {}

    @property
    def folder(self) -> str:
        return self.spec.get("folder", self.name)

    @property
    def format(self) -> str:
        return self.spec["format"]

    @property
    def task(self) -> str:
        return self.spec.get("task", "tagging")

    @property
    def options(self) -> Dict[str, Any]:
        """Reader options (columns, header, scheme, on_invalid...) for :func:`load_corpus`."""
        return dict(self.spec.get("options") or {})

    @property
    def label_names(self):
        """A list of label names, or a mapping raw label -> name (``{"0": "negative"}``)."""
        return self.spec.get("label_names")

    @property
    def splits(self) -> Dict[str, FileSpec]:
        return {k: _file_spec(v) for k, v in (self.spec.get("splits") or {}).items()}

    @property
    def files(self) -> Dict[str, FileSpec]:
        """Every file the card lists: the splits and any other ``files:`` (e.g. vectors)."""
        other = {k: _file_spec(v) for k, v in (self.spec.get("files") or {}).items()}
        return {**self.splits, **other}

    def file_path(self, key: str, data_dir: Union[str, os.PathLike, None] = None) -> Path:
        return default_data_dir(data_dir) / self.folder / self.files[key].file


def _file_spec(entry: Mapping[str, Any]) -> FileSpec:
    return FileSpec(file=entry["file"], sha256=entry.get("sha256"), counts=dict(entry.get("counts") or {}))


def available_cards() -> List[str]:
    """Names of the cards in :func:`cards_dir`."""
    folder = cards_dir()
    return sorted(p.stem for p in folder.glob("*.md") if p.stem.lower() != "readme") if folder.is_dir() else []


def has_card(name: str) -> bool:
    return isinstance(name, str) and "/" not in name and "\\" not in name and (cards_dir() / f"{name}.md").is_file()


def card_for(name: str) -> Card:
    """The card named ``name`` (``conll2003``, ``sst2``, ``glove-6b-50d``...)."""
    path = cards_dir() / f"{name}.md"
    if not has_card(name):
        raise ConfigError(f"no data card named {name!r} in {cards_dir()}; cards: {', '.join(available_cards())}")
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _CARDS:
        from huggingface_hub import DatasetCard

        data = DatasetCard.load(path).data.to_dict()
        if "textrnn" not in data:
            raise DataFormatError(path, None, "the card's front matter has no 'textrnn:' block")
        _CARDS[key] = Card(name=name, path=path, data=data)
    return _CARDS[key]


def sha256_file(path: Union[str, os.PathLike]) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime) so a second check is free."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _spec_for_path(card: Card, path: Path) -> Tuple[str, FileSpec]:
    for key, spec in card.files.items():
        if spec.file == path.name:
            return key, spec
    names = ", ".join(s.file for s in card.files.values())
    raise DataCardMismatch(path, None, f"the card {card.path} lists no file named {path.name!r}; it lists {names}")


def hash_mismatch(card: Card, path: Union[str, os.PathLike]) -> Optional[str]:
    """None when the file's SHA-256 is the card's, else a sentence saying expected vs found."""
    path = Path(path)
    _, spec = _spec_for_path(card, path)
    found = sha256_file(path)
    if spec.sha256 is None or found == spec.sha256:
        return None
    return f"SHA-256 expected {spec.sha256} (card {card.path.name}), found {found}: the file was altered or truncated"


def count_mismatches(spec: FileSpec, found: Mapping[str, Any]) -> List[str]:
    """``["sentences expected 14041, found 1000", ...]`` for each card count that differs."""
    out = []
    for key, expected in spec.counts.items():
        got = found.get(key)
        if isinstance(expected, Mapping):
            got = dict(got or {})
            for label in sorted(set(expected) | set(got)):
                if expected.get(label, 0) != got.get(label, 0):
                    out.append(f"{key}[{label}] expected {expected.get(label, 0)}, found {got.get(label, 0)}")
        elif got != expected:
            out.append(f"{key} expected {expected}, found {got}")
    return out


def verify_file(name: str, path: Union[str, os.PathLike], counts: Optional[Mapping[str, Any]] = None) -> str:
    """Check a file against card ``name``: SHA-256 and, when given, the counts found in it.

    Returns the SHA-256. Raises :class:`DataCardMismatch` naming the file and what differs.
    """
    card = card_for(name)
    path = Path(path)
    _, spec = _spec_for_path(card, path)
    problems = count_mismatches(spec, counts) if counts is not None else []
    wrong_hash = hash_mismatch(card, path)
    if wrong_hash:
        problems.append(wrong_hash)
    if problems:
        raise DataCardMismatch(path, None, f"does not match data card {card.path.name}: " + "; ".join(problems))
    return sha256_file(path)
