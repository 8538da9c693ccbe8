"""Named entities from raw text: pre-tokenize with offsets, tag, group tags into spans.

Every span satisfies ``text[start:end] == word``. Long documents are cut into segments at
sentence ends (or every ``max_tokens`` tokens where a sentence is longer) and tagged segment by
segment; offsets refer to the whole input, and nothing is truncated.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from .base import Pipeline

SENTENCE_END = {".", "!", "?", "。", "！", "？", "；", ";"}
AGGREGATIONS = ("simple", "none")  # spans, or one entry per tagged token


def segments(tokens: Sequence[str], max_tokens: int) -> List[Tuple[int, int]]:
    """(start, end) token ranges: sentence ends close a segment; none is longer than max_tokens."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1; got {max_tokens}")
    out, start = [], 0
    for end in [i + 1 for i, token in enumerate(tokens) if token in SENTENCE_END] + [len(tokens)]:
        while end - start > max_tokens:
            out.append((start, start + max_tokens))
            start += max_tokens
        if end > start:
            out.append((start, end))
            start = end
    return out


class TokenClassificationPipeline(Pipeline):
    """``ner("George Washington went to Washington.")`` ->
    ``[{"entity_group": "PER", "word": "George Washington", "score": 0.99, "start": 0, "end": 17}, ...]``"""

    task = "ner"
    options = ("aggregation", "max_tokens")
    aliases = {"aggregation_strategy": "aggregation"}

    def _checked(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        out = super()._checked(kwargs)
        if out.get("aggregation", "simple") not in AGGREGATIONS:
            raise ValueError(f"aggregation must be 'simple' or 'none'; got {out['aggregation']!r}")
        return out

    def preprocess(self, text: str, max_tokens: int = 256, **_: Any) -> Dict[str, Any]:
        tokens, offsets = self.model.tokens_and_offsets(text)  # the model's own saved pre-tokenizer
        return {"text": text, "tokens": tokens, "offsets": offsets, "segments": segments(tokens, max_tokens)}

    def _forward(self, prepared: List[Dict], batch_size: int, **_: Any) -> List[Tuple]:
        """Per input: its tags, token scores and spans, segments stitched back with token offsets."""
        flat = [p["tokens"][a:b] for p in prepared for a, b in p["segments"]]
        decoded = iter(self.model.predict_entities(flat, batch_size=batch_size) if flat else [])
        outputs = []
        for p in prepared:
            if len(p["segments"]) == 1:  # most inputs: the segment's output is the input's
                outputs.append(next(decoded))
                continue
            tags, scores, spans = [], [], []
            for a, _ in p["segments"]:
                seg_tags, seg_scores, seg_spans = next(decoded)
                tags += seg_tags
                scores += seg_scores
                spans += [(label, a + first, a + end, score) for label, first, end, score in seg_spans]
            outputs.append((tags, scores, spans))
        return outputs

    def postprocess(self, prepared: Dict, output, aggregation: str = "simple", **_: Any) -> List[Dict[str, Any]]:
        tags, scores, spans = output
        text, offsets = prepared["text"], prepared["offsets"]
        if aggregation == "none":
            return [{"entity": t, "score": s, "index": i, "word": text[a:b], "start": a, "end": b}
                    for i, (t, s, (a, b)) in enumerate(zip(tags, scores, offsets)) if t != "O"]
        assert aggregation == "simple", aggregation  # (checked by _checked)
        entities = []
        for label, first, last, score in spans:
            start, end = offsets[first][0], offsets[last - 1][1]
            entities.append({"entity_group": label, "word": text[start:end], "score": score,
                             "start": start, "end": end})
        return entities
