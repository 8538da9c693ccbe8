"""The parse cache: a vectors file's words and matrix under its SHA-256, with no pickle, each file
written whole (a reader needs both; a damaged or inconsistent entry is ignored with a warning)."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .vectors import Vectors

logger = logging.getLogger("textrnn.embeddings")

PathLike = Union[str, os.PathLike]


def default_cache_dir() -> Path:
    """``$TEXTRNN_CACHE`` or ``~/.cache/textrnn/vectors``."""
    env = os.environ.get("TEXTRNN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "textrnn" / "vectors"


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (about 0.2 s for 70 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_cache(cache_dir: Path, key: str, source: str) -> Optional[Vectors]:
    npy, txt = cache_dir / f"{key}.npy", cache_dir / f"{key}.words.txt"
    if not (npy.is_file() and txt.is_file()):
        return None
    try:
        matrix = np.load(npy, allow_pickle=False)
        text = txt.read_bytes().decode("utf-8")
    except (OSError, ValueError) as err:
        logger.warning("ignoring the unreadable cache entry %s: %s", npy, err)
        return None
    words = text[:-1].split("\n")  # not splitlines(): words may hold \x85 or \u2028
    if matrix.ndim != 2 or matrix.dtype != np.float32 or matrix.shape[0] != len(words):
        logger.warning("ignoring the inconsistent cache entry %s", npy)
        return None
    return Vectors(words, matrix, source, cached=True)


def write_cache(cache_dir: Path, key: str, vectors: Vectors) -> None:
    """Words first, matrix last: a reader needs both, and each appears whole (os.replace)."""
    if any("\n" in w for w in vectors.words):
        logger.warning("not caching %r: a word holds a newline", vectors)
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(vectors.words) + "\n").encode("utf-8")
        _atomic_write(cache_dir / f"{key}.words.txt", lambda f: f.write(data))
        _atomic_write(cache_dir / f"{key}.npy", lambda f: np.save(f, vectors.matrix, allow_pickle=False))
    except (OSError, UnicodeEncodeError) as err:
        logger.warning("could not cache the vectors in %s: %s", cache_dir, err)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
