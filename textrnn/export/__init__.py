"""Whole-model ONNX export, int8, and running exported models on onnxruntime.

    textrnn export runs/ner --format onnx --output runs/ner-onnx            # or --quantize int8
    ner = pipeline("ner", model="runs/ner-onnx")                  # onnxruntime; torch is never imported
    ner = pipeline("ner", model="runs/ner", backend="onnx")       # exported in memory when loaded

The graph computes emissions (taggers) or label probabilities (classifiers); CRF decoding is
``textrnn.decoding`` in numpy, the same code the torch backend decodes with. Needs the ``export``
extra (``pip install textrnn[export]``: onnx, onnxruntime). This module imports neither torch
nor onnx until it exports.
"""
from __future__ import annotations

import importlib.util
import random
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..utils import PathLike

FORMATS = ("onnx",)
QUANTIZE = (None, "int8")
# largest |torch - onnxruntime| accepted when export checks its float32 graph
TOLERANCE = 1e-3


def _require_onnx():
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"ONNX export needs {' and '.join(missing)}; install them with: "
                          "pip install 'textrnn[export]'")


def check_quantize(quantize: Optional[str]) -> None:
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be None or 'int8'; got {quantize!r}")


def _sample_items(task_model, seed: int = 0):
    """A few sentences of the model's own words plus an unseen one, for checking an export."""
    rng = random.Random(seed)
    words = task_model.words.words[2:] or ["word"]
    sentences = [[rng.choice(words) for _ in range(n)] + ["Qzxv-unseen"] for n in (6, 0, 11, 3)]
    lexicon = getattr(task_model, "lexicon", None)
    if lexicon is not None:  # characters that spell lexicon words, so that every B/M/E/S set is filled
        sentences.append([c for w in rng.sample(lexicon.words, min(8, len(lexicon.words))) for c in w])
    if task_model.task == "token-classification":
        return [task_model.encode(s) for s in sentences]
    return [task_model.encode(" ".join(s)) for s in sentences]


def onnx_bytes(task_model, quantize: Optional[str] = None) -> bytes:
    """The serialized ONNX graph of a torch SequenceTagger / TextClassifier, checked against the
    module on sample sentences before it is quantized (if asked) and returned."""
    _require_onnx()
    check_quantize(quantize)
    from . import graph
    from .runtime import quantize_int8, session

    with task_model.inference():
        model = graph.build_graph(task_model)
        arrays = task_model.arrays(_sample_items(task_model))
        expected = graph.module_outputs(task_model, arrays)
    run = session(model.SerializeToString())
    got = run.run(None, {i.name: arrays[i.name] for i in run.get_inputs()})[0]
    if task_model.task == "token-classification":  # compare real positions only
        expected, got = expected[arrays["mask"]], got[arrays["mask"]]
    error = float(np.abs(expected - got).max())
    if not error <= TOLERANCE:
        raise RuntimeError(f"the exported graph disagrees with the torch module by {error:.2g} "
                           f"(more than {TOLERANCE}); please report this with the model's config.json")
    data = model.SerializeToString()
    return quantize_int8(data) if quantize == "int8" else data


def to_onnx_model(task_model, quantize: Optional[str] = None, threads: Optional[int] = None):
    """The onnxruntime twin of a torch SequenceTagger / TextClassifier, built in memory."""
    from .runtime import OnnxSequenceTagger, OnnxTextClassifier

    data = onnx_bytes(task_model, quantize)
    info = _export_info(quantize)
    if task_model.task == "token-classification":
        crf = task_model.crf_parameters()
        crf = None if crf is None else dict(zip(("transitions", "start_transitions", "end_transitions"), crf))
        return OnnxSequenceTagger(data, task_model.config, task_model.words, task_model.chars,
                                  task_model.bigrams, crf, threads, info, task_model.lexicon)
    return OnnxTextClassifier(data, task_model.config, task_model.words, task_model.bigrams, threads, info,
                              task_model.lexicon)


def _export_info(quantize: Optional[str]) -> Dict[str, Any]:
    from .. import __version__
    from .graph import OPSET

    return {"format": "onnx", "opset": OPSET, "quantize": quantize, "textrnn_version": __version__}


def export_model(model, output: PathLike, format: str = "onnx", quantize: Optional[str] = None) -> Path:
    """Write an exported model folder (written whole or not at all): ``model.onnx``, config.json
    (with an ``export`` section), the vocabularies, ``crf.safetensors`` for a CRF tagger, and the
    model card. ``model``: a torch model folder, hub id, or loaded SequenceTagger / TextClassifier."""
    import json

    from safetensors.numpy import save_file

    from ..hub import CARD_NAME, CONFIG_NAME
    from ..utils import atomic_directory
    from .runtime import CRF_NAME, ONNX_NAME

    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    from ..tasks.base import TaskModel

    source = None
    if not hasattr(model, "predict"):
        from ..hub import resolve_folder
        from ..tasks import load_model

        source = resolve_folder(model)
        model = load_model(source, backend="torch")
    if not isinstance(model, TaskModel):
        raise ValueError(f"export needs a torch SequenceTagger or TextClassifier (or its folder); "
                         f"got a {type(model).__name__}")
    data = onnx_bytes(model, quantize)
    config = dict(model.config.to_dict(), task=model.task, export=_export_info(quantize))
    output = Path(output)
    with atomic_directory(output) as folder:
        (folder / ONNX_NAME).write_bytes(data)
        for name, vocab in model.vocabularies().items():
            if vocab is not None:
                vocab.save(folder / name)
        crf = model.crf_parameters() if model.task == "token-classification" else None
        if crf is not None:
            save_file(dict(zip(("transitions", "start_transitions", "end_transitions"), crf)),
                      str(folder / CRF_NAME))
        if source is not None and (source / CARD_NAME).exists():
            shutil.copyfile(source / CARD_NAME, folder / CARD_NAME)
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    return output
