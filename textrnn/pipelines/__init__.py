"""``pipeline(task, model=...)``: raw text in, plain dicts out."""
from __future__ import annotations

from typing import Any, Optional

from .base import Pipeline
from .ner import TokenClassificationPipeline
from .text_classification import TextClassificationPipeline

TASKS = {
    "ner": TokenClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "sentiment-analysis": TextClassificationPipeline,
    "text-classification": TextClassificationPipeline,
}


def pipeline(task: str, model, revision: str = None, batch_size: int = 64, precision: str = "fp32",
             device=None, backend: Optional[str] = None, quantize: Optional[str] = None,
             **defaults: Any) -> Pipeline:
    """``pipeline("ner", model="runs/conll03-bilstm-crf")``; ``model`` is a folder, a hub id, or a
    loaded ``SequenceTagger`` / ``TextClassifier``. ``precision="bf16"`` runs the network under
    bfloat16 autocast: about twice as fast on CPUs with AVX-512 BF16, scores differ slightly.
    ``device``: "cpu", "cuda", "cuda:1", an int GPU index (-1: CPU) or a torch.device, as in transformers;
    by default a loaded model stays where it is and a folder loads on the CPU.
    ``backend="onnx"`` runs it on onnxruntime (the default for a folder from ``textrnn export``),
    ``quantize="int8"`` with int8 weights (onnx backend); outputs keep the same form."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    from ..tasks import load_model, with_backend

    if hasattr(model, "predict"):
        loaded = with_backend(model, backend, quantize)
    else:
        loaded = load_model(model, revision=revision, backend=backend, quantize=quantize)
    if device is not None:
        loaded.to(device)
    loaded.precision = precision
    loaded.autocast()  # validates the precision name now rather than at the first call
    cls = TASKS[task]
    expected = "birnn-tagger" if cls is TokenClassificationPipeline else "birnn-classifier"
    if not loaded.config.architecture.startswith(expected):
        raise ValueError(f"task {task!r} needs a {expected} model; {model} is a {loaded.config.architecture}")
    return cls(loaded, batch_size=batch_size, **defaults)


__all__ = ["pipeline", "Pipeline", "TokenClassificationPipeline", "TextClassificationPipeline", "TASKS"]
