"""Named entities from raw text: pre-tokenize with offsets, tag, group tags into spans.

Every span satisfies ``text[start:end] == word``. Long documents are cut into segments at
sentence ends (or every ``max_tokens`` tokens where a sentence is longer) and tagged segment by
segment; offsets refer to the whole input, and nothing is truncated.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .. import tags as tag_schemes
from ..vocab import pre_tokenize
from .base import Pipeline

SENTENCE_END = {".", "!", "?", "。", "！", "？", "；", ";"}


def segments(tokens: List[str], max_tokens: int) -> List[Tuple[int, int]]:
    """(start, end) token ranges: sentence ends close a segment; none is longer than max_tokens."""
    out, start = [], 0
    for i, token in enumerate(tokens):
        if token in SENTENCE_END or i + 1 - start >= max_tokens:
            out.append((start, i + 1))
            start = i + 1
    if start < len(tokens):
        out.append((start, len(tokens)))
    return out


class TokenClassificationPipeline(Pipeline):
    """``ner("George Washington went to Washington.")`` ->
    ``[{"entity_group": "PER", "word": "George Washington", "score": 0.99, "start": 0, "end": 17}, ...]``"""

    task = "ner"

    def preprocess(self, text: str, max_tokens: int = 256, **_: Any) -> Dict[str, Any]:
        pieces = pre_tokenize(text)
        tokens = [t for t, _ in pieces]
        return {"text": text, "tokens": tokens, "offsets": [o for _, o in pieces],
                "segments": segments(tokens, max_tokens)}

    def _forward(self, prepared: List[Dict], batch_size: int, **_: Any) -> List[Tuple[List[str], List[float]]]:
        flat = [p["tokens"][a:b] for p in prepared for a, b in p["segments"]]
        tags, scores = self.model.predict(flat, batch_size=batch_size, with_scores=True) if flat else ([], [])
        outputs, k = [], 0
        for p in prepared:
            n = len(p["segments"])
            outputs.append(([t for seg in tags[k:k + n] for t in seg], [s for seg in scores[k:k + n] for s in seg]))
            k += n
        return outputs

    def postprocess(self, prepared: Dict, output, aggregation: str = "simple", **_: Any) -> List[Dict[str, Any]]:
        tags, scores = output
        text, offsets = prepared["text"], prepared["offsets"]
        if aggregation == "none":
            return [{"entity": t, "score": s, "index": i, "word": text[a:b], "start": a, "end": b}
                    for i, (t, s, (a, b)) in enumerate(zip(tags, scores, offsets)) if t != "O"]
        if aggregation != "simple":
            raise ValueError(f"aggregation must be 'simple' or 'none'; got {aggregation!r}")
        entities = []
        for label, first, last in tag_schemes.get_spans(tags, self.model.config.scheme):
            start, end = offsets[first][0], offsets[last - 1][1]
            span_scores = scores[first:last]
            entities.append({"entity_group": label, "word": text[start:end],
                             "score": sum(span_scores) / len(span_scores), "start": start, "end": end})
        return entities
