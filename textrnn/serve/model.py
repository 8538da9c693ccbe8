"""The served model: a folder loaded once, a pipeline around it, and what /info says about it."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from .protocol import TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION

logger = logging.getLogger(__name__)
# A dynamic batch is one pipeline call, which sorts its texts by length and runs forward passes of
# at most this many: one long sentence then pads fewer short ones. 64 random CoNLL-2003 test
# sentences ran about 20% faster as two passes of 32 than as one of 64 (docs/benchmarks.md).
FORWARD_BATCH = 32


class ServedModel:
    """``run(texts, params)`` -> one Inference-API answer per text; called in the worker thread only.
    ``threads``: onnxruntime's threads, where the model runs there. ``device``: where a torch model
    runs ("cpu", "cuda", "cuda:1", an int GPU index; the onnx backend runs on the CPU)."""

    def __init__(self, name_or_path: str, revision: Optional[str] = None, precision: str = "fp32",
                 backend: Optional[str] = None, quantize: Optional[str] = None,
                 threads: Optional[int] = None, device=None):
        from ..hub import resolve_folder
        from ..pipelines import pipeline
        from ..tasks import load_model

        self.name = str(name_or_path)
        self.folder = resolve_folder(name_or_path, revision)
        from ..export.runtime import OnnxBackend

        self.model = load_model(self.folder, device=device, backend=backend, quantize=quantize, threads=threads)
        # onnxruntime's session took ``threads`` above; torch's are set in the thread that runs the
        # model (create_app's ServeSettings.threads)
        self.on_onnx = isinstance(self.model, OnnxBackend)
        self.device = "cpu" if self.on_onnx else str(self.model.device)
        config = self.model.config
        self.is_tagger = config.architecture.startswith("birnn-tagger")
        self.task = TOKEN_CLASSIFICATION if self.is_tagger else TEXT_CLASSIFICATION
        self.multi_label = bool(getattr(config, "multi_label", False))
        self.pipe = pipeline("ner" if self.is_tagger else "text-classification", model=self.model,
                             precision=precision)

    @property
    def parameter_defaults(self) -> Dict[str, Any]:
        """Defaults that differ from the task's: a multi-label classifier gives every label over its
        threshold unless ``top_k`` asks for fewer."""
        return {"top_k": None} if self.multi_label else {}

    def run(self, texts: List[str], params: Dict[str, Any]) -> List[Any]:
        size = min(max(len(texts), 1), FORWARD_BATCH)
        if self.is_tagger:
            return self.pipe(texts, batch_size=size, aggregation=params["aggregation_strategy"])
        top_k = params["top_k"]
        if self.multi_label:
            results = self.pipe(texts, batch_size=size)
            return [r if top_k is None else r[:top_k] for r in results]
        results = self.pipe(texts, batch_size=size, top_k=top_k)
        return [[r] if isinstance(r, dict) else r for r in results]

    def info(self) -> Dict[str, Any]:
        """Task, labels, architecture, the folder's config.json and its model card's YAML header."""
        from .. import __version__

        config = json.loads((self.folder / "config.json").read_text(encoding="utf-8"))
        labels = list(self.model.config.labels)
        out: Dict[str, Any] = {"model": self.name, "task": self.task, "architecture": config["architecture"],
                               "labels": labels, "device": self.device,
                               "backend": "onnx" if self.on_onnx else "torch"}
        if self.is_tagger:
            out["entity_types"] = sorted({label[2:] for label in labels if label != "O"})
            out["scheme"] = self.model.config.scheme
        else:
            out["multi_label"] = self.multi_label
        out.update(config=config, card=card_metadata(self.folder / "README.md"), textrnn_version=__version__)
        return out


def card_metadata(path: Path) -> Optional[Dict[str, Any]]:
    """The YAML header of a model card (``---`` ... ``---``), None when there is no card or header."""
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    import yaml  # a dependency of huggingface_hub and datasets

    try:
        data = yaml.safe_load(text[3:end])
    except yaml.YAMLError as err:
        logger.warning("%s: the model card's YAML header does not parse (%s); /info leaves it out", path, err)
        return None
    return data if isinstance(data, dict) else None
