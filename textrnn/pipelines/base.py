"""preprocess -> _forward -> postprocess, as in transformers pipelines, but light and fast.

A pipeline takes a string (one result), a list (a list of results) or any other iterable (a
generator of results, consumed and produced lazily a chunk at a time). Within a chunk, inputs are
batched by length for speed and results come back in input order.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, Iterator, List

from ..frontend import gc_paused


class Pipeline:
    """Subclasses define ``preprocess(text)``, ``_forward(prepared_list)`` and ``postprocess``,
    and name the keyword options they take in ``options``."""

    task = ""
    options: tuple = ()  # the keyword options a call (or ``pipeline(...)``, as defaults) may take
    aliases: Dict[str, str] = {}  # another name for an option (transformers' spelling) -> ours

    def __init__(self, model, batch_size: int = 64, **defaults: Any):
        self.model = model
        self.batch_size = batch_size
        self.defaults = self._checked(defaults)

    def _checked(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        """``kwargs`` under this pipeline's names; an unknown option is an error, not ignored
        (transformers' ``_sanitize_parameters``)."""
        out: Dict[str, Any] = {}
        for key, value in kwargs.items():
            name = self.aliases.get(key, key)
            if name not in self.options:
                known = ", ".join([*self.options, *self.aliases]) or "none"
                raise TypeError(f"{type(self).__name__} got an unknown option {key!r}; its options: {known}")
            if name in out:
                raise TypeError(f"{type(self).__name__} got {name!r} twice (as {key!r} too)")
            out[name] = value
        return out

    def __call__(self, inputs, batch_size: int = None, **kwargs: Any):
        options = {**self.defaults, **self._checked(kwargs)}
        batch_size = batch_size or self.batch_size
        if isinstance(inputs, str):
            return self._run([inputs], batch_size, options)[0]
        if isinstance(inputs, (list, tuple)):
            return self._run(list(inputs), batch_size, options)
        return self._stream(iter(inputs), batch_size, options)

    def _stream(self, inputs: Iterator[str], batch_size: int, options) -> Iterator[Any]:
        chunk_size = max(batch_size * 8, 256)  # enough to sort by length, small enough to stay lazy
        while True:
            chunk = list(itertools.islice(inputs, chunk_size))
            if not chunk:
                return
            yield from self._run(chunk, batch_size, options)

    def _run(self, texts: List[str], batch_size: int, options) -> List[Any]:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"input {i} is a {type(text).__name__}; expected a string")
        with gc_paused():  # see there: a full collection costs more than a batch of inference
            prepared = [self.preprocess(text, **options) for text in texts]
            outputs = self._forward(prepared, batch_size, **options)  # the model runs its own inference context
            results = [self.postprocess(p, o, **options) for p, o in zip(prepared, outputs)]
            # freed before the collector is back: its first pass walks every container still alive
            del prepared, outputs
        return results

    def preprocess(self, text: str, **options: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    def _forward(self, prepared: List[Any], batch_size: int, **options: Any) -> List[Any]:  # pragma: no cover
        raise NotImplementedError

    def postprocess(self, prepared: Any, output: Any, **options: Any):  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={self.model.config.architecture})"
