"""The vectors of a pretrained or trained embedding: one type that every part of the package passes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class Vectors:
    """Pretrained word vectors: ``words[i]`` has the vector ``matrix[i]``."""

    words: list = field(repr=False)
    matrix: np.ndarray = field(repr=False)  # (N, D) float32
    source: str = ""
    cached: bool = False  # True when read from the parse cache instead of the file
    subwords: Optional[dict] = field(default=None, repr=False)  # fastText n-grams, see subword_vector

    def __post_init__(self):
        assert self.matrix.ndim == 2 and self.matrix.shape[0] == len(self.words), self.matrix.shape

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Vectors({len(self):,} x {self.dim} from {self.source}{', cached' if self.cached else ''})"
