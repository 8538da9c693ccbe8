"""Labels for raw text: ``{"label", "score"}``, the ``top_k`` best, or every label over its threshold."""
from __future__ import annotations

from typing import Any, List

from .base import Pipeline


class TextClassificationPipeline(Pipeline):
    """``clf(["这部电影不好看", "A stirring, funny film."])`` -> ``[{"label": "negative", "score": 0.97}, ...]``"""

    task = "sentiment-analysis"
    options = ("top_k",)

    def preprocess(self, text: str, **_: Any) -> str:
        return text

    def _forward(self, prepared: List[str], batch_size: int, top_k=1, **_: Any) -> List[Any]:
        return self.model.predict(prepared, batch_size=batch_size, top_k=top_k)

    def postprocess(self, prepared: str, output: Any, **_: Any) -> Any:
        return output
